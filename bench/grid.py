"""The sweep grid: every combination of the swept settings, as run specs."""
from dataclasses import dataclass, replace
from itertools import product

from sinelstm.config import TrainConfig
from sinelstm.devices import parse_device_set
from sinelstm.names import GRAPH_IMPL, PRECISIONS, strategies_for
from sinelstm.precision import SPLIT, runs_with, why_not as precision_why_not

from bench import transports as nccl
from bench.schema import RunSpec


def precisions_for(ds, precisions, impl: str) -> list:
    """The precisions a device set runs with ``impl`` (a CPU tf32 row would
    be an fp32 row under another name): :func:`sinelstm.precision.runs_with`.
    A size without products is one unavailable row: :func:`why_not`."""
    return [p for p in precisions if runs_with(p, impl, ds.is_gpu)]


def transports_for(devices: str, strategy: str, transports) -> list:
    """The transports a run is repeated over: only runs that talk through
    NCCL have one; every other run is measured once, as ``default``."""
    return list(transports) if nccl.applies(devices, strategy) else [nccl.DEFAULT]


def batches_for(ds, batchsizes, batch_per_device) -> list:
    """(global batch, scaling) pairs: each global batch (strong scaling),
    then each per-device batch times the set's devices (weak scaling)."""
    return ([(b, "strong") for b in batchsizes]
            + [(b * ds.n_devices, "weak") for b in batch_per_device or ()])


def expand_grid(base: TrainConfig, *, impls, device_specs, strategies, batchsizes, units, repeats,
                recipes=None, precisions=None, transports=None, batch_per_device=None) -> list:
    """Every combination, repeats outermost so that an interrupted sweep
    already covers the whole grid once; within a repeat, runs of one device
    set, strategy, precision and transport are neighbours, so that they share
    a worker process. A single-device set runs once whatever the strategies,
    and an implementation only on the sets it can train (``strategies_for``:
    the PyTorch reference's each on its own kind of set, ``graph`` one device
    per process); the profile rides on each config's first repeat. Repeat ``r`` trains from
    seed ``base.seed + r``: repeats time the same shapes and sample the
    seeds, as MLPerf's runs do. ``recipes`` (Recipe objects) default to the
    base's, ``precisions`` to its precision, ``transports`` to NCCL's
    default; ``batch_per_device`` adds weak-scaling runs. Combinations that
    cannot mean anything are left out (:func:`skipped`)."""
    runs = []
    for repeat, impl, spec in product(range(repeats), impls, device_specs):
        ds = parse_device_set(spec, check=False)
        for strategy in strategies_for(impl, ds.n_devices, ds.is_gpu, strategies):
            for precision in precisions_for(ds, precisions or [base.precision], impl):
                for transport in transports_for(spec, strategy, transports or [nccl.DEFAULT]):
                    for recipe, (batch, scaling), n in product(recipes or [base.recipe],
                                                               batches_for(ds, batchsizes, batch_per_device), units):
                        cfg = replace(base, recipe=recipe, impl=impl, batchsize=batch, n_units=n,
                                      seed=base.seed + repeat, precision=precision)
                        runs.append(RunSpec(cfg, devices=spec, strategy=strategy, repeat=repeat, profile=repeat == 0,
                                            transport=transport, scaling=scaling))
    return runs


def skipped(device_sets, strategies, precisions=(), transports=(), impls=()) -> list:
    """What the grid leaves out, and why, in words (the sweep prints it)."""
    out = []
    others = [p for p in precisions if p != PRECISIONS[0]]
    cpus = [ds.spec for ds in device_sets if not ds.is_gpu]
    if others and cpus:
        out.append(f"{', '.join(others)} not run on {', '.join(cpus)}: it has no meaning on the CPU "
                   f"(NumPy computes in fp32)")
    not_split = [im for im in impls if not runs_with(SPLIT, im, is_gpu=True)]
    if SPLIT in precisions and not_split and any(ds.is_gpu for ds in device_sets):
        out.append(f"{SPLIT} not run with {', '.join(not_split)}: only --impl {GRAPH_IMPL} splits its products")
    named = [t for t in transports if t != nccl.DEFAULT]
    if named:
        talk = [f"{ds.spec} (chainermn)" for ds in device_sets for s in strategies if nccl.applies(ds.spec, s)]
        out.append(f"--transport {', '.join(named)} applies to runs that talk through NCCL only"
                   + (f" ({', '.join(talk)}); the others run once, as default" if talk
                      else "; no run here does (chainermn on 2 GPUs or more), so every run is default"))
    return out


def why_not(spec: RunSpec) -> str | None:
    """Why a run cannot run at all, or None: a global batch that does not
    split evenly over the set's devices (a 4-GPU set at batch 10). The sweep
    records such a run as one ``unavailable`` row, without starting a
    worker, and runs the rest."""
    n = spec.n_devices
    if spec.train.batchsize % n:
        return f"batch size {spec.train.batchsize} is not divisible by the {n} devices of {spec.devices!r}"
    cfg = spec.train
    return precision_why_not(cfg.precision, cfg.impl, parse_device_set(spec.devices, check=False).is_gpu,
                             cfg.n_units)


def grid_size(*, impls, device_sets, strategies, batchsizes, units, repeats, recipes=(None,), precisions=(None,),
              transports=(None,), batch_per_device=()) -> int:
    """How many runs :func:`expand_grid` would make, without making them (a
    mistyped ``--repeats`` could ask for more than memory holds)."""
    per_repeat = 0
    for impl, ds in product(impls, device_sets):
        for strategy in strategies_for(impl, ds.n_devices, ds.is_gpu, strategies):
            n_prec = len(precisions_for(ds, precisions, impl)) if precisions != (None,) else 1
            n_tr = len(transports_for(ds.spec, strategy, transports)) if transports != (None,) else 1
            per_repeat += n_prec * n_tr
    sizes = (len(batchsizes) + len(batch_per_device or ())) * len(units)
    return repeats * per_repeat * len(recipes) * sizes


def impls_without_runs(impls, device_sets, strategies) -> list:
    """The implementations that none of the device sets can train."""
    return [impl for impl in impls
            if not any(strategies_for(impl, ds.n_devices, ds.is_gpu, strategies) for ds in device_sets)]


@dataclass(frozen=True)
class SweepDefaults:
    """What ``sinebench sweep`` sweeps when not told: time to a model that
    generates the sine at the article's batch and a larger one, for two
    widths that the quality recipe trains reliably, over five seeds (MLPerf's
    aggregation needs at least five); several minutes on a laptop's CPU.
    Every other setting is the library's default."""

    batchsizes: tuple = (10, 100)
    units: tuple = (32, 128)
    repeats: int = 5
    max_seconds: float = 30.0


SWEEP = SweepDefaults()
