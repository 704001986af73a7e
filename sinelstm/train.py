"""The training loop: build, warm up, run timed updates, evaluate.

One plain loop in the manner of nanoGPT's ``train.py``; every device set and
strategy goes through it, so that their timings are comparable.
"""
import time
from dataclasses import dataclass, field

import numpy as np

import sinelstm  # noqa: F401
import chainer

from sinelstm.data import SineData
from sinelstm.evaluate import one_step_mse
from sinelstm.iterator import WindowIterator
from sinelstm.model import SineLSTM
from sinelstm.timing import make_update_timer
from sinelstm.updaters import make_optimizer, make_updater


@dataclass
class TrainConfig:
    n_units: int = 5
    batchsize: int = 10
    seqlen: int = 10
    updates: int = 1000
    max_seconds: float | None = None  # stop earlier when the timed loop has run this long
    warmup: int = 10  # updates on a throwaway model before timing starts
    optimizer: str = "adam"
    lr: float | None = None
    seed: int = 0
    impl: str = "sinebench"
    eval_every: int = 50
    # One-step test MSE that counts as "learned": the article's setup reaches
    # it in about 750 CPU updates (shared/seed/NOTES.md), well before it
    # flattens out near 3e-4.
    target_mse: float = 1e-3
    data: SineData = field(default_factory=SineData)


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


def build_updater(cfg: TrainConfig, devices, scale_losses: bool = True, updater_factory=None):
    model = SineLSTM(cfg.n_units, seed=cfg.seed)
    iterator = WindowIterator(cfg.data.n_train, cfg.batchsize, cfg.seqlen, seed=cfg.seed)
    train_series, _ = cfg.data.split()
    optimizer = make_optimizer(cfg.optimizer, cfg.lr)
    if updater_factory is not None:
        return updater_factory(model, optimizer, iterator, train_series, devices, cfg.impl)
    return make_updater(model, optimizer, iterator, train_series, devices, cfg.impl, scale_losses)


def train(cfg: TrainConfig, devices, updater_factory=None, agree=None) -> TrainResult:
    """Train on ``devices`` (one replica each) and time every update.

    ``agree(stop) -> bool`` lets several processes take the same decision to
    stop (ChainerMN); it is asked at evaluation points only.
    """
    with chainer.using_config("type_check", False):
        if cfg.warmup:
            # Compile kernels and fill memory pools on a throwaway model, so
            # that the timed run starts warm but from the seed's weights.
            warm = build_updater(cfg, devices, updater_factory=updater_factory)
            # A quarter of the time budget at most, at least one update.
            budget = cfg.max_seconds / 4 if cfg.max_seconds else float("inf")
            t0 = time.perf_counter()
            for _ in range(cfg.warmup):
                losses = warm.update()
                warm.loss_value(losses)  # waits for the device
                over = time.perf_counter() - t0 > budget
                if agree(over) if agree is not None else over:
                    break
            warm.synchronize()
            del warm
        updater = build_updater(cfg, devices, updater_factory=updater_factory)
        return _timed_loop(cfg, updater, agree)


def _timed_loop(cfg, updater, agree) -> TrainResult:
    model = updater.model
    series = model.device.send(cfg.data.series())
    timer = make_update_timer(updater.device)
    curve, time_to_target = [], None
    updater.synchronize()
    t0 = time.perf_counter()
    k = 0
    while k < cfg.updates:
        timer.start()
        losses = updater.update()
        timer.stop()
        k += 1
        out_of_time = cfg.max_seconds is not None and time.perf_counter() - t0 >= cfg.max_seconds
        at_eval = k % cfg.eval_every == 0 or k == cfg.updates
        if agree is None and out_of_time:
            at_eval = True  # one process: stop right here
        if at_eval:
            train_loss = updater.loss_value(losses)
            val = one_step_mse(model, cfg.data, cfg.seqlen, series)
            elapsed = time.perf_counter() - t0
            curve.append({"update": k, "elapsed_s": elapsed, "train_loss": train_loss, "val_mse": val})
            if time_to_target is None and val <= cfg.target_mse:
                time_to_target = elapsed
            # Several processes stop together, at an evaluation point.
            if (agree(out_of_time) if agree is not None else out_of_time):
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
