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

from sinelstm import precision as precisions
from sinelstm.config import Budget, TrainConfig
from sinelstm.devices import parse_device_set
from sinelstm.exactness import gradient_error
from sinelstm.names import ARTICLE_RECIPE, PRECISIONS, SINGLE_DEVICE, STRATEGIES, is_torch
from sinelstm.recipes import RECIPES, Recipe
from sinelstm.strategy import make_strategy

TOLERANCE = precisions.tolerance(PRECISIONS[0])
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
    tolerance: float = TOLERANCE  # the precision's (sinelstm.precision.tolerance)
    error: str = ""  # why the check could not run, if it could not
    hosts: str = ""  # where the device set's processes ran: 'a+b' across two nodes
    precision: str = PRECISIONS[0]
    units: int = 5  # n_units
    # One device: the first gradient's error against float64, and the eager
    # path's beside it (sinelstm.exactness); None for several devices.
    grad_error: float | None = None
    grad_error_eager: float | None = None

    def line(self) -> str:
        """The result as ``sinebench verify`` prints it."""
        return (f"{self.spec:<12} {self.strategy:<15} {self.impl:<10} {'n' + str(self.units):<4} {self.recipe:<8} "
                f"{self.precision:<5} vs "
                f"{self.reference:<4} {self.updates} {self.optimizer.upper()} updates: max |dparam| = "
                f"{self.max_diff:.3g}  {'PASS' if self.passed else 'FAIL'} (tolerance {self.tolerance:g} for "
                f"{self.precision})" + (f"  hosts: {self.hosts}" if "+" in self.hosts else "")
                + (f"; first gradient vs float64 {self.grad_error:.2g} (eager: {self.grad_error_eager:.2g})"
                   if self.grad_error is not None else "")
                + (f"  error: {self.error}" if self.error else ""))

    @property
    def passed(self) -> bool:
        return bool(not self.error and np.isfinite(self.max_diff) and self.max_diff <= self.tolerance)


def verify_config(impl: str = "sinebench", updates: int = 20, n_devices: int = 2, n_units: int = 5,
                  recipe: Recipe = RECIPES[ARTICLE_RECIPE], optimizer: str = "sgd",
                  precision: str = PRECISIONS[0]) -> TrainConfig:
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
                       impl=impl, budget=Budget(updates=updates, warmup=0), precision=precision)


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
    # both sides compute in this process's precision (3xtf32: the reference, eager, in fp32)
    precisions.check(cfg.precision, device_set, cfg.impl, cfg.n_units)
    strategy = make_strategy(strategy_name, device_set, cfg.impl)
    params = trained_params(cfg, strategy, scale_losses=scale_losses)
    if not strategy.reports:
        return None
    ref_impl = reference_impl(cfg.impl)
    first = parse_device_set(device_set.first_spec)
    reference = trained_params(replace(cfg, impl=ref_impl), make_strategy(SINGLE_DEVICE, first, ref_impl))
    exact = gradient_error(cfg, strategy) if device_set.n_devices == 1 and not is_torch(cfg.impl) else None
    return VerifyResult(spec=device_set.spec, strategy=strategy.name, impl=cfg.impl, updates=cfg.budget.updates,
                        reference=device_set.first_spec + ("" if ref_impl == cfg.impl else f" {ref_impl}"),
                        max_diff=max_param_diff(params, reference), recipe=cfg.recipe.name, optimizer=cfg.optimizer,
                        hosts=strategy.hosts, tolerance=precisions.tolerance(cfg.precision), precision=cfg.precision,
                        units=cfg.n_units, grad_error=exact and exact.impl, grad_error_eager=exact and exact.eager)


def main(argv=None):
    """``python -m sinelstm.verify DEVICES IMPL UPDATES RECIPE [PRECISION [STRATEGY [OPTIMIZER [UNITS]]]]``: one MPI
    rank of ``chainermn`` (the default), or a whole ``single-process`` check in a process of its own (the
    precision is the process's, from its environment)."""
    args = list(sys.argv[1:] if argv is None else argv)
    spec, impl, updates, recipe = args[:4]
    precision = args[4] if len(args) > 4 else PRECISIONS[0]
    strategy = args[5] if len(args) > 5 else STRATEGIES[1]
    optimizer = args[6] if len(args) > 6 else "sgd"
    n_units = int(args[7]) if len(args) > 7 else 5
    # Under MPI each rank checks its own GPU: the others may be on other hosts.
    device_set = parse_device_set(spec, check=strategy != STRATEGIES[1])
    cfg = verify_config(impl=impl, updates=int(updates), n_devices=device_set.n_devices, recipe=RECIPES[recipe],
                        optimizer=optimizer, precision=precision, n_units=n_units)
    result = verify(device_set, strategy, cfg)
    if result is not None:
        print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)


if __name__ == "__main__":
    main()
