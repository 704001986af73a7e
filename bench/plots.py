"""Figures for the report and for ``sinebench train`` (matplotlib + seaborn,
no display needed). Every series takes its colour and marker from
:mod:`bench.style`; several panels are laid out two to a row, so that a
chart stays readable on a narrow screen."""
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bench import style  # noqa: E402
from sinelstm.names import series_label  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")


def panels(n: int, width: float = 5.2, height: float = 3.6, cols: int = 2, **kw):
    """A grid of ``n`` panels, ``cols`` to a row; the spare ones hidden."""
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, **kw)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def legend_below(fig, axes, ncol: int = 4):
    """One legend for the figure, in the style's order, under the panels."""
    seen = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    labels = [lab for lab in style.order(seen) if lab in seen]
    fig.legend([seen[lab] for lab in labels], labels, loc="lower center", ncol=min(ncol, len(labels)),
               frameon=False, fontsize=9)
    rows = math.ceil(len(labels) / ncol)
    fig.tight_layout(rect=(0, 0.035 * rows + 0.03, 1, 1))


def _loglog(ax):
    ax.set_xscale("log")
    ax.set_yscale("log")


def time_vs_batch(agg: pd.DataFrame, metric: str = "ms"):
    """ms per update (or windows/s) against batch size, one panel per
    n_units, one line per device set and implementation, IQR shaded."""
    units = sorted(agg["n_units"].unique())
    fig, axes = panels(len(units), sharey=True)
    agg = agg.assign(series=[series_label(d, s, i) for d, s, i in zip(agg["devices"], agg["strategy"], agg["impl"])])
    for ax, n in zip(axes, units):
        for name, g in agg[agg["n_units"] == n].groupby("series"):
            g = g.sort_values("batchsize")
            kw = style.line(name)
            if metric == "ms":
                y, lo, hi = g["ms"], g["ms_p25"], g["ms_p75"]
            else:
                y, lo, hi = g["samples_per_s"], g["batchsize"] / g["ms_p75"] * 1e3, g["batchsize"] / g["ms_p25"] * 1e3
            ax.plot(g["batchsize"], y, label=name, **kw)
            ax.fill_between(g["batchsize"], lo, hi, color=kw["color"], alpha=0.15)
        _loglog(ax)
        ax.set_title(f"n_units = {n}", fontsize=10)
        ax.set_xlabel("batch size")
        if ax is axes[0] or len(axes) > 1 and ax is axes[2 if len(axes) > 2 else 0]:
            ax.set_ylabel("ms per update (median, IQR shaded)" if metric == "ms" else "windows per second")
    legend_below(fig, axes)
    return fig


def cost_model(sub: pd.DataFrame, models: dict):
    """Measured ms per update against FLOPs per update, each device set's
    fitted line drawn only where its error is small (see CostModel.drawn)."""
    fig, ax = plt.subplots(figsize=(8, 5))
    fmin, fmax = sub["flops"].min(), sub["flops"].max()
    grid = np.logspace(np.log10(fmin) - 0.3, np.log10(fmax) + 0.3, 100)
    for label in style.order(sub["label"]):
        g = sub[sub["label"] == label]
        m = models.get(label)
        note = "" if m is None else (f": {m.fixed_ms:.2g} ms + FLOPs at {m.rate_text}, error {m.rel_error:.0%}"
                                     if m.drawn else f": fit not drawn (error {m.rel_error:.0%})")
        kw = style.line(label)
        ax.plot(g["flops"], g["ms"], ls="none", marker=kw["marker"], color=kw["color"], label=label + note,
                zorder=3)
        if m is not None and m.drawn:
            ax.plot(grid, m.predict_ms(grid), color=kw["color"], alpha=0.7)
    _loglog(ax)
    ax.set_xlabel("FLOPs per update")
    ax.set_ylabel("ms per update (median)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def loss_vs_time(curves: pd.DataFrame, runs: pd.DataFrame, target: float, title: str):
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for _, run in runs.iterrows():
        c = curves[curves["run_id"] == run["run_id"]]
        name = series_label(run["devices"], run["strategy"], run["impl"])
        ax.plot(c["elapsed_s"], c["val_mse"], label=name, ms=4, **style.line(name))
    ax.axhline(target, color="grey", ls=":", label=f"target {target:g}")
    ax.set_yscale("log")
    ax.set_xlabel("wall time since first update (s)")
    ax.set_ylabel("one-step test MSE")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def closed_loop_panels(closed: pd.DataFrame, runs: pd.DataFrame, title: str):
    """Small multiples, two to a row: truth and closed-loop prediction."""
    fig, axes = panels(len(runs), width=5.2, height=2.1, sharex=True, sharey=True)
    for ax, (_, run) in zip(axes, runs.iterrows()):
        c = closed[closed["run_id"] == run["run_id"]]
        name = series_label(run["devices"], run["strategy"], run["impl"])
        _closed_loop_axes(ax, c["t"], c["truth"], c["prediction"], style.colour(name))
        ax.set_title(f"{name}: RMSE {run['closed_loop_rmse_all']:.3f}", fontsize=9)
    for ax in axes[-2:]:
        ax.set_xlabel("time step")
    fig.suptitle(title + " (grey: truth)", fontsize=10)
    fig.tight_layout()
    return fig


def _closed_loop_axes(ax, t, truth, prediction, colour="tab:blue"):
    ax.plot(t, truth, color="0.6", lw=1, label="truth")
    ax.plot(t, prediction, color=colour, lw=1, label="closed-loop prediction")
    ax.set_ylim(-1.3, 1.3)


def save_single_run(curve: list, loop, label: str, out: Path):
    """``sinebench train``'s two plots: loss curve and closed-loop prediction."""
    df = pd.DataFrame(curve)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(df["update"], df["train_loss"], label="training loss (summed over the scored steps)")
    ax.plot(df["update"], df["val_mse"], label="one-step test MSE")
    ax.plot(df["update"], df["rmse_all"], label="closed-loop RMSE, whole horizon")
    ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel("loss / error (log scale)")
    ax.set_title(label, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    _closed_loop_axes(ax, np.arange(len(loop.truth)), loop.truth, loop.prediction)
    ax.axvline(loop.warmup, color="grey", ls=":", label="end of warm-up")
    ax.set_xlabel("time step of the series")
    ax.set_ylabel("value")
    ax.set_title(f"{label}: closed-loop RMSE {loop.rmse_50:.3f} (first 50 steps), {loop.rmse_all:.3f} (all)",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "closed_loop.png", dpi=110)
    plt.close(fig)
