"""Charts of the scaling axes: speedup and efficiency against device count
(with the ideal line), TF32 against FP32, and each NCCL transport's
multi-device speedup. Series are strategy · precision (colour: strategy, as
everywhere; line style: precision), so that one chart carries both axes."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench import style  # noqa: E402
from sinelstm.names import PRECISIONS, STRATEGIES, device_label  # noqa: E402

DASHES = dict(zip(PRECISIONS, ["-", "--", "-."]))
TRANSPORT_COLOURS = {"default": "#1f77b4", "p2p": "#2ca02c", "shm": "#ff7f0e", "socket": "#d62728"}


def _series_style(strategy: str, precision: str, kind: str = "GPU", other_impl: bool = False) -> dict:
    # the strategy's colour and marker for this kind of device, as in every
    # chart; a second implementation's curves darker, with diamonds
    label = device_label("0+1" if kind == "GPU" else "cpu+cpu", strategy)
    c = style.colour(label)
    if other_impl:
        c = tuple(0.55 * v for v in matplotlib.colors.to_rgb(c))
    return {"color": c, "marker": "D" if other_impl else style.marker(label), "ls": DASHES.get(precision, ":"),
            "mec": c, "mfc": c if precision == PRECISIONS[0] else "white", "lw": 2.2 if other_impl else 1.5}


def _legend(fig, axes, rows_used: int):
    seen = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    ncol = min(4, len(seen)) or 1
    fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=ncol, frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0.05 * math.ceil(len(seen) / ncol) / rows_used + 0.02, 1, 1))


def _label_ends(ax, ends: list, top: float):
    """Each curve's last speedup beside its point, pushed up where two would
    print over each other (the speedup axis runs from 0 to 1.1 × ``top``)."""
    gap, shown_at = 0.05 * top * 1.1, {}
    for x, y, colour in sorted(ends, key=lambda e: (e[0], e[1])):
        shown = max(y, shown_at.get(x, -math.inf) + gap)
        shown_at[x] = shown
        ax.annotate(f"{y:.2f}×", (x, y), xytext=(x + 0.04 * top, shown), textcoords="data", fontsize=8,
                    va="center", color=colour)


def scaling_curves(c: pd.DataFrame, scaling: str, kind: str):
    """One column per size; top row speedup over one device with the ideal
    (as many times as devices), bottom row efficiency with the ideal 100 %."""
    g = c[(c["scaling"] == scaling) & (c["kind"] == kind)]
    sizes = list(dict.fromkeys(g.sort_values(["n_units", "per_device", "batchsize"])["size"]))
    fig, axes = plt.subplots(2, len(sizes), figsize=(max(4.2 * len(sizes), 6), 6.4), squeeze=False,
                             sharex=True, sharey="row")
    counts = sorted(g["n_devices"].unique())
    unit = "GPUs" if kind == "GPU" else "CPU replicas"
    for col, size in enumerate(sizes):
        top, bottom = axes[0][col], axes[1][col]
        top.plot(counts, counts, color="0.35", ls=":", lw=1.3, label="ideal")
        bottom.axhline(1, color="0.35", ls=":", lw=1.3)
        ends = []
        for series, s in g[g["size"] == size].groupby("series", sort=False):
            s = s.sort_values("n_devices")
            kw = _series_style(s["strategy"].iloc[0], s["precision"].iloc[0], kind,
                               "main" in s and not s["main"].iloc[0])
            top.plot(s["n_devices"], s["speedup"], label=series, **kw)
            bottom.plot(s["n_devices"], s["efficiency"], **kw)
            last = s.iloc[-1]
            ends.append((last["n_devices"], last["speedup"], kw["color"]))
        _label_ends(top, ends, max(counts))
        top.set_title(size, fontsize=10)
        bottom.set_xlabel(f"{unit} (n)")
        bottom.set_xticks(counts)
        bottom.set_ylim(0, max(1.15, float(g["efficiency"].max()) * 1.1))
        bottom.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        top.set_ylim(0, max(counts) * 1.1)
        top.set_xlim(0.7, max(counts) * 1.18)  # room for the last point's label
    axes[0][0].set_ylabel("times faster than 1 device")
    axes[1][0].set_ylabel("efficiency (speedup / n)")
    fig.suptitle(f"{scaling.capitalize()} scaling, {unit}: "
                 + ("global batch fixed" if scaling == "strong" else "batch per device fixed"), fontsize=11)
    _legend(fig, axes[0], 2)
    return fig


HATCHES = dict(zip(PRECISIONS[1:], ["", "//"]))


def precision_bars(ps: pd.DataFrame):
    """Each other precision's speedup over fp32 per size, one bar per device
    set and precision (colour: the set; hatched: the second precision)."""
    ps = ps.assign(size=[f"b{b}, n{n}" for b, n in zip(ps["batchsize"], ps["n_units"])])
    ps = ps.sort_values(["n_units", "batchsize"])
    sizes = list(dict.fromkeys(ps["size"]))
    others = [p for p in PRECISIONS[1:] if p in set(ps["precision"])]
    series = [(label, p) for label in style.order(ps["label"]) for p in others]
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(sizes) * max(1, len(series)) / 2 + 3), 3.8))
    x = np.arange(len(sizes))
    for i, (label, precision) in enumerate(series):
        g = ps[(ps["label"] == label) & (ps["precision"] == precision)].set_index("size").reindex(sizes)
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, g["speedup"], width,
                      label=label if len(others) == 1 else f"{label} · {precision}", color=style.colour(label),
                      hatch=HATCHES.get(precision, ""), edgecolor="white")
        for b, v in zip(bars, g["speedup"]):
            if pd.notna(v):
                ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.2f}×", ha="center", va="bottom", fontsize=7)
    ax.axhline(1, color="0.3", lw=0.9)
    ax.set_xticks(x, sizes, rotation=20, ha="right")
    ax.set_ylabel(f"{' / '.join(others)} times faster than fp32")
    # Beside the axes: inside, it covers the tallest bars.
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def transport_speedup(ts: pd.DataFrame):
    """Each multi-GPU set's speedup over one GPU at each size, one line per
    transport; a cross marks where the set is slower than one GPU."""
    panels = list(dict.fromkeys(ts.sort_values(["n_devices", "precision"])[["devices", "precision"]]
                                .itertuples(index=False, name=None)))
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 3.9 * rows), squeeze=False, sharey=True)
    flat = list(axes.flat)
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    for ax, (devices, precision) in zip(flat, panels):
        g = ts[(ts["devices"] == devices) & (ts["precision"] == precision)]
        sizes = g.sort_values("flops")[["batchsize", "n_units"]].drop_duplicates()
        order = {(b, n): i for i, (b, n) in enumerate(sizes.itertuples(index=False, name=None))}
        for transport, t in g.groupby("transport"):
            t = t.assign(x=[order[(b, n)] for b, n in zip(t["batchsize"], t["n_units"])]).sort_values("x")
            c = TRANSPORT_COLOURS.get(transport, "0.4")
            ax.plot(t["x"], t["speedup"], color=c, marker="o", label=transport)
            lose = t[t["loses"]]
            ax.plot(lose["x"], lose["speedup"], ls="none", marker="X", ms=11, color=c, mec="black",
                    label="slower than 1 GPU" if len(lose) else None)
        ax.axhline(1, color="0.2", lw=1)
        n = g["n_devices"].iloc[0]
        ax.axhline(n, color="0.35", ls=":", lw=1.2)
        ax.text(0, n, f" ideal {n}×", fontsize=8, va="bottom", color="0.35")
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}×"))
        ax.set_xticks(range(len(order)), [f"b{b}\nn{u}" for b, u in order], fontsize=8)
        ax.set_title(f"{device_label(devices, STRATEGIES[1])} vs 1 GPU, {precision}", fontsize=10)
        ax.set_ylabel("times faster than 1 GPU")
    _legend(fig, flat[:len(panels)], rows)
    return fig
