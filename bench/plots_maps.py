"""Speedup maps (batch x n_units): every map on one fixed, symmetric log
scale, so that one shade means one speedup in every map of every report;
the measured 1.0x boundary drawn along the cells' edges, the cost model's
prediction dashed only where the caller trusts it, both named in a legend
below the map rather than written over the cells."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from bench.sentences import fmt_x  # noqa: E402
from bench.style import SPEEDUP_LIMIT, speedup_ticks  # noqa: E402


def boundary_segments(grid: pd.DataFrame) -> list:
    """Cell edges between a cell where ``other`` wins (> 1) and a neighbour
    where it does not, as ((x0, x1), (y0, y1)) in cell units."""
    win = grid.to_numpy(float) > 1
    known = ~np.isnan(grid.to_numpy(float))
    segs = []
    rows, cols = win.shape
    for i in range(rows):
        for j in range(cols):
            if j + 1 < cols and known[i, j] and known[i, j + 1] and win[i, j] != win[i, j + 1]:
                segs.append(((j + 1, j + 1), (i, i + 1)))
            if i + 1 < rows and known[i, j] and known[i + 1, j] and win[i, j] != win[i + 1, j]:
                segs.append(((j, j + 1), (i + 1, i + 1)))
    return segs


def speedup_heatmap(grid: pd.DataFrame, title: str, predicted=None, unclear: pd.DataFrame | None = None):
    """``grid``: speedups, batch sizes as rows and n_units as columns;
    ``predicted(batch, units) -> speedup`` adds the cost model's 1.0x line;
    ``unclear`` (True where the speedup's 95 % interval includes 1.0) hatches
    those cells and writes their speedup with a '≈': no clear winner."""
    values = grid.to_numpy(float)
    rows, cols = values.shape
    fig, ax = plt.subplots(figsize=(0.78 * cols + 2.3, 0.5 * rows + 1.9))
    logs = np.clip(np.log2(values), -SPEEDUP_LIMIT, SPEEDUP_LIMIT)
    mesh = ax.pcolormesh(np.arange(cols + 1), np.arange(rows + 1), np.ma.masked_invalid(logs), cmap="RdBu",
                         vmin=-SPEEDUP_LIMIT, vmax=SPEEDUP_LIMIT, edgecolors="white", linewidth=1)
    tied = (unclear.reindex(index=grid.index, columns=grid.columns).fillna(False).to_numpy(bool)
            if unclear is not None else np.zeros_like(values, dtype=bool))
    for i in range(rows):
        for j in range(cols):
            if np.isfinite(values[i, j]):
                dark = abs(logs[i, j]) > 0.55 * SPEEDUP_LIMIT
                if tied[i, j]:
                    ax.add_patch(Rectangle((j, i), 1, 1, fill=False, hatch="///", edgecolor="#777", lw=0))
                ax.text(j + 0.5, i + 0.5, ("≈" if tied[i, j] else "") + fmt_x(values[i, j]), ha="center",
                        va="center", fontsize=9, color="white" if dark else "black",
                        bbox=dict(facecolor="white", alpha=0.7, lw=0, pad=1) if tied[i, j] else None)
    handles = []
    if tied.any():
        handles.append(Rectangle((0, 0), 1, 1, fill=False, hatch="///", edgecolor="#777",
                                 label="no clear winner (95 % interval includes 1.0×)"))
    for (xs, ys) in boundary_segments(grid):
        ax.plot(xs, ys, color="black", lw=2.5, solid_capstyle="butt")
    if boundary_segments(grid):
        handles.append(Line2D([], [], color="black", lw=2.5, label="measured 1.0× boundary"))
    if predicted is not None and rows > 1 and cols > 1:
        bs, us = np.log(grid.index.to_numpy(float)), np.log(grid.columns.to_numpy(float))
        yy, xx = np.linspace(0, rows - 1, 60), np.linspace(0, cols - 1, 60)
        b = np.exp(np.interp(yy, np.arange(rows), bs))
        u = np.exp(np.interp(xx, np.arange(cols), us))
        z = np.array([[predicted(bi, ui) for ui in u] for bi in b])
        if np.nanmin(z) < 1 < np.nanmax(z):
            ax.contour(xx + 0.5, yy + 0.5, z, levels=[1.0], colors="black", linewidths=1.5, linestyles="--")
            handles.append(Line2D([], [], color="black", lw=1.5, ls="--", label="cost model's 1.0×"))
    ax.set_xticks(np.arange(cols) + 0.5, [str(c) for c in grid.columns])
    ax.set_yticks(np.arange(rows) + 0.5, [str(r) for r in grid.index])
    ax.set_xlabel("n_units")
    ax.set_ylabel("batch size")
    ax.set_title(title, fontsize=11)
    ax.tick_params(length=0)
    pos, labels = speedup_ticks()
    bar = fig.colorbar(mesh, ax=ax, ticks=pos, fraction=0.06, pad=0.03)
    bar.ax.set_yticklabels(labels, fontsize=8)
    bar.set_label("speedup (blue: faster)", fontsize=9)
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(len(handles), 2),
                  frameon=False, fontsize=8, handlelength=2.2)
    fig.tight_layout()
    return fig
