"""Equivalence check: does a device set train the same model as one device?

Every device set starts from identical weights, sees identical batches and
takes plain SGD steps (Adam's normalization would hide a wrong gradient
scale). After ``updates`` steps the largest parameter difference against the
reference device must stay within ``tolerance``.

Both strategies return a :class:`VerifyResult`. The one-process-per-device
strategy runs as an MPI job of this module (``python -m sinelstm.verify``
under ``mpiexec``), whose rank 0 prints its result as one JSON line.
"""
import json
import sys
from dataclasses import asdict, dataclass, replace

import numpy as np

import sinelstm  # noqa: F401
import chainer

from sinelstm.config import Budget, TrainConfig
from sinelstm.devices import parse_device_set
from sinelstm.names import ARTICLE_RECIPE, GRAPH_IMPL, SINGLE_DEVICE, STRATEGIES
from sinelstm.recipes import RECIPES, Recipe
from sinelstm.strategy import make_strategy

TOLERANCE = 1e-5
RESULT_PREFIX = "RESULT "
# What an implementation is checked against: itself on the first device, or,
# for the compiled update, the eager path it must equal.
REFERENCE_IMPL = {"graph": "sinebench"}


def reference_impl(impl: str) -> str:
    return REFERENCE_IMPL.get(impl, impl)


@dataclass
class VerifyResult:
    spec: str
    reference: str
    strategy: str
    impl: str
    updates: int
    max_diff: float
    recipe: str = ARTICLE_RECIPE
    optimizer: str = "sgd"
    tolerance: float = TOLERANCE
    error: str = ""  # why the check could not run, if it could not
    hosts: str = ""  # where the device set's processes ran: 'a+b' across two nodes

    def line(self) -> str:
        """The result as ``sinebench verify`` prints it."""
        return (f"{self.spec:<12} {self.strategy:<15} {self.impl:<10} {self.recipe:<8} vs {self.reference:<4} "
                f"{self.updates} {self.optimizer.upper()} updates: max |dparam| = {self.max_diff:.3g}  "
                f"{'PASS' if self.passed else 'FAIL'} (tolerance {self.tolerance:g})"
                + (f"  hosts: {self.hosts}" if "+" in self.hosts else "")
                + (f"  error: {self.error}" if self.error else ""))

    @property
    def passed(self) -> bool:
        return bool(not self.error and np.isfinite(self.max_diff) and self.max_diff <= self.tolerance)


def verify_config(impl: str = "sinebench", updates: int = 20, n_devices: int = 2, n_units: int = 5,
                  recipe: Recipe = RECIPES[ARTICLE_RECIPE], optimizer: str = "sgd") -> TrainConfig:
    """SGD from the seed's weights; 4 windows per device (8 at least), so
    that every device set splits the batch evenly. The article's short
    windows by default: the check is about gradients, not about quality;
    another recipe checks its burn-in and learning-rate schedule too."""
    # The loss sums the scored steps: 0.01 for the article's 10, the same
    # step per scored step for longer windows, which otherwise let SGD
    # blow up and amplify rounding until no two runs agree.
    # Adam (``optimizer="adam"``) checks the moments and the bias correction,
    # at the recipe's own rate.
    lr = 0.1 / (recipe.seqlen - recipe.burn_in) if optimizer == "sgd" else None
    return TrainConfig(n_units=n_units, batchsize=4 * max(2, n_devices), recipe=recipe, optimizer=optimizer, lr=lr,
                       impl=impl, budget=Budget(updates=updates, warmup=0))


def cases(device_sets, strategies, impls, recipes, optimizers):
    """The checks that mean something, in order: a one-device set only
    against another implementation (once, whatever the strategies), the
    graph implementation only one device per process."""
    import itertools

    for ds, strat, im, rec, opt in itertools.product(device_sets, strategies, impls, recipes, optimizers):
        if ds.n_devices == 1 and (reference_impl(im) == im or strat != strategies[0]):
            continue
        if ds.n_devices > 1 and im == GRAPH_IMPL and strat != STRATEGIES[1]:
            continue
        yield ds, strat, im, rec, opt


def trained_params(cfg: TrainConfig, strategy, scale_losses: bool = True) -> dict:
    """Parameters (name -> float64 host array) after the budget's updates."""
    with chainer.using_config("type_check", False):
        updater = strategy.make_updater(cfg, scale_losses=scale_losses)
        for _ in range(cfg.budget.updates):
            updater.update()
        updater.synchronize()
    return {name: np.asarray(chainer.backends.cuda.to_cpu(p.array), dtype=np.float64)
            for name, p in sorted(updater.model.namedparams())}


def max_param_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def verify(device_set, strategy_name: str = STRATEGIES[0], cfg: TrainConfig | None = None,
           scale_losses: bool = True) -> VerifyResult | None:
    """Train ``device_set`` with the strategy, and its first device alone
    with the reference implementation; compare the parameters. Under MPI
    every rank calls this and rank 0 gets the result, the others ``None``."""
    cfg = cfg or verify_config(n_devices=device_set.n_devices)
    strategy = make_strategy(strategy_name, device_set, cfg.impl)
    params = trained_params(cfg, strategy, scale_losses=scale_losses)
    if not strategy.reports:
        return None
    ref_impl = reference_impl(cfg.impl)
    first = parse_device_set(device_set.first_spec)
    reference = trained_params(replace(cfg, impl=ref_impl), make_strategy(SINGLE_DEVICE, first, ref_impl))
    return VerifyResult(spec=device_set.spec, strategy=strategy.name, impl=cfg.impl, updates=cfg.budget.updates,
                        reference=device_set.first_spec + ("" if ref_impl == cfg.impl else f" {ref_impl}"),
                        max_diff=max_param_diff(params, reference), recipe=cfg.recipe.name, optimizer=cfg.optimizer,
                        hosts=strategy.hosts)


def main(argv=None):
    """One MPI rank: ``python -m sinelstm.verify DEVICES IMPL UPDATES RECIPE [OPTIMIZER]``."""
    spec, impl, updates, recipe, *rest = (sys.argv[1:] if argv is None else argv)
    device_set = parse_device_set(spec, check=False)  # each rank checks its own GPU
    cfg = verify_config(impl=impl, updates=int(updates), n_devices=device_set.n_devices, recipe=RECIPES[recipe],
                        optimizer=rest[0] if rest else "sgd")
    result = verify(device_set, STRATEGIES[1], cfg)
    if result is not None:
        print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)


if __name__ == "__main__":
    main()
