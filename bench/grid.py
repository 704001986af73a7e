"""The sweep grid: every combination of the swept settings, as run specs."""
from dataclasses import dataclass, replace
from itertools import product

from sinelstm.config import TrainConfig
from sinelstm.devices import parse_device_set
from sinelstm.names import SINGLE_DEVICE

from bench.schema import RunSpec


def expand_grid(base: TrainConfig, *, impls, device_specs, strategies, batchsizes, units, repeats,
                recipes=None) -> list:
    """Every combination, repeats outermost so that an interrupted sweep
    already covers the whole grid once; within a repeat, runs of one device
    set and strategy are neighbours, so that they share a worker process. A
    single-device set runs once whatever the strategies; the profile rides on
    each config's first repeat. Repeat ``r`` trains from seed ``base.seed +
    r``: repeats time the same shapes and sample the seeds, as MLPerf's runs
    do. ``recipes`` (Recipe objects) default to the base's. Settings not
    swept come from ``base``."""
    runs = []
    for repeat, impl, spec in product(range(repeats), impls, device_specs):
        one = parse_device_set(spec, check=False).n_devices == 1
        for strategy in [SINGLE_DEVICE] if one else strategies:
            for recipe, batch, n in product(recipes or [base.recipe], batchsizes, units):
                cfg = replace(base, recipe=recipe, impl=impl, batchsize=batch, n_units=n, seed=base.seed + repeat)
                runs.append(RunSpec(cfg, devices=spec, strategy=strategy, repeat=repeat, profile=repeat == 0))
    return runs


def grid_size(*, impls, device_sets, strategies, batchsizes, units, repeats, recipes=(None,)) -> int:
    """How many runs :func:`expand_grid` would make, without making them (a
    mistyped ``--repeats`` could ask for more than memory holds)."""
    per_repeat = sum(1 if ds.n_devices == 1 else len(strategies) for ds in device_sets)
    return repeats * len(impls) * per_repeat * len(recipes) * len(batchsizes) * len(units)


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
