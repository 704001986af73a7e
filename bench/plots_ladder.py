"""The overhead ladder's charts: each series' fixed cost per update as bars,
and the CPU-vs-GPU crossover of each implementation on shared axes, so that
the reader sees the crossover move as the fixed cost shrinks."""
import numpy as np
import pandas as pd

from bench import style
from bench.plots import panels  # sets matplotlib's Agg backend first
from bench.sentences import fmt_rate


def fixed_costs(rungs: list):
    """Horizontal bars, one panel per window length, cheapest at the top;
    each bar's fixed cost and rate written beside it."""
    lengths = sorted({r.seqlen for r in rungs})
    per = max(sum(r.seqlen == t for r in rungs) for t in lengths)
    fig, axes = panels(len(lengths), width=6.4, height=0.45 * per + 1.2, sharex=True)
    for ax, seqlen in zip(axes, lengths):
        rs = [r for r in rungs if r.seqlen == seqlen][::-1]  # barh draws bottom up
        y = np.arange(len(rs))
        for yi, r in zip(y, rs):  # hatched: another implementation than sinebench's
            ax.barh(yi, r.fixed_ms, color=style.colour(r.label), hatch="//" if "·" in r.label else None,
                    edgecolor="white")
        ax.set_yticks(y, [r.label for r in rs], fontsize=8)
        for yi, r in zip(y, rs):
            ax.text(r.fixed_ms * 1.08, yi, f"{r.fixed_ms:.3g} ms · {fmt_rate(r.flops_per_s)}",
                    va="center", fontsize=7)
        ax.set_xscale("log")
        ax.set_title(f"{seqlen}-step windows", fontsize=10)
        ax.set_xlabel("fixed cost per update (ms, log)")
    lo = min(r.fixed_ms for r in rungs)
    hi = max(r.fixed_ms for r in rungs)
    axes[0].set_xlim(lo / 2, hi * 12)
    fig.tight_layout()
    return fig


def crossovers(agg: pd.DataFrame, crossings: list):
    """One panel per implementation and window length: ms per update
    against FLOPs per update on the CPU and one GPU, fitted lines where the
    fit is good, and the crossover as a vertical line; all panels share
    their axes."""
    fig, axes = panels(len(crossings), width=5.0, height=3.6, sharex=True, sharey=True)
    sel = agg.dropna(subset=["ms", "flops"])
    grid = np.logspace(np.log10(sel["flops"].min()) - 0.3, np.log10(sel["flops"].max()) + 0.3, 100)
    for ax, c in zip(axes, crossings):
        for rung in (c.cpu, c.gpu):
            g = sel[(sel["seqlen"] == c.seqlen) & (sel["impl"] == rung.impl) & (sel["devices"] == rung.devices)
                    & (sel["strategy"] == rung.strategy)]
            kw = style.line(rung.label)
            ax.plot(g["flops"], g["ms"], ls="none", marker=kw["marker"], color=kw["color"], mfc=kw["mfc"],
                    label=rung.label, zorder=3)
            if rung.fitted:
                ax.plot(grid, rung.fit.predict_ms(grid), color=kw["color"], ls=kw["ls"], alpha=0.7)
        at = _crossing_flops(c)
        if at is not None:
            ax.axvline(at, color="0.3", ls=":", lw=1)
            ax.text(at, 0.97, f" {at:.2g} FLOPs", transform=ax.get_xaxis_transform(), fontsize=8, va="top")
        ax.set_xscale("log")
        ax.set_yscale("log")
        against = "" if c.cpu_impl == c.impl else f" vs CPU {c.cpu_impl}"
        ax.set_title(f"{c.impl}{against}, {c.seqlen} steps", fontsize=9)
        ax.set_xlabel("FLOPs per update")
        ax.set_ylabel("ms per update")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def _crossing_flops(c) -> float | None:
    """Where to draw the crossover: the fits' where both are good, else the
    measured boundary (the most FLOPs at which the CPU still wins)."""
    if c.by_model:
        return c.model_flops if 0 < c.model_flops < float("inf") else None
    if c.cells is not None and c.cells.clean and None not in (c.cells.cpu_wins_up_to, c.cells.gpu_wins_from):
        return float(np.sqrt(c.cells.cpu_wins_up_to * c.cells.gpu_wins_from))  # between the two cells
    return None
