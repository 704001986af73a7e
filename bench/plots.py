"""Figures for the report and for ``sinebench train`` (matplotlib + seaborn,
no display needed)."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bench.sentences import fmt_x  # noqa: E402
from sinelstm.names import ARTICLE_IMPL, PHASES, series_label  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")
PHASE_COLORS = dict(zip(PHASES, sns.color_palette("Set2", len(PHASES))))


def _loglog(ax):
    ax.set_xscale("log")
    ax.set_yscale("log")


def time_vs_batch(agg: pd.DataFrame, metric: str = "ms"):
    """ms per update (or samples/s) against batch size, one panel per n_units,
    one line per device set and implementation, IQR of per-update times shaded."""
    units = sorted(agg["n_units"].unique())
    fig, axes = plt.subplots(1, len(units), figsize=(4.6 * len(units), 4.2), squeeze=False, sharey=True)
    series = agg.assign(series=[series_label(d, s, i) for d, s, i in zip(agg["devices"], agg["strategy"],
                                                                          agg["impl"])])
    palette = dict(zip(sorted(series["series"].unique()), sns.color_palette("tab10", 10)))
    for ax, n in zip(axes[0], units):
        sub = series[series["n_units"] == n]
        for name, g in sub.groupby("series"):
            g = g.sort_values("batchsize")
            style = "--" if g["impl"].iloc[0] == ARTICLE_IMPL else "-"
            if metric == "ms":
                ax.plot(g["batchsize"], g["ms"], style, marker="o", color=palette[name], label=name)
                ax.fill_between(g["batchsize"], g["ms_p25"], g["ms_p75"], color=palette[name], alpha=0.2)
            else:
                ax.plot(g["batchsize"], g["samples_per_s"], style, marker="o", color=palette[name], label=name)
                lo, hi = g["batchsize"] / (g["ms_p75"] / 1e3), g["batchsize"] / (g["ms_p25"] / 1e3)
                ax.fill_between(g["batchsize"], lo, hi, color=palette[name], alpha=0.2)
        _loglog(ax)
        ax.set_title(f"n_units = {n}")
        ax.set_xlabel("batch size")
    axes[0][0].set_ylabel("ms per update (median, IQR shaded)" if metric == "ms" else "windows per second")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        h, lab = ax.get_legend_handles_labels()
        for hh, ll in zip(h, lab):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def speedup_heatmap(grid: pd.DataFrame, title: str, predicted=None):
    """Speedup over batch x n_units on a log colour scale centred at 1.0;
    ``predicted(batch, units) -> speedup`` draws the cost model's 1.0 line."""
    fig, ax = plt.subplots(figsize=(1.3 * len(grid.columns) + 2.6, 1.0 * len(grid.index) + 1.6))
    logs = np.log2(grid.astype(float))
    lim = max(1.0, float(np.nanmax(np.abs(logs.to_numpy()))))
    sns.heatmap(logs, ax=ax, cmap="RdBu", center=0, vmin=-lim, vmax=lim, annot=grid.map(fmt_x),
                fmt="", cbar_kws={"label": "log2 speedup (blue: faster)"}, linewidths=0.5)
    ax.invert_yaxis()
    ax.set_xlabel("n_units")
    ax.set_ylabel("batch size")
    ax.set_title(title)
    if predicted is not None and len(grid.index) > 1 and len(grid.columns) > 1:
        # Interpolate in log space between cell centres.
        bs, us = np.log(grid.index.to_numpy(float)), np.log(grid.columns.to_numpy(float))
        yy = np.linspace(0, len(bs) - 1, 60)
        xx = np.linspace(0, len(us) - 1, 60)
        B = np.exp(np.interp(yy, np.arange(len(bs)), bs))
        U = np.exp(np.interp(xx, np.arange(len(us)), us))
        Z = np.array([[predicted(b, u) for u in U] for b in B])
        if np.nanmin(Z) < 1 < np.nanmax(Z):
            cs = ax.contour(xx + 0.5, yy + 0.5, Z, levels=[1.0], colors="black", linewidths=2, linestyles="--")
            ax.clabel(cs, fmt={1.0: "predicted 1.0×"}, fontsize=8)
    fig.tight_layout()
    return fig


def cost_model(sub: pd.DataFrame, models: dict):
    """Measured ms per update against FLOPs per update, with each device
    set's fitted fixed-cost + per-FLOP line; ``sub``: the aggregate rows of
    the implementation the models were fitted on."""
    fig, ax = plt.subplots(figsize=(7.5, 5))
    palette = dict(zip(sorted(sub["label"].unique()), sns.color_palette("tab10", 10)))
    fmin, fmax = sub["flops"].min(), sub["flops"].max()
    grid = np.logspace(np.log10(fmin) - 0.3, np.log10(fmax) + 0.3, 100)
    for label, g in sub.groupby("label"):
        ax.scatter(g["flops"], g["ms"], color=palette[label], label=label, zorder=3)
        m = models.get(label)
        if m is not None:
            ax.plot(grid, m.predict_ms(grid), color=palette[label], alpha=0.7,
                    label=f"  fit: {m.fixed_ms:.2g} ms + {m.rate_text}")
    _loglog(ax)
    ax.set_xlabel("FLOPs per update")
    ax.set_ylabel("ms per update")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def loss_vs_time(curves: pd.DataFrame, runs: pd.DataFrame, target: float, title: str):
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for _, run in runs.iterrows():
        c = curves[curves["run_id"] == run["run_id"]]
        name = series_label(run["devices"], run["strategy"], run["impl"])
        ax.plot(c["elapsed_s"], c["val_mse"], marker=".", label=name)
    ax.axhline(target, color="grey", ls=":", label=f"target {target:g}")
    ax.set_yscale("log")
    ax.set_xlabel("wall time since first update (s)")
    ax.set_ylabel("one-step test MSE")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def closed_loop_panels(closed: pd.DataFrame, runs: pd.DataFrame, title: str):
    n = len(runs)
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.2 * n + 0.6), squeeze=False, sharex=True)
    for ax, (_, run) in zip(axes[:, 0], runs.iterrows()):
        c = closed[closed["run_id"] == run["run_id"]]
        _closed_loop_axes(ax, c["t"], c["truth"], c["prediction"])
        name = series_label(run["devices"], run["strategy"], run["impl"])
        ax.set_title(f"{name}: RMSE {run['closed_loop_rmse_50']:.3f} (first 50), "
                     f"{run['closed_loop_rmse_all']:.3f} (all)", fontsize=9)
    axes[0, 0].legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("t (sample)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _closed_loop_axes(ax, t, truth, prediction):
    ax.plot(t, truth, color="tab:red", lw=1, label="truth")
    ax.plot(t, prediction, color="tab:blue", lw=1, label="closed-loop prediction")
    ax.set_ylim(-1.3, 1.3)


def _bars(data: pd.DataFrame, y: str, hue: str, ylabel: str, xlabel: str, rotation: int, logy=False):
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * data["config"].nunique() + 3), 4.2))
    sns.barplot(data, x="config", y=y, hue=hue, ax=ax)
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    ax.tick_params(axis="x", rotation=rotation)
    return fig, ax


def scaling(eff: pd.DataFrame):
    """Scaling efficiency (speedup over 1 GPU / GPUs) per configuration."""
    eff = eff.assign(config=[f"b{b}/n{n}" for b, n in zip(eff["batchsize"], eff["n_units"])])
    fig, ax = _bars(eff, "efficiency", "label", "speedup over 1 device / devices", "batch / n_units", 45)
    ax.axhline(1.0, color="black", lw=1)
    fig.tight_layout()
    return fig


def impl_compare(pairs: pd.DataFrame):
    fig, _ = _bars(pairs, "ms", "impl", "ms per update (median)", "device set · batch / n_units", 60, logy=True)
    fig.tight_layout()
    return fig


def breakdown(table: pd.DataFrame):
    """Each phase's share of an update (stacked to 100 %), one bar per device
    set and configuration, the update's total written beside it."""
    ms = table.pivot_table(index="bar", columns="phase", values="ms", aggfunc="median", sort=False)
    ms = ms[[p for p in PHASE_COLORS if p in ms.columns]]
    total = ms.sum(axis=1)
    share = ms.div(total, axis=0) * 100
    fig, ax = plt.subplots(figsize=(9.5, 0.34 * len(share) + 1.6))
    share.plot.barh(stacked=True, ax=ax, color=[PHASE_COLORS[p] for p in share.columns], width=0.8)
    for y, t in enumerate(total):
        ax.text(101, y, f"{t:.3g} ms" if t < 1000 else f"{t:,.0f} ms", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 112)
    ax.set_xlabel("share of the update (%), phases timed separately with a sync around each")
    ax.set_ylabel("")
    ax.legend(loc="lower center", bbox_to_anchor=(0.45, 1.0), ncol=5, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


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
