"""Figures of time to quality: how long each device set takes to train a
model that generates the sine, how the closed-loop error falls with training
time, and what the reached models generate."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench import style  # noqa: E402
from bench.ttq import sizes  # noqa: E402
from sinelstm.names import series_label  # noqa: E402


def time_to_quality_bars(ttq: pd.DataFrame):
    """Olympic-mean seconds to quality per device set, one panel per size
    (recipe, batch, n_units); whiskers from the fastest to the slowest seed
    that reached it; a configuration that did not reach it is marked."""
    groups = list(sizes(ttq))
    cols = min(4, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    for ax, (size, g) in zip(axes.flat, groups):
        g = g.set_index("label").loc[style.order(g["label"])].reset_index()
        y = np.arange(len(g))
        finite = np.isfinite(g["mean_s"].to_numpy(float))
        ax.barh(y[finite], g["mean_s"][finite], color=[style.colour(lab) for lab in g["label"][finite]])
        lo = (g["mean_s"] - g["fastest_s"]).clip(lower=0)[finite]
        hi = (g["slowest_s"] - g["mean_s"]).clip(lower=0)[finite]
        ax.errorbar(g["mean_s"][finite], y[finite], xerr=[lo, hi], fmt="none", ecolor="black", capsize=3, lw=1)
        for yi, (_, r) in zip(y, g.iterrows()):
            note = f"{r['reached']}/{r['seeds']} seeds" + ("" if math.isfinite(r["mean_s"]) else " — not reached")
            ax.text(0.99, yi, note, transform=ax.get_yaxis_transform(), ha="right", va="center", fontsize=7.5)
        top = np.nanmax(np.where(finite, g["slowest_s"].fillna(g["mean_s"]), np.nan)) if finite.any() else 1.0
        ax.set_xlim(0, top * 1.6)  # room for the notes on the right
        ax.set_yticks(y, g["label"], fontsize=8)
        ax.set_xlabel("seconds of training to quality")
        ax.set_title(f"{size[0]} · batch {size[1]} · n_units {size[2]}", fontsize=9)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def rmse_vs_time(curves: pd.DataFrame, runs: pd.DataFrame, target: float):
    """Closed-loop RMSE against training time, every seed a thin line, one
    panel per size, one colour per device set."""
    runs = runs[runs["run_id"].isin(curves["run_id"])]
    labels = [series_label(d, s, i) for d, s, i in zip(runs["devices"], runs["strategy"], runs["impl"])]
    groups = list(sizes(runs.assign(label=labels)))
    cols = min(4, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False, sharey=True)
    for ax, (size, sel) in zip(axes.flat, groups):
        for label in style.order(sel["label"]):
            g = sel[sel["label"] == label]
            for i, rid in enumerate(g["run_id"]):
                c = curves[curves["run_id"] == rid]
                ax.plot(c["train_s"], c["rmse_all"], color=style.colour(label), lw=1, alpha=0.8,
                        label=label if i == 0 else None)
        ax.axhline(target, color="grey", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("seconds of training")
        ax.set_title(f"{size[0]} · batch {size[1]} · n_units {size[2]}", fontsize=9)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("closed-loop RMSE (whole horizon)")
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def generated_grid(closed: pd.DataFrame, examples: pd.DataFrame, warmup: int):
    """Small panels: truth and the closed-loop prediction of one reached
    model per configuration; the warm-up on the true series shaded."""
    examples = examples[examples["run_id"].isin(closed["run_id"])]
    n = len(examples)
    cols = min(4, max(n, 1))
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 1.9 * rows + 0.3), squeeze=False, sharex=True,
                             sharey=True)
    for ax, (_, run) in zip(axes.flat, examples.iterrows()):
        c = closed[closed["run_id"] == run["run_id"]]
        ax.axvspan(0, warmup, color="0.9", lw=0)
        ax.plot(c["t"], c["truth"], color="0.45", lw=1)
        name = series_label(run["devices"], run["strategy"], run["impl"])
        ax.plot(c["t"], c["prediction"], color=style.colour(name), lw=1)
        ax.set_title(f"{name} · b{run['batchsize']} n{run['n_units']} · seed {run['seed']}\n"
                     f"RMSE {run['closed_loop_rmse_all']:.3f}", fontsize=7.5)
        ax.set_ylim(-1.2, 1.2)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.supxlabel("time step (grey band: warm-up on the true series; grey line: truth; coloured: generated)",
                  fontsize=8)
    fig.tight_layout()
    return fig
