"""The run schema: what one benchmark run is, and what it records.

``RunSpec`` is a run's settings: the core's :class:`TrainConfig` (the same
object the library trains with, not a copy of its fields) plus what only a
sweep knows (device set, strategy, repeat, profile). ``RunRow`` is a run's
result, and its fields *are* the columns of ``runs.csv``, in order; the side
files' columns are the fields of their row types. The store writes exactly
these fields and refuses anything else, so a new setting is added here and
where it is used, and nowhere in between.

Nothing here imports Chainer: the sweep process builds specs and failure
rows, and the report reads rows, without a framework.
"""
import hashlib
import json
import platform
import time
import typing
from dataclasses import asdict, dataclass, fields, is_dataclass

from sinelstm.config import TrainConfig
from sinelstm.devices import parse_device_set
from sinelstm.flops import count_flops
from sinelstm.names import ARTICLE_RECIPE, series_label


def from_dict(cls, data: dict):
    """Rebuild a (nested, frozen) dataclass from :func:`dataclasses.asdict`
    output; an unknown or missing field raises ``TypeError``."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        kind = hints.get(key)
        kwargs[key] = from_dict(kind, value) if is_dataclass(kind) and isinstance(value, dict) else value
    return cls(**kwargs)


@dataclass(frozen=True)
class RunSpec:
    train: TrainConfig
    devices: str  # device-set spec, e.g. "0+1"
    strategy: str  # sinelstm.names.SINGLE_DEVICE for one device, else one of STRATEGIES
    repeat: int = 0
    profile: bool = False  # also run the per-phase profile
    # NCCL's transport (bench.transports); "default" for runs without NCCL.
    transport: str = "default"
    # "strong": the batch is the global batch whatever the devices; "weak":
    # it was given per device (--batch-per-device) and grows with them.
    scaling: str = "strong"

    @property
    def n_devices(self) -> int:
        return parse_device_set(self.devices, check=False).n_devices

    @property
    def run_id(self) -> str:
        """Readable, and unique per configuration: rerunning a sweep skips a
        run whose id is already recorded. Settings added later are left out
        of the digest at their defaults, so that an older folder's runs keep
        their ids."""
        data = self.to_dict()
        for path, default in _DIGEST_DEFAULTS:
            *outer, key = path
            holder = data
            for name in outer:
                holder = holder[name]
            if holder.get(key) == default:
                del holder[key]
        digest = hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:8]
        c = self.train
        axes = "".join(f"-{v}" for v, d in ((c.precision, "fp32"), (self.transport, "default"),
                                           (self.scaling, "strong")) if v != d)
        return (f"{c.impl}-{self.strategy}-{self.devices}-b{c.batchsize}-u{c.n_units}"
                f"-s{c.seqlen}{axes}-r{self.repeat}-{digest}")

    @property
    def label(self) -> str:
        c = self.train
        axes = "".join(f" {v}" for v, d in ((c.precision, "fp32"), (self.transport, "default"),
                                           (self.scaling, "strong")) if v != d)
        return (f"{series_label(self.devices, self.strategy, c.impl)} {c.recipe.name} T={c.seqlen} "
                f"b={c.batchsize} n={c.n_units}{axes} #{self.repeat}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunSpec":
        return from_dict(cls, data)


@dataclass(frozen=True)
class RunRow:
    """One line of runs.csv. Failed runs leave the measured fields ``None``."""

    run_id: str
    impl: str
    devices: str
    n_devices: int
    strategy: str
    batchsize: int
    n_units: int
    seqlen: int
    repeat: int
    status: str  # one of STATUSES
    message: str
    updates: int | None
    ms_per_update_median: float | None
    ms_per_update_p25: float | None
    ms_per_update_p75: float | None
    samples_per_s: float | None
    wall_s: float | None
    train_loss: float | None
    val_mse: float | None
    closed_loop_rmse_50: float | None
    closed_loop_rmse_all: float | None
    time_to_target_s: float | None
    target_mse: float
    flops_per_update: float
    optimizer: str
    update_budget: int
    max_seconds: float | None
    warmup: int
    gpu_name: str | None
    host: str
    started_at: str
    attempt: int  # 1, then 2, ... for each retry of a failed run_id
    recipe: str
    seed: int
    quality_target: float
    quality_status: str | None  # reached, not reached (a diverged run: status diverged)
    time_to_quality_s: float | None  # training time, evaluations excluded
    updates_to_quality: int | None
    eval_s: float | None  # time spent evaluating, outside every other time
    # How the implementation ran the update: "eager" (framework calls),
    # "cuda-graph", "cuda-graph-gemm (L lanes, dh in S parts)" or "numba"
    # (the graph implementation's compiled paths: persistent kernels,
    # captured cuBLAS with the plan it chose at setup, rank 0's under MPI,
    # each rank timing its own; Numba loops).
    path: str | None
    # The sweep invocation that measured the run (a key of env.json's
    # "invocations"); set by the sweep process, not the worker.
    invocation: str = ""
    # How the run was held still (bench.pinning): BLAS/OpenMP threads its
    # process ran with, and the cores it was pinned to ("" when not pinned).
    threads: int | None = None
    cpus: str = ""
    # Why no more repeats of this configuration followed, decided when the
    # row was committed (bench.adaptive): fixed, stable, cap, or "" (more to
    # come); and the relative half-width of its median's 95 % interval then.
    stop_reason: str = ""
    ci_halfwidth: float | None = None
    precision: str = "fp32"  # fp32 or tf32 (sinelstm.precision)
    transport: str = "default"  # NCCL's transport (bench.transports)
    scaling: str = "strong"  # strong: batchsize is global; weak: batchsize / n_devices was fixed
    # The host-speed gate (sinelstm.hostspeed): seconds the run waited for
    # the host's full speed (its probes included, ~8 ms a check), outside
    # every other time, and the share of its checks that found the host slow
    # (empty: gate off, or an older folder).
    host_wait_s: float | None = None
    host_slow: float | None = None
    host_probe_ms: float | None = None  # the host's speed while timed (sinelstm.hostspeed.HostGate.probe_ms)
    # The same, read as the job ran: at each check, its slowest process's
    # probe (HostGate.slowest_probe_ms). One process: host_probe_ms; an MPI
    # job: not always rank 0's (empty in folders from before the column).
    host_probe_slowest_ms: float | None = None
    host_gate: float | None = None  # the gate's tolerance (None: off); with job_probe_ms, whether the run counts
    # How exact the run's arithmetic is: its first update's gradient of the
    # recurrent weights against the eager path's in float64, from the same
    # weights and windows (sinelstm.exactness; norm of the difference over
    # the norm). Repeat 0 of one-device runs; empty otherwise.
    grad_error: float | None = None

    @classmethod
    def columns(cls) -> list:
        return [f.name for f in fields(cls)]

    @property
    def job_probe_ms(self) -> float | None:
        """The host's speed as the run felt it: its slowest process's probe,
        else its own (:func:`bench.analysis.job_probe`, for one row)."""
        return self.host_probe_slowest_ms if self.host_probe_slowest_ms is not None else self.host_probe_ms

    @classmethod
    def measured_columns(cls) -> list:
        given = set(_settings(None)) | {"status", "message", "invocation"} | set(CONTROL_COLUMNS)
        return [c for c in cls.columns() if c not in given]

    @classmethod
    def ok(cls, spec: RunSpec, **measured) -> "RunRow":
        """A finished run; ``measured`` must name every measured column."""
        return cls(**_settings(spec), status="ok", message="", **measured)

    @classmethod
    def failure(cls, spec: RunSpec, status: str, message: str) -> "RunRow":
        # One line, so that the CSV row stays readable.
        return cls(**_settings(spec), status=status, message=clean_text(message)[:500],
                   **dict.fromkeys(cls.measured_columns()))


# What became of a run. Only "ok" counts as done: a rerun of the sweep tries
# the others again (their rows stay, as the run's history).
STATUSES = {
    "ok": "finished",
    "diverged": "the loss became NaN or infinite",
    "timeout": "no result within the run's time limit",
    "oom": "out of memory",
    "killed": "the worker died of a signal",
    "error": "an exception",
    "unavailable": "could not run here: the device set or a library is missing, or the combination cannot run "
                   "(a batch its devices cannot split, a precision the implementation does not run at this size)",
    "slow-host": "the host stayed slow past the wait a run may take (sinelstm.hostspeed): stopped, not timed",
}
# Failures worth another try in the same sweep: their cause may pass.
TRANSIENT = ("error", "timeout", "oom", "killed", "slow-host")
SLOW_HOST = "slow-host"  # with --repeats auto, such a round is replaced by another (bench.adaptive)

# A results folder written before a column existed is read (and, by a sweep,
# rewritten) with that column filled by its entry here, or left empty.
LEGACY_DEFAULTS = {"attempt": 1, "recipe": ARTICLE_RECIPE, "seed": 0, "path": "eager", "stop_reason": "fixed",
                   "precision": "fp32", "transport": "default", "scaling": "strong"}
# Set beside the measurement, not by it: by the worker (threads, cpus) or the
# sweep (stop_reason, ci_halfwidth); a failure row leaves them empty too.
CONTROL_COLUMNS = ("threads", "cpus", "stop_reason", "ci_halfwidth")
# Settings added to RunSpec after runs were recorded, at the value every
# older run had: left out of the run id's digest (see RunSpec.run_id).
_DIGEST_DEFAULTS = ((("train", "precision"), "fp32"), (("transport",), "default"), (("scaling",), "strong"),
                    # runs recorded before the gate were timed without it
                    (("train", "budget", "host_gate"), None))


def clean_text(text) -> str:
    """One line without control characters (a NUL from a crashed process, an
    escape sequence, a newline), so that every CSV row is one line."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())


def _settings(spec: RunSpec | None) -> dict:
    """The columns a run's spec decides (keys only when ``spec`` is None)."""
    keys = ("run_id", "impl", "devices", "n_devices", "strategy", "batchsize", "n_units", "seqlen", "repeat",
            "target_mse", "flops_per_update", "optimizer", "update_budget", "max_seconds", "warmup", "host",
            "started_at", "attempt", "recipe", "seed", "quality_target", "precision", "transport", "scaling",
            "host_gate")
    if spec is None:
        return dict.fromkeys(keys)
    c = spec.train
    return dict(
        run_id=spec.run_id, impl=c.impl, devices=spec.devices, n_devices=spec.n_devices, strategy=spec.strategy,
        batchsize=c.batchsize, n_units=c.n_units, seqlen=c.seqlen, repeat=spec.repeat, target_mse=c.target_mse,
        flops_per_update=count_flops(c.n_units, c.batchsize, c.seqlen, c.impl), optimizer=c.optimizer,
        update_budget=c.budget.updates, max_seconds=c.budget.seconds, warmup=c.budget.warmup,
        host=platform.node(), started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        attempt=1,  # the sweep numbers a retry when it commits the row
        recipe=c.recipe.name, seed=c.seed, quality_target=c.quality_target,
        precision=c.precision, transport=spec.transport, scaling=spec.scaling, host_gate=c.budget.host_gate,
    )


@dataclass(frozen=True)
class CurvePoint:
    run_id: str
    update: int
    elapsed_s: float  # wall time, evaluations included
    train_loss: float
    val_mse: float
    train_s: float  # training time, evaluations excluded
    rmse_all: float  # closed-loop RMSE over the whole horizon


@dataclass(frozen=True)
class ClosedLoopPoint:
    run_id: str
    t: int
    truth: float
    prediction: float


@dataclass(frozen=True)
class PhaseTime:
    run_id: str
    phase: str
    ms: float


RUNS = "runs.csv"
SIDE_FILES = {"curves.csv": CurvePoint, "closed_loop.csv": ClosedLoopPoint, "breakdown.csv": PhaseTime}


def columns_of(row_type) -> list:
    return [f.name for f in fields(row_type)]


def numeric_columns(row_type) -> list:
    """Columns whose type is a number (possibly absent): read as numbers."""
    hints = typing.get_type_hints(row_type)
    return [name for name, kind in hints.items() if {int, float} & set(typing.get_args(kind) or (kind,))]
