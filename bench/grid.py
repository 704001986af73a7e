"""The sweep grid: every combination of the swept settings, as run specs."""
from dataclasses import dataclass, replace
from itertools import product

from sinelstm.config import TrainConfig
from sinelstm.devices import parse_device_set
from sinelstm.names import strategies_for

from bench.schema import RunSpec


def expand_grid(base: TrainConfig, *, impls, device_specs, strategies, batchsizes, units, repeats,
                recipes=None) -> list:
    """Every combination, repeats outermost so that an interrupted sweep
    already covers the whole grid once; within a repeat, runs of one device
    set and strategy are neighbours, so that they share a worker process. A
    single-device set runs once whatever the strategies, and an
    implementation only on the sets it can train (``strategies_for``: the
    PyTorch reference's each on its own kind of set); the profile rides on
    each config's first repeat. Repeat ``r`` trains from seed ``base.seed +
    r``: repeats time the same shapes and sample the seeds, as MLPerf's runs
    do. ``recipes`` (Recipe objects) default to the base's. Settings not
    swept come from ``base``."""
    runs = []
    for repeat, impl, spec in product(range(repeats), impls, device_specs):
        for strategy in _strategies(impl, spec, strategies):
            for recipe, batch, n in product(recipes or [base.recipe], batchsizes, units):
                cfg = replace(base, recipe=recipe, impl=impl, batchsize=batch, n_units=n, seed=base.seed + repeat)
                runs.append(RunSpec(cfg, devices=spec, strategy=strategy, repeat=repeat, profile=repeat == 0))
    return runs


def _strategies(impl: str, spec: str, strategies) -> list:
    ds = parse_device_set(spec, check=False)
    return strategies_for(impl, ds.n_devices, ds.is_gpu, strategies)


def grid_size(*, impls, device_sets, strategies, batchsizes, units, repeats, recipes=(None,)) -> int:
    """How many runs :func:`expand_grid` would make, without making them (a
    mistyped ``--repeats`` could ask for more than memory holds)."""
    per_repeat = sum(len(_strategies(impl, ds.spec, strategies)) for impl in impls for ds in device_sets)
    return repeats * per_repeat * len(recipes) * len(batchsizes) * len(units)


def impls_without_runs(impls, device_sets, strategies) -> list:
    """The implementations that none of the device sets can train."""
    return [impl for impl in impls if not any(_strategies(impl, ds.spec, strategies) for ds in device_sets)]


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
