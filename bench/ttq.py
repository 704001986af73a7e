"""Time to a model that generates the sine, aggregated as MLPerf Training
aggregates time-to-train.

A run *reaches* quality at the first evaluation whose closed-loop RMSE over
the whole horizon is at or below its target; its time to quality is training
time, evaluations excluded. A configuration runs several seeds (its
repeats). MLPerf's rule: drop the fastest and the slowest run and report the
mean of the rest; a run that did not converge counts as infinitely slow, so
one such run can be dropped as the slowest, but two make the result "not
reached". With fewer than three seeds nothing is dropped.

Pure DataFrame functions, no framework: the report and tests share them.
"""
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.analysis import counted
from sinelstm.names import ARTICLE_RECIPE, DIVERGED, REACHED, series_label

# What makes seeds of one configuration: the same training, the same target
# and the same cap (runs that differ in any of these are not pooled).
CONFIG = ["impl", "recipe", "seqlen", "strategy", "devices", "n_devices", "batchsize", "n_units", "quality_target",
          "max_seconds"]


def measured(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that measured quality (folders from before it have none); a run
    that diverged counts as a seed that did not converge."""
    if "quality_status" not in runs:
        return runs.iloc[0:0]
    runs = runs.assign(quality_status=runs["quality_status"].where(runs["status"] != DIVERGED, DIVERGED))
    finished = runs["status"] == "ok"
    keep = runs["status"] == DIVERGED
    # Not those timed on a slow host (bench.analysis); a run whose updates merely spread (disturbed) keeps its
    # seed: leaving out a seed that never converged would turn an infinite olympic mean finite.
    keep[finished] = counted(runs[finished], disturbed=False).to_numpy()
    return runs[keep & runs["quality_status"].notna()]


def olympic_mean(times) -> float:
    """MLPerf's score of several runs' times (``inf`` for a run that did not
    converge): the mean without the fastest and the slowest; ``inf`` when a
    run that did not converge is left in."""
    t = np.sort(np.asarray(list(times), dtype=float))
    if len(t) >= 3:
        t = t[1:-1]
    return float(np.mean(t)) if len(t) and np.all(np.isfinite(t)) else math.inf


def time_to_quality(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration that measured quality: seeds run, reached,
    diverged, the olympic mean of seconds and of updates to quality, and the
    fastest and slowest seed that reached it."""
    columns = CONFIG + ["label", "seeds", "reached", "diverged", "mean_s", "mean_updates", "fastest_s",
                        "slowest_s", "target", "budget_s"]
    ok = measured(runs)
    if ok.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, g in ok.groupby(CONFIG, sort=True, dropna=False):
        reached = g["quality_status"] == REACHED
        seconds = np.where(reached, g["time_to_quality_s"], math.inf)
        updates = np.where(reached, g["updates_to_quality"], math.inf)
        hit = g.loc[reached, "time_to_quality_s"]
        c = dict(zip(CONFIG, key))
        rows.append({**c, "label": series_label(c["devices"], c["strategy"], c["impl"]),
                     "seeds": len(g), "reached": int(reached.sum()),
                     "diverged": int((g["quality_status"] == DIVERGED).sum()),
                     "mean_s": olympic_mean(seconds), "mean_updates": olympic_mean(updates),
                     "fastest_s": float(hit.min()) if len(hit) else math.nan,
                     "slowest_s": float(hit.max()) if len(hit) else math.nan,
                     "target": float(c["quality_target"]), "budget_s": float(c["max_seconds"])})
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class Fastest:
    """The device set that reaches quality fastest at one size and recipe."""

    recipe: str
    batchsize: int
    n_units: int
    label: str
    mean_s: float
    fastest_s: float
    slowest_s: float
    reached: int
    seeds: int
    target: float
    others: list  # (label, mean_s, budget_s) of the other device sets, fastest first; inf = not reached


# One "size" of the headline: device sets compared on the same training,
# target and cap.
SIZE = ["recipe", "seqlen", "batchsize", "n_units", "quality_target", "max_seconds"]


def sizes(ttq: pd.DataFrame):
    """(recipe, batch, n_units) and the rows of each size, in order."""
    for key, g in ttq.groupby(SIZE, sort=True, dropna=False):
        yield (key[0], key[2], key[3]), g


def fastest_per_size(ttq: pd.DataFrame) -> list:
    """For each recipe and size, the device set (and implementation) with the
    lowest olympic mean, if any reached quality."""
    out = []
    for (recipe, b, n), g in sizes(ttq):
        g = g.sort_values(["mean_s", "label"])
        best = g.iloc[0]
        if not math.isfinite(best["mean_s"]):
            continue
        out.append(Fastest(recipe, int(b), int(n), best["label"], float(best["mean_s"]), float(best["fastest_s"]),
                           float(best["slowest_s"]), int(best["reached"]), int(best["seeds"]),
                           float(best["target"]), [(r["label"], float(r["mean_s"]), float(r["budget_s"])) for _, r in g.iloc[1:].iterrows()]))
    return out


def unreached_sizes(ttq: pd.DataFrame) -> list:
    """(recipe, batch, n_units, seeds reached, seeds run) where no device set's
    olympic mean is finite: too few seeds got there for a time to stand."""
    out = []
    for (recipe, b, n), g in sizes(ttq):
        if not np.isfinite(g["mean_s"].to_numpy(float)).any():
            out.append((recipe, int(b), int(n), int(g["reached"].sum()), int(g["seeds"].sum())))
    return out


@dataclass(frozen=True)
class Baseline:
    """How the article's recipe fared: runs, how many reached quality, and
    the best closed-loop RMSE any of them ended with."""

    runs: int
    reached: int
    best_rmse: float
    target: float


def article_baseline(runs: pd.DataFrame) -> Baseline | None:
    art = measured(runs)
    art = art[art["recipe"] == ARTICLE_RECIPE]
    if art.empty:
        return None
    return Baseline(len(art), int((art["quality_status"] == REACHED).sum()),
                    float(art["closed_loop_rmse_all"].min()), float(art["quality_target"].iloc[0]))


def reached_examples(runs: pd.DataFrame) -> pd.DataFrame:
    """For the closed-loop panels: per configuration, its first seed that
    reached quality (closed-loop points are kept for the first repeat's
    seeds only, so prefer the lowest repeat)."""
    hit = runs[runs["quality_status"] == REACHED].sort_values("repeat")
    return hit.drop_duplicates(CONFIG).sort_values(["recipe", "batchsize", "n_units", "n_devices", "devices",
                                                    "strategy"])
