"""From runs.csv rows to the numbers the report states: aggregates over
repeats, speedups, a fitted cost model and its crossover."""
from dataclasses import dataclass

import numpy as np
import pandas as pd

KEYS = ["impl", "strategy", "devices", "n_devices", "batchsize", "n_units", "seqlen"]


def device_label(devices: str, strategy: str) -> str:
    """'CPU', '1 GPU', '2 GPUs (chainermn)', '2 CPU replicas (single-process)'."""
    parts = devices.split("+")
    if parts[0] == "cpu":
        base = "CPU" if len(parts) == 1 else f"{len(parts)} CPU replicas"
    else:
        base = f"{len(parts)} GPU{'s' if len(parts) > 1 else ''}"
    return base if len(parts) == 1 else f"{base} ({strategy})"


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    ok = runs[runs["status"] == "ok"].copy()
    for col in ("ms_per_update_median", "ms_per_update_p25", "ms_per_update_p75", "samples_per_s",
                "time_to_target_s", "val_mse", "flops_per_update"):
        ok[col] = pd.to_numeric(ok[col], errors="coerce")
    return ok


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: medians over repeats, with the spread of
    per-update times (median of the repeats' quartiles) and across repeats."""
    ok = ok_runs(runs)
    if ok.empty:
        return pd.DataFrame(columns=KEYS + ["ms", "ms_p25", "ms_p75", "samples_per_s", "repeats", "flops",
                                            "label", "is_gpu"])
    agg = ok.groupby(KEYS, as_index=False).agg(
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
    )
    agg["label"] = [device_label(d, s) for d, s in zip(agg["devices"], agg["strategy"])]
    agg["is_gpu"] = ~agg["devices"].str.startswith("cpu")
    return agg


def pick(agg: pd.DataFrame, impl: str, devices: str, strategy: str | None = None) -> pd.DataFrame:
    sel = (agg["impl"] == impl) & (agg["devices"] == devices)
    if strategy is not None:
        sel &= agg["strategy"] == strategy
    return agg[sel]


def speedup_grid(agg: pd.DataFrame, impl: str, base: tuple, other: tuple) -> pd.DataFrame:
    """batch x n_units table of base ms / other ms (>1: ``other`` is faster).
    ``base`` and ``other`` are (devices, strategy) pairs."""
    a = pick(agg, impl, *base).set_index(["batchsize", "n_units"])["ms"]
    b = pick(agg, impl, *other).set_index(["batchsize", "n_units"])["ms"]
    ratio = (a / b).dropna()
    if ratio.empty:
        return pd.DataFrame()
    return ratio.rename("speedup").reset_index().pivot(index="batchsize", columns="n_units", values="speedup")


@dataclass
class CostModel:
    """ms per update = fixed_ms + flops / (gflops_per_s * 1e6)."""

    label: str
    fixed_ms: float
    ms_per_gflop: float
    points: int
    rel_error: float  # median |measured - predicted| / measured

    def predict_ms(self, flops):
        return self.fixed_ms + np.asarray(flops) / 1e9 * self.ms_per_gflop

    @property
    def rate_text(self) -> str:
        g = self.gflops_per_s
        return f"{g / 1e3:.3g} TFLOP/s" if g >= 1e3 else f"{g:.3g} GFLOP/s"

    @property
    def gflops_per_s(self) -> float:
        return 1e3 / self.ms_per_gflop if self.ms_per_gflop > 0 else float("inf")


def fit_cost_model(rows: pd.DataFrame, label: str) -> CostModel | None:
    """Least squares on relative error (each point weighted by 1/measured),
    both terms kept non-negative."""
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
    model = CostModel(label, float(fixed), float(per), len(rows), 0.0)
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
