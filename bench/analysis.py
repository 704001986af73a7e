"""The arithmetic under the report's facts: runs.csv rows aggregated over
repeats, speedup grids, fitted cost models and where they cross. Kept small and
free of any choice of what to state (that is :mod:`bench.facts`), so that
``sinebench`` and tests can aggregate a sweep the same way."""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.schema import LEGACY_DEFAULTS
from sinelstm import hostspeed
from sinelstm.flops import count_flops
from sinelstm.names import SINGLE_DEVICE, device_label

CPU = device_label("cpu", SINGLE_DEVICE)  # the labels of the two cost models that cross
ONE_GPU = device_label("0", SINGLE_DEVICE)
# A fit whose median error is larger than this is reported, not drawn, and
# the crossover is then read from the measured cells.
MAX_ERROR = 0.25
KEYS = ["impl", "recipe", "strategy", "devices", "n_devices", "batchsize", "n_units", "seqlen"]
# The scaling axes (bench.facts_scaling): configurations that differ only in
# these are different configurations too.
AXES = ["precision", "transport", "scaling"]


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Finished runs that count (the store has parsed their numbers): not
    those timed while the host was slower than at their configuration's
    fastest run by more than the gate's tolerance, nor those disturbed while
    timed (:func:`counted`)."""
    ok = runs[runs["status"] == "ok"]
    return ok[counted(ok).to_numpy()].copy()


def counted(ok: pd.DataFrame, disturbed: bool = True) -> pd.Series:
    """Per finished run, whether it counts (:func:`sinelstm.hostspeed.counted`,
    within each configuration; ``disturbed=False``: by the host's speed
    alone); with the gate off, or in a folder from before it, every run does
    (:func:`gate_tolerance` None), as in :class:`bench.adaptive.Progress`."""
    keep = np.ones(len(ok), dtype=bool)
    keys = [k for k in KEYS + AXES if k in ok]
    groups = ok.groupby(keys, dropna=False).indices.values() if keys else [range(len(ok))]  # positions
    for rows in groups:
        g = ok.iloc[list(rows)]
        # An MPI job by its slowest rank's probe: the job ran at that pace.
        keep[list(rows)] = hostspeed.counted(job_probe(g).tolist(), gate_tolerance(g),
                                             spreads(g) if disturbed else None)
    return pd.Series(keep, index=ok.index)


def spreads(rows: pd.DataFrame) -> list | None:
    """Each run's per-update spread (:func:`sinelstm.hostspeed.spread`);
    None for a frame without the quartiles."""
    if not {"ms_per_update_p25", "ms_per_update_p75"} <= set(rows.columns):
        return None
    return [hostspeed.spread(a, b) for a, b in zip(rows["ms_per_update_p25"], rows["ms_per_update_p75"])]


def gate_tolerance(rows: pd.DataFrame) -> float | None:
    """The host gate's tolerance these rows ran with (the largest, should
    they differ; None: off, or a folder from before the column)."""
    gates = rows["host_gate"].dropna() if "host_gate" in rows else ()
    return float(max(gates)) if len(gates) else None


def job_probe(rows: pd.DataFrame) -> pd.Series:
    """Each run's host speed while timed, as the job felt it: its slowest
    process's probe, or where a folder predates that column its own (rank
    0's in an MPI job); NaN where the gate was off or predates the probe."""
    own = rows["host_probe_ms"] if "host_probe_ms" in rows else pd.Series(np.nan, index=rows.index)
    if "host_probe_slowest_ms" not in rows:
        return own.astype(float)
    return rows["host_probe_slowest_ms"].astype(float).fillna(own.astype(float))


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: medians over repeats, with the spread of
    per-update times (median of the repeats' quartiles) and across repeats."""
    legacy = {a: LEGACY_DEFAULTS[a] for a in AXES if a not in runs}
    ok = ok_runs(runs).assign(**legacy)
    if ok.empty:
        return pd.DataFrame(columns=KEYS + AXES + ["ms", "ms_p25", "ms_p75", "samples_per_s", "repeats", "flops",
                                                   "per_probe", "grad_error", "label", "is_gpu"])
    ok = ok.assign(per_probe=ok["ms_per_update_median"] / job_probe(ok))
    agg = ok.groupby(KEYS + AXES, as_index=False).agg(
        ms=("ms_per_update_median", "median"),
        ms_p25=("ms_per_update_p25", "median"),
        ms_p75=("ms_per_update_p75", "median"),
        ms_min=("ms_per_update_median", "min"),
        ms_max=("ms_per_update_median", "max"),
        samples_per_s=("samples_per_s", "median"),
        repeats=("run_id", "count"),
        flops=("flops_per_update", "first"),
        time_to_target_s=("time_to_target_s", "median"),
        val_mse=("val_mse", "median"),
        # Each run's time over the host probe read while it was timed
        # (sinelstm.hostspeed): where the host bounds the time, its drift
        # between sweeps cancels here (CPU and one GPU at batch 10 / n_units
        # 5 moved 0.6-3.7 % from sweep to sweep by this, 3-83 % in ms:
        # results/h200x1-settle-2026-11-29/per_probe.txt); where the device
        # does, the probe's noise is added instead. NaN: gate off.
        per_probe=("per_probe", "median"),
    )
    # The first gradient's error is arithmetic, not timing: from every
    # finished run, so that a repeat 0 the host gate leaves out of the times
    # still gives it (the other repeats leave it empty).
    finished = runs[runs["status"] == "ok"].assign(**legacy)
    if "grad_error" not in finished:  # a folder from before the column
        finished = finished.assign(grad_error=np.nan)
    errors = finished.groupby(KEYS + AXES, as_index=False)["grad_error"].first()
    agg = agg.merge(errors, on=KEYS + AXES, how="left")
    agg["label"] = [device_label(d, s) for d, s in zip(agg["devices"], agg["strategy"])]
    agg["is_gpu"] = ~agg["devices"].str.startswith("cpu")
    return agg


def speedups(rows: pd.DataFrame, base: tuple, other: tuple) -> pd.Series:
    """base ms / other ms (>1: ``other`` is faster) at each (batchsize,
    n_units) that both ran, from the aggregate rows of one implementation.
    ``base`` and ``other`` are (devices, strategy) pairs; recipes of one
    window length that ran the same size count by their median."""
    def ms(devices, strategy):
        sel = rows[(rows["devices"] == devices) & (rows["strategy"] == strategy)]
        return sel.groupby(["batchsize", "n_units"])["ms"].median()

    return (ms(*base) / ms(*other)).dropna().sort_index().rename("speedup")


def speedup_grid(rows: pd.DataFrame, base: tuple, other: tuple) -> pd.DataFrame:
    """:func:`speedups` as a batch x n_units table (NaN where one side did not run)."""
    ratio = speedups(rows, base, other)
    if ratio.empty:
        return pd.DataFrame()
    return ratio.reset_index().pivot(index="batchsize", columns="n_units", values="speedup")


@dataclass
class CostModel:
    """ms per update = fixed_ms + flops / (gflops_per_s * 1e6)."""

    label: str
    fixed_ms: float
    ms_per_gflop: float
    points: int
    rel_error: float  # median |measured - predicted| / measured
    peak_gflops: float | None = None  # what the devices can do at most; the fitted rate stays below
    capped: bool = False  # the unconstrained fit was faster than the peak

    @property
    def drawn(self) -> bool:
        """Small enough an error to draw the line and read a crossover off it."""
        return self.rel_error <= MAX_ERROR

    def predict_ms(self, flops):
        return self.fixed_ms + np.asarray(flops) / 1e9 * self.ms_per_gflop

    @property
    def rate_text(self) -> str:
        g = self.gflops_per_s
        return f"{g / 1e3:.3g} TFLOP/s" if g >= 1e3 else f"{g:.3g} GFLOP/s"

    @property
    def gflops_per_s(self) -> float:
        return 1e3 / self.ms_per_gflop if self.ms_per_gflop > 0 else float("inf")


def fit_cost_model(rows: pd.DataFrame, label: str, peak_gflops: float | None = None) -> CostModel | None:
    """Least squares on relative error (each point weighted by 1/measured),
    both terms kept non-negative and the rate at most ``peak_gflops``: a
    fit that needs a faster device than exists is explaining the times
    with the wrong model, and its error should show it."""
    rows = rows.dropna(subset=["ms", "flops"])
    if len(rows) < 2 or rows["flops"].nunique() < 2:
        return None
    t = rows["ms"].to_numpy(float)
    f = rows["flops"].to_numpy(float) / 1e9
    w = 1.0 / t
    A = np.stack([np.ones_like(f), f], axis=1) * w[:, None]
    coef, *_ = np.linalg.lstsq(A, t * w, rcond=None)
    fixed, per = coef
    if fixed < 0:  # refit through the origin
        fixed, per = 0.0, float(np.sum(w * w * f * t) / np.sum(w * w * f * f))
    if per < 0:  # flat: a fixed cost only
        fixed, per = float(np.sum(w * w * t) / np.sum(w * w)), 0.0
    capped = bool(peak_gflops) and per < 1e3 / peak_gflops
    if capped:  # the rate at the peak; the fixed cost refitted under it
        per = 1e3 / peak_gflops
        fixed = max(0.0, float(np.sum(w * w * (t - f * per)) / np.sum(w * w)))
    model = CostModel(label, float(fixed), float(per), len(rows), 0.0, peak_gflops, capped)
    model.rel_error = float(np.median(np.abs(model.predict_ms(rows["flops"]) - t) / t))
    return model


def crossover_flops(slow_start: CostModel, fast_start: CostModel) -> float | None:
    """FLOPs per update above which ``fast_start`` (the one with the larger
    fixed cost but cheaper FLOPs, e.g. a GPU) beats ``slow_start``."""
    d_fixed = fast_start.fixed_ms - slow_start.fixed_ms
    d_rate = slow_start.ms_per_gflop - fast_start.ms_per_gflop
    if d_rate <= 0:
        return None  # never
    if d_fixed <= 0:
        return 0.0  # always
    return d_fixed / d_rate * 1e9


def cost_models(main: pd.DataFrame, peaks: dict | None = None) -> dict:
    """A fitted :class:`CostModel` per device label, where one fits; ``peaks``
    ({"cpu": FLOP/s of the machine, "gpu": FLOP/s of one GPU}, see
    :func:`bench.peaks.peaks`) bounds each rate by what its devices can do."""
    out = {}
    for label, g in main.groupby("label"):
        first = g.iloc[0]
        peak = (peaks or {}).get("gpu" if first["is_gpu"] else "cpu")
        # CPU replicas share one CPU; GPUs add up.
        bound = peak * (first["n_devices"] if first["is_gpu"] else 1) / 1e9 if peak else None
        if (m := fit_cost_model(g, label, bound)) is not None:
            out[label] = m
    return out


def units_for_flops(flops: float, batch: int, seqlen: int, impl: str) -> float:
    """n_units at which an update of ``batch`` windows carries ``flops``."""
    lo, hi = 1.0, 1e6
    for _ in range(100):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if count_flops(mid, batch, seqlen, impl) < flops else (lo, mid)
    return lo


@dataclass(frozen=True)
class Crossover:
    flops: float | None  # per update; None: one GPU never wins, 0: it always does
    examples: tuple = ()  # (batch, n_units) pairs that carry that many FLOPs


def crossover(models: dict, batches, seqlen: int, impl: str) -> Crossover | None:
    """Where the CPU's and one GPU's cost models cross, with the n_units
    that reach it at the three smallest batch sizes."""
    cpu, gpu = models.get(CPU), models.get(ONE_GPU)
    if cpu is None or gpu is None:
        return None
    f = crossover_flops(cpu, gpu)
    if not f:
        return Crossover(f)
    return Crossover(f, tuple((b, units_for_flops(f, b, seqlen, impl)) for b in sorted(batches)[:3]))


def predicted_speedup(models: dict, seqlen: int, impl: str):
    """``(batch, n_units) -> CPU ms / GPU ms`` by the cost models, or None."""
    cpu, gpu = models.get(CPU), models.get(ONE_GPU)
    if cpu is None or gpu is None:
        return None

    def predicted(b, u):
        f = count_flops(u, b, seqlen, impl)
        return float(cpu.predict_ms(f) / gpu.predict_ms(f))
    return predicted
