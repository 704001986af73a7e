"""The training loop: build, warm up, run timed updates, evaluate.

One plain loop in the manner of nanoGPT's ``train.py``; every device set and
strategy goes through it, so that their timings are comparable. The strategy
(:mod:`sinelstm.strategy`) makes the updater and lets the processes of a
multi-process run stop together.
"""
import math
import time
from dataclasses import dataclass

import numpy as np

import sinelstm  # noqa: F401
import chainer

from sinelstm.config import TrainConfig
from sinelstm.evaluate import one_step_mse
from sinelstm.timing import make_update_timer


@dataclass
class TrainResult:
    updates: int
    step_ms: np.ndarray  # one entry per timed update
    wall_s: float  # first update to last, evaluations included
    curve: list  # dicts: update, elapsed_s, train_loss, val_mse
    train_loss: float
    val_mse: float
    time_to_target_s: float | None
    model: chainer.Chain


class Diverged(ArithmeticError):
    """The loss became NaN or infinite: the run cannot recover, and its
    timings would be of arithmetic on garbage. Raised at the first evaluation
    that sees it (every process of a run sees the same values there)."""

    def __init__(self, update: int, train_loss: float, val_mse: float):
        super().__init__(f"loss became non-finite by update {update} "
                         f"(train loss {train_loss:g}, test MSE {val_mse:g})")
        self.update = update


def train(cfg: TrainConfig, strategy) -> TrainResult:
    """Train ``cfg`` with ``strategy`` and time every update."""
    with chainer.using_config("type_check", False):
        if cfg.budget.warmup:
            warm_up(cfg, strategy)
        return _timed_loop(cfg, strategy.make_updater(cfg), strategy)


def warm_up(cfg: TrainConfig, strategy):
    """Compile kernels and fill memory pools on a throwaway model, so that
    the timed run starts warm but from the seed's weights. Stops after
    ``budget.warmup`` updates or ``budget.warmup_seconds``, at least one."""
    warm = strategy.make_updater(cfg)
    t0 = time.perf_counter()
    for _ in range(cfg.budget.warmup):
        warm.loss_value(warm.update())  # waits for the device
        if strategy.agree(time.perf_counter() - t0 > cfg.budget.warmup_seconds):
            break
    warm.synchronize()


def _timed_loop(cfg, updater, strategy) -> TrainResult:
    model = updater.model
    series = model.device.send(cfg.data.series())
    timer = make_update_timer(updater.device)
    budget = cfg.budget
    curve, time_to_target = [], None
    updater.synchronize()
    t0 = time.perf_counter()
    k = 0
    while k < budget.updates:
        timer.start()
        losses = updater.update()
        timer.stop()
        k += 1
        out_of_time = budget.seconds is not None and time.perf_counter() - t0 >= budget.seconds
        # Several processes stop together, at an evaluation point; one
        # process stops right where its time runs out.
        if k % cfg.eval_every == 0 or k == budget.updates or (out_of_time and not strategy.collective):
            train_loss = updater.loss_value(losses)
            val = one_step_mse(model, cfg.data, cfg.seqlen, series)
            if not (math.isfinite(train_loss) and math.isfinite(val)):
                raise Diverged(k, train_loss, val)
            elapsed = time.perf_counter() - t0
            curve.append({"update": k, "elapsed_s": elapsed, "train_loss": train_loss, "val_mse": val})
            if time_to_target is None and val <= cfg.target_mse:
                time_to_target = elapsed
            if strategy.agree(out_of_time):
                break
    updater.synchronize()
    wall = time.perf_counter() - t0
    return TrainResult(
        updates=k,
        step_ms=timer.durations_ms(),
        wall_s=wall,
        curve=curve,
        train_loss=curve[-1]["train_loss"],
        val_mse=curve[-1]["val_mse"],
        time_to_target_s=time_to_target,
        model=model,
    )
