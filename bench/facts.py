"""Every number and table the report states, computed from the results
tables alone.

Each function takes DataFrames (runs.csv rows, their aggregate over repeats,
the phase breakdown) and returns a number, a small dataclass or a DataFrame;
none writes English or HTML. Kept apart from the sentences so that each number
can be checked on a synthetic sweep whose right answer is known, and so that
rewording a sentence cannot change what it states. Imports no framework: the
report runs where Chainer and CuPy are not installed.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.analysis import AXES, aggregate, ok_runs, speedups
from bench.facts_scaling import baseline
from sinelstm.devices import parse_device_set
from sinelstm.names import ARTICLE_IMPL, IMPLS, PHASES, SINGLE_DEVICE, device_label, series_label

ARTICLE = (10, 5)  # the article's batch size and n_units
SINEBENCH = IMPLS[0]  # names.py lists sinebench's own implementation first


@dataclass(frozen=True)
class Sweep:
    """A results folder's tables, with what every fact starts from computed once."""

    runs: pd.DataFrame  # every runs.csv row, failed runs included
    ok: pd.DataFrame  # finished runs, numbers parsed
    agg: pd.DataFrame  # one row per configuration, every implementation
    impl: str  # the implementation the summary is about: sinebench's if it ran
    main: pd.DataFrame  # the rows of agg of that implementation
    seqlen: int
    breakdown: pd.DataFrame  # phase times of the profiled runs
    curves: pd.DataFrame
    closed: pd.DataFrame  # closed-loop predictions
    base_ok: pd.DataFrame  # finished runs at main's scaling axes (precision, transport, scaling)


def main_impl(agg: pd.DataFrame, runs: pd.DataFrame) -> str:
    """sinebench's if it finished a run, else the article's, else the first
    implementation that did (a sweep of the PyTorch reference alone)."""
    for impl in (SINEBENCH, ARTICLE_IMPL, *sorted(agg["impl"].unique())):
        if (agg["impl"] == impl).any():
            return impl
    return ARTICLE_IMPL if (runs["impl"] == ARTICLE_IMPL).any() and not (runs["impl"] == SINEBENCH).any() \
        else SINEBENCH


def sweep(tables: dict) -> Sweep:
    """``tables`` as :meth:`bench.store.ResultStore.load` returns them (side
    tables may be left out)."""
    runs = tables["runs"]
    agg = aggregate(runs)
    impl = main_impl(agg, runs)
    # The scaling axes' other values (tf32, a forced transport, weak
    # scaling) have their own section (bench.facts_scaling); every other
    # fact compares the baseline's runs, never a mix.
    main, seqlen = impl_rows(agg, impl)
    ok = ok_runs(runs)
    return Sweep(runs, ok, agg, impl, main, seqlen,
                 *(tables.get(k, pd.DataFrame()) for k in ("breakdown", "curves", "closed_loop")),
                 base_ok=at_axes_of(ok, main))


def impl_rows(agg: pd.DataFrame, impl: str, seqlen: int | None = None) -> tuple:
    """(rows, seqlen): ``impl``'s configurations at the baseline's scaling
    axes (:func:`bench.facts_scaling.baseline`) and one window length, the
    rows the summary's facts compare (``Sweep.main`` for the summary's
    implementation). Without ``seqlen``: the one most configurations ran,
    the shorter (the article's) on a tie."""
    mine = baseline(agg[agg["impl"] == impl])
    if seqlen is None:
        seqlen = int(mine["seqlen"].mode().min()) if len(mine) else 10
    return mine[mine["seqlen"] == seqlen], seqlen


def at_axes_of(rows: pd.DataFrame, main: pd.DataFrame) -> pd.DataFrame:
    """``rows`` at the scaling axes' values of ``main`` (a folder older than
    a column has only its default): phase shares, intervals and learning
    curves never mix a tf32 or socket run into the fp32 one of a device set."""
    for column in AXES:
        if column in rows and column in main and len(main):
            rows = rows[rows[column] == main[column].iloc[0]]
    return rows


@dataclass(frozen=True)
class Counts:
    finished: int
    runs: int
    main_runs: int  # finished runs of the summary's implementation
    main_configs: int
    uncounted: int = 0  # finished, but timed on a slow host or disturbed (analysis.counted)


def counts(runs: pd.DataFrame, ok: pd.DataFrame, main: pd.DataFrame) -> Counts:
    """``ok``: the runs that count (:func:`bench.analysis.ok_runs`)."""
    finished = int((runs["status"] == "ok").sum())
    return Counts(finished, len(runs), int(main["repeats"].sum()) if len(main) else 0, len(main),
                  finished - len(ok))


def failed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] != "ok"]


def failure_counts(runs: pd.DataFrame) -> pd.Series:
    """Runs that did not finish, per status, most frequent first."""
    return failed_runs(runs)["status"].value_counts()


def one_gpu(main: pd.DataFrame) -> str | None:
    """The lowest-numbered GPU that ran alone."""
    singles = sorted(d for d in main["devices"].unique() if d.isdigit())
    return singles[0] if singles else None


def multi_sets(main: pd.DataFrame) -> list:
    """(devices, strategy) of every multi-device set, sorted."""
    m = main[main["n_devices"] > 1]
    return sorted({(d, s) for d, s in zip(m["devices"], m["strategy"])})


def ms_at(main: pd.DataFrame, devices: str, strategy: str, size: tuple = ARTICLE) -> float | None:
    sel = main[(main["devices"] == devices) & (main["strategy"] == strategy)
               & (main["batchsize"] == size[0]) & (main["n_units"] == size[1])]
    return float(sel["ms"].iloc[0]) if len(sel) else None


def finished(sw: Sweep) -> pd.DataFrame:
    """The finished runs that ``sw.main`` is made of, counted or not: the
    summary's implementation, window length and scaling axes."""
    runs = sw.runs[(sw.runs["status"] == "ok") & (sw.runs["impl"] == sw.impl)]
    if not len(sw.main):  # nothing counted: sw.seqlen is a default, not what ran
        return baseline(runs)
    return at_axes_of(runs[runs["seqlen"] == sw.seqlen], sw.main)


def none_counted_at(sw: Sweep, devices: str, strategy: str, size: tuple = ARTICLE) -> bool:
    """Whether ``devices`` finished runs of the summary's implementation at
    ``size`` of which none counts (:func:`bench.analysis.ok_runs`): each
    was timed on a slow host or disturbed, so the size has no time to state."""
    runs = finished(sw)
    sel = ((runs["devices"] == devices) & (runs["strategy"] == strategy) & (runs["batchsize"] == size[0])
           & (runs["n_units"] == size[1]))
    return bool(sel.any()) and ms_at(sw.main, devices, strategy, size) is None


@dataclass(frozen=True)
class Cell:
    """A speedup at one size."""

    speedup: float
    batch: int
    units: int


def _cell(vals: pd.Series, at) -> Cell:
    return Cell(float(vals[at]), int(at[0]), int(at[1]))


@dataclass(frozen=True)
class GpuVsCpu:
    cards: tuple  # GPU model names the GPU's runs recorded
    wins: int  # sizes where one GPU is faster than the CPU
    sizes: int  # sizes both ran
    cpu_ms: float | None  # at the article's size
    gpu_ms: float | None
    best: Cell
    worst: Cell


def gpu_vs_cpu(main: pd.DataFrame, ok: pd.DataFrame, gpu: str) -> GpuVsCpu | None:
    vals = speedups(main, ("cpu", SINGLE_DEVICE), (gpu, SINGLE_DEVICE))
    if vals.empty:
        return None
    cards = tuple(map(str, ok.loc[ok["devices"] == gpu, "gpu_name"].dropna().unique()))
    return GpuVsCpu(cards, int((vals > 1).sum()), len(vals), ms_at(main, "cpu", SINGLE_DEVICE),
                    ms_at(main, gpu, SINGLE_DEVICE), _cell(vals, vals.idxmax()), _cell(vals, vals.idxmin()))


def phase_medians(breakdown: pd.DataFrame, ok: pd.DataFrame, impl: str, size: tuple = ARTICLE) -> pd.Series:
    """Median ms of each phase, by (devices, strategy, phase), at one size."""
    if breakdown.empty:
        return pd.Series(dtype=float)
    runs = ok[(ok["impl"] == impl) & (ok["batchsize"] == size[0]) & (ok["n_units"] == size[1])]
    b = breakdown.merge(runs[["run_id", "devices", "strategy"]], on="run_id")
    return b.groupby(["devices", "strategy", "phase"])["ms"].median()


def phase_ms(phases: pd.Series, devices: str, strategy: str, phase: str) -> float | None:
    ms = phases.get((devices, strategy, phase))
    return None if ms is None or pd.isna(ms) else float(ms)


@dataclass(frozen=True)
class PhaseSplit:
    devices: str
    ms: dict  # phase -> ms, in the order of PHASES

    @property
    def total(self) -> float:
        return sum(self.ms.values())

    def top(self, n: int = 3) -> list:
        """The n slowest phases, as (phase, ms)."""
        return sorted(self.ms.items(), key=lambda kv: -kv[1])[:n]


def phase_split(phases: pd.Series, devices: str) -> PhaseSplit | None:
    """Every phase of a single device's update, or None if one is missing."""
    ms = {p: phase_ms(phases, devices, SINGLE_DEVICE, p) for p in PHASES}
    return None if any(v is None for v in ms.values()) else PhaseSplit(devices, ms)


def efficiency(main: pd.DataFrame) -> pd.DataFrame:
    """Each multi-device set's speedup over its first device alone, and that
    divided by its number of devices, per size."""
    rows = []
    for devices, strategy in multi_sets(main):
        ds = parse_device_set(devices, check=False)
        for (b, n), s in speedups(main, (ds.first_spec, SINGLE_DEVICE), (devices, strategy)).items():
            rows.append({"devices": devices, "strategy": strategy, "label": device_label(devices, strategy),
                         "batchsize": b, "n_units": n, "speedup": s, "efficiency": s / ds.n_devices})
    return pd.DataFrame(rows, columns=["devices", "strategy", "label", "batchsize", "n_units", "speedup",
                                       "efficiency"])


@dataclass(frozen=True)
class Scaling:
    devices: str
    strategy: str
    label: str
    best: Cell
    best_efficiency: float
    article: float | None  # speedup at the article's size
    communication_ms: float | None  # at the article's size


def scaling(eff: pd.DataFrame, phases: pd.Series) -> list:
    """One :class:`Scaling` per multi-device set in ``eff`` (see :func:`efficiency`)."""
    out = []
    for (devices, strategy), g in eff.groupby(["devices", "strategy"]):
        best = g.loc[g["speedup"].idxmax()]
        art = g[(g["batchsize"] == ARTICLE[0]) & (g["n_units"] == ARTICLE[1])]
        out.append(Scaling(devices, strategy, best["label"],
                           Cell(float(best["speedup"]), int(best["batchsize"]), int(best["n_units"])),
                           float(best["efficiency"]), float(art["speedup"].iloc[0]) if len(art) else None,
                           phase_ms(phases, devices, strategy, "communication")))
    return out


def impl_pairs(agg: pd.DataFrame) -> pd.DataFrame:
    """The configurations that ran with both sinebench's implementation and
    the article's, one row each (the other implementations have the ladder)."""
    agg = agg[agg["impl"].isin([SINEBENCH, ARTICLE_IMPL])]
    both = agg.groupby(["devices", "strategy", "batchsize", "n_units"])["impl"].transform("nunique") > 1
    pairs = agg[both].copy()
    pairs["config"] = [f"{lab} · b{b}/n{n}" for lab, b, n in zip(pairs["label"], pairs["batchsize"],
                                                                   pairs["n_units"])]
    return pairs


@dataclass(frozen=True)
class Ratio:
    median: float
    low: float
    high: float
    n: int


def impl_ratio(pairs: pd.DataFrame) -> Ratio | None:
    """The article's ms over sinebench's, across :func:`impl_pairs`."""
    if pairs.empty:
        return None
    wide = pairs.pivot_table(index="config", columns="impl", values="ms")
    ratio = (wide[ARTICLE_IMPL] / wide[SINEBENCH]).dropna()
    return Ratio(ratio.median(), ratio.min(), ratio.max(), len(ratio)) if len(ratio) else None


def representative_runs(ok: pd.DataFrame) -> tuple:
    """(size, runs): repeat 0 of each device set at the article's size, else
    at the size that the most device sets ran; size is None if none ran.
    ``ok``: finished runs at one precision, transport and scaling
    (``Sweep.base_ok``)."""
    ok0 = ok[ok["repeat"] == 0]
    sizes = ok0.groupby(["batchsize", "n_units"])["devices"].nunique().sort_index()
    if sizes.empty:
        return None, ok0
    size = ARTICLE if ARTICLE in sizes.index else sizes.idxmax()
    runs = ok0[(ok0["batchsize"] == size[0]) & (ok0["n_units"] == size[1])]
    return size, runs.sort_values(["impl", "n_devices", "devices", "strategy"], ascending=[False, True, True, True])


@dataclass(frozen=True)
class TimeToTarget:
    target: float  # one-step test MSE
    budget_s: float | None  # each run's time budget
    times: tuple  # (series label, seconds or None if not reached), per run
    fastest: tuple | None  # (series label, seconds)

    @property
    def reached(self) -> int:
        return sum(s is not None for _, s in self.times)


def time_to_target(runs: pd.DataFrame) -> TimeToTarget | None:
    """Over :func:`representative_runs`' runs."""
    if runs.empty:
        return None
    first = runs.iloc[0]
    times = tuple((series_label(r["devices"], r["strategy"], r["impl"]),
                   float(r["time_to_target_s"]) if pd.notna(r["time_to_target_s"]) else None)
                  for _, r in runs.iterrows())
    reached = [t for t in times if t[1] is not None]
    return TimeToTarget(float(first["target_mse"]),
                        float(first["max_seconds"]) if pd.notna(first["max_seconds"]) else None, times,
                        min(reached, key=lambda t: t[1]) if reached else None)


@dataclass(frozen=True)
class RepeatSpread:
    median: float  # slowest over fastest repeat, minus 1, over configurations
    max: float
    label: str  # the configuration of the max
    batch: int
    units: int
    ms_min: float
    ms_max: float


def repeat_spread(main: pd.DataFrame) -> RepeatSpread | None:
    """How far repeats of one configuration disagree."""
    rep = main[main["repeats"] > 1]
    if rep.empty:
        return None
    spread = rep["ms_max"] / rep["ms_min"] - 1
    w = rep.loc[spread.idxmax()]
    return RepeatSpread(spread.median(), spread.max(), w["label"], int(w["batchsize"]), int(w["n_units"]),
                        float(w["ms_min"]), float(w["ms_max"]))


def breakdown_bars(breakdown: pd.DataFrame, ok: pd.DataFrame) -> pd.DataFrame:
    """Phase rows at the grid's corners and the article's size (enough to
    see the shift), ordered by size, implementation and device count, each
    with the label of its bar."""
    b = breakdown.merge(ok[["run_id", "impl", "devices", "strategy", "batchsize", "n_units"]], on="run_id")
    corners = {(b_, n_) for b_ in (b["batchsize"].min(), b["batchsize"].max())
               for n_ in (b["n_units"].min(), b["n_units"].max())} | {ARTICLE}
    # A boolean array, not a list: an empty list would select no columns (no rows: the profiled run not counted).
    b = b[np.array([(x, y) in corners for x, y in zip(b["batchsize"], b["n_units"])], dtype=bool)]
    sets = {d: parse_device_set(d, check=False) for d in b["devices"].unique()}
    b = b.assign(order=b["devices"].map(lambda d: sets[d].n_devices if sets[d].is_gpu else 0))
    b = b.sort_values(["batchsize", "n_units", "impl", "order", "strategy"],
                      ascending=[True, True, False, True, True])
    series = [series_label(d, s, i) for d, s, i in zip(b["devices"], b["strategy"], b["impl"])]
    return b.assign(series=series, bar=[f"b{bs}/n{n} · {s}" for bs, n, s in zip(b["batchsize"], b["n_units"],
                                                                                 series)])


def configurations(agg: pd.DataFrame) -> pd.DataFrame:
    """Every configuration's aggregate, in the columns and order the report lists."""
    t = agg.sort_values(["impl", "n_units", "batchsize", "n_devices", "devices"])
    t = t.assign(label=[lab + "".join(f" · {v}" for v, d in zip(axes, ("fp32", "default", "strong")) if v != d)
                        for lab, *axes in zip(t["label"], t["precision"], t["transport"], t["scaling"])])
    return t[["impl", "label", "batchsize", "n_units", "repeats", "ms", "ms_p25", "ms_p75", "ms_min", "ms_max",
              "per_probe", "samples_per_s", "time_to_target_s", "val_mse", "grad_error"]].rename(
        columns={"ms_min": "fastest repeat", "ms_max": "slowest repeat"})
