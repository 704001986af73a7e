"""The training loop: build, warm up, run timed updates, evaluate.

One plain loop in the manner of nanoGPT's ``train.py``; every device set and
strategy goes through it, so that their timings are comparable. The strategy
(:mod:`sinelstm.strategy`) makes the updater and lets the processes of a
multi-process run stop together.

Every ``eval_every`` updates the loop waits for the device and evaluates:
one-step test MSE and the closed-loop RMSE that says whether the model
generates the sine. Evaluation is timed apart from training, so that time to
quality counts training only, as MLPerf's time-to-train excludes its
evaluations; a non-finite loss stops the run as diverged. There, and before
the first timed update, the host-speed gate (:mod:`sinelstm.hostspeed`) may
hold the loop until the host runs at full speed again; those waits are
outside every time reported; a run the host keeps slow past the gate's cap
stops there (:class:`sinelstm.hostspeed.HostSlow`).
"""
import math
import time
from dataclasses import dataclass

import numpy as np

import sinelstm  # noqa: F401
import chainer

from sinelstm.config import TrainConfig
from sinelstm import gcpause
from sinelstm.hostspeed import HostGate
from sinelstm.evaluate import one_step_mse
from sinelstm import precision
from sinelstm.names import NOT_REACHED, REACHED
from sinelstm.quality import closed_loop_fast
from sinelstm.timing import make_update_timer


@dataclass
class TrainResult:
    updates: int
    step_ms: np.ndarray  # one entry per timed update
    wall_s: float  # first update to last, evaluations included (waits for the host not)
    train_s: float  # the same, evaluations excluded
    eval_s: float  # evaluations alone
    curve: list  # dicts: update, elapsed_s, train_s, train_loss, val_mse, rmse_all
    train_loss: float
    val_mse: float
    time_to_target_s: float | None  # wall time to the one-step MSE target
    quality_status: str  # REACHED or NOT_REACHED (a diverged run raises Diverged)
    time_to_quality_s: float | None  # training time to the closed-loop target
    updates_to_quality: int | None
    model: chainer.Chain
    path: str = "eager"  # how the updater ran the update (sinelstm.graph)
    host_wait_s: float = 0.0  # waited for the host's full speed (sinelstm.hostspeed), outside every other time
    host_slow: float | None = None  # share of the gate's checks that found the host slow (None: gate off)
    host_probe_ms: float | None = None  # the host's speed while timed (HostGate.probe_ms; None: gate off)
    host_probe_slowest_ms: float | None = None  # the same, its slowest process's (HostGate.slowest_probe_ms)


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
    precision.check(cfg.precision, strategy.device_set, cfg.impl, cfg.n_units)
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


class _Clock:
    """Wall time since start, split into training and evaluation."""

    def __init__(self):
        self.t0 = self.mark = time.perf_counter()
        self.train_s = self.eval_s = self.wait_s = 0.0

    def wall(self) -> float:
        """Since the first update, evaluations included, waits for the host not."""
        return time.perf_counter() - self.t0 - self.wait_s

    def end_training_segment(self):
        now = time.perf_counter()
        self.train_s += now - self.mark
        self.mark = now

    def end_evaluation(self):
        now = time.perf_counter()
        self.eval_s += now - self.mark
        self.mark = now

    def end_wait(self):
        now = time.perf_counter()
        self.wait_s += now - self.mark
        self.mark = now


def _timed_loop(cfg, updater, strategy) -> TrainResult:
    # Each rank of a job keeps its own reference: its probes may read apart.
    gate = HostGate(cfg.budget.host_gate,
                    kind=f"{cfg.impl}-{strategy.name}-{strategy.device_set.spec}-rank{strategy.rank}")
    try:
        with gcpause.timing():
            return _timed_updates(cfg, updater, strategy, gate)
    finally:  # a run the host kept slow too: the fastest probe it saw is for later runs
        gate.save()


def _timed_updates(cfg, updater, strategy, gate) -> TrainResult:
    model = updater.model
    series = model.device.send(cfg.data.series())
    timer = make_update_timer(updater.device)
    budget = cfg.budget
    curve, time_to_target, quality = [], None, None
    status = NOT_REACHED
    updater.synchronize()
    gate.wait(strategy.any_rank, strategy.slowest)  # the first timed update, too, at full speed
    clock = _Clock()
    k = 0
    while k < budget.updates:
        timer.start()
        losses = updater.update()
        timer.stop()
        k += 1
        out_of_time = budget.seconds is not None and clock.wall() >= budget.seconds
        # Several processes stop together, at an evaluation point; one
        # process stops right where its time runs out.
        if k % cfg.eval_every and k != budget.updates and not (out_of_time and not strategy.collective):
            continue
        train_loss = updater.loss_value(losses)  # waits for the device
        clock.end_training_segment()
        with gcpause.evaluating():
            # Read again at each evaluation: an updater whose weights live in
            # another framework (sinelstm.torch_ref) maps them into its Chainer
            # model here, inside the evaluation's time.
            model = updater.model
            val = one_step_mse(model, cfg.data, cfg.seqlen, series)
            if not (math.isfinite(train_loss) and math.isfinite(val)):
                raise Diverged(k, train_loss, val)
            rmse = closed_loop_fast(model, cfg.data).rmse_all
        clock.end_evaluation()
        curve.append({"update": k, "elapsed_s": clock.wall(), "train_s": clock.train_s, "train_loss": train_loss,
                      "val_mse": val, "rmse_all": rmse})
        if time_to_target is None and val <= cfg.target_mse:
            time_to_target = clock.wall()
        if quality is None and rmse <= cfg.quality_target:
            status, quality = REACHED, (clock.train_s, k)
        if strategy.agree(out_of_time or (cfg.until_quality and status == REACHED)):
            break
        if gate.on and k < budget.updates:  # before the next timed update
            clock.end_training_segment()  # the stop decision's time, as without the gate
            gate.wait(strategy.any_rank, strategy.slowest)
            clock.end_wait()
    updater.synchronize()
    return TrainResult(
        updates=k,
        step_ms=timer.durations_ms(),
        wall_s=clock.wall(),
        train_s=clock.train_s,
        eval_s=clock.eval_s,
        curve=curve,
        train_loss=curve[-1]["train_loss"],
        val_mse=curve[-1]["val_mse"],
        time_to_target_s=time_to_target,
        quality_status=status,
        time_to_quality_s=quality[0] if quality else None,
        updates_to_quality=quality[1] if quality else None,
        model=model,
        path=updater.path,
        host_wait_s=gate.wait_s,
        host_slow=gate.slow_share,
        host_probe_ms=gate.probe_ms,
        host_probe_slowest_ms=gate.slowest_probe_ms,
    )
