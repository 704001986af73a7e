"""Charts that compare: multi-device sets against one device (with the
ideal line), the article's implementation against sinebench's, and where an
update's time goes. Small multiples, one panel per size or device set, so
that each comparison is read along one short axis instead of a long stack."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bench import style  # noqa: E402
from bench.plots import legend_below, panels  # noqa: E402
from sinelstm.names import ARTICLE_IMPL, IMPLS, PHASES  # noqa: E402

PHASE_COLORS = dict(zip(PHASES, sns.color_palette("Set2", len(PHASES))))


def scaling(eff: pd.DataFrame):
    """Speedup over the first device alone against batch size, one panel per
    n_units; dotted: ideal (as many times faster as there are devices)."""
    units = sorted(eff["n_units"].unique())
    fig, axes = panels(len(units), height=3.3, sharey=True)
    ideal = sorted({round(s / e) for s, e in zip(eff["speedup"], eff["efficiency"])})
    for ax, n in zip(axes, units):
        for label, g in eff[eff["n_units"] == n].groupby("label"):
            g = g.sort_values("batchsize")
            ax.plot(g["batchsize"], g["speedup"], label=label, **style.line(label))
        for k in ideal:
            ax.axhline(k, color="0.3", ls=":", lw=1.2, label=f"ideal ({k}×)")
        ax.axhline(1, color="0.3", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(f"n_units = {n}", fontsize=10)
        ax.set_xlabel("batch size")
        if ax is axes[0] or (len(axes) > 2 and ax is axes[2]):
            ax.set_ylabel("times faster than 1 device")
    ax.set_ylim(bottom=0)
    legend_below(fig, axes)
    return fig


def impl_compare(pairs: pd.DataFrame):
    """ms per update of both implementations, one row per size, one panel
    per device set; the article's (hollow) joined to sinebench's (filled),
    how many times slower written beside it."""
    labels = style.order(pairs["label"])
    fig, axes = panels(len(labels), height=0.42 * pairs.groupby("label").size().max() / 2 + 1.6)
    for ax, label in zip(axes, labels):
        g = pairs[pairs["label"] == label]
        wide = g.pivot_table(index=["batchsize", "n_units"], columns="impl", values="ms").sort_index()
        y = np.arange(len(wide))
        colour = style.colour(label)
        for yi, (_, r) in zip(y, wide.iterrows()):
            a, s = r.get(ARTICLE_IMPL), r.get(IMPLS[0])
            ax.plot([a, s], [yi, yi], color=colour, lw=1.5, alpha=0.6)
            ratio = a / s
            note = ("about the same" if 0.95 < ratio < 1.05 else f"{ratio:.2g}× slower" if ratio > 1
                    else f"{1 / ratio:.2g}× faster")
            ax.text(max(a, s) * 1.25, yi, note, va="center", fontsize=8)
        ax.plot(wide[ARTICLE_IMPL], y, ls="none", marker=style.marker(label), mfc="white", mec=colour,
                label="article's approach")
        ax.plot(wide[IMPLS[0]], y, ls="none", marker=style.marker(label), color=colour, label="sinebench")
        ax.set_yticks(y, [f"b{b} / n{n}" for b, n in wide.index], fontsize=8)
        ax.invert_yaxis()  # the smallest size on top, as in the tables
        ax.set_xscale("log")
        lo, hi = np.nanmin(wide.to_numpy()), np.nanmax(wide.to_numpy())
        ax.set_xlim(lo / 1.5, hi * 6)
        ax.set_title(label, fontsize=10, color=colour)
        ax.set_xlabel("ms per update (median)")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def breakdown(table: pd.DataFrame):
    """Each phase's share of an update (stacked to 100 %), one panel per
    size, one bar per device set and implementation, its total beside it."""
    sizes = list(dict.fromkeys(zip(table["batchsize"], table["n_units"])))
    per = table.groupby(["batchsize", "n_units"])["bar"].nunique().max()
    fig, axes = panels(len(sizes), height=0.36 * per + 1.3, width=5.6)
    for ax, (b, n) in zip(axes, sizes):
        sub = table[(table["batchsize"] == b) & (table["n_units"] == n)]
        ms = sub.pivot_table(index="series", columns="phase", values="ms", aggfunc="median", sort=False)
        ms = ms[[p for p in PHASE_COLORS if p in ms.columns]]
        total = ms.sum(axis=1)
        share = ms.div(total, axis=0) * 100
        share.plot.barh(stacked=True, ax=ax, color=[PHASE_COLORS[p] for p in share.columns], width=0.75,
                        legend=False)
        for y, t in enumerate(total):
            ax.text(101, y, f"{t:.3g} ms" if t < 1000 else f"{t:,.0f} ms", va="center", fontsize=8)
        for tick in ax.get_yticklabels():
            tick.set_color(style.colour(tick.get_text()))
        ax.invert_yaxis()
        ax.set_xlim(0, 122)
        ax.set_xticks([0, 25, 50, 75, 100])
        ax.set_title(f"batch {b} / n_units {n}", fontsize=10)
        ax.set_xlabel("share of the update (%)")
        ax.set_ylabel("")
        ax.tick_params(axis="y", labelsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
