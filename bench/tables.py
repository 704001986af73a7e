"""The report's tables as HTML: human column names, one number format per
kind of number, and for long tables the raw value of each cell kept in
``data-v`` so that the page's few lines of script can sort and filter them
(the report stays one file that works offline)."""
import math

import pandas as pd
from markupsafe import Markup, escape

from bench import facts, sentences


def num(v, digits: int = 3) -> str:
    """Three significant digits, never an exponent for times or rates:
    0.00123, 4.56, 789, 12,345."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or pd.isna(v):
        return "–"
    v = float(v)
    return f"{v:,.0f}" if abs(v) >= 10 ** (digits - 1) else f"{v:.{digits}g}"


def sci(v) -> str:
    """Small errors (MSE) in one scientific format: 1.86e-03."""
    return "–" if v is None or pd.isna(v) else f"{float(v):.2e}"


def html_table(columns: list, rows: list, cls: str = "", id_: str = "") -> Markup:
    """``rows``: lists of cells, each text or (text, sort value); a column
    whose name starts with '<' is left-aligned (text), the rest right."""
    head = "".join(f'<th class="{"l" if c.startswith("<") else "r"}">{escape(c.lstrip("<"))}</th>' for c in columns)
    body = []
    for row in rows:
        cells = []
        for c, cell in zip(columns, row):
            text, value = cell if isinstance(cell, tuple) else (cell, None)
            attr = f' data-v="{escape(value)}"' if value is not None and pd.notna(value) else ""
            cells.append(f'<td class="{"l" if c.startswith("<") else "r"}"{attr}>{escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    ident = f' id="{escape(id_)}"' if id_ else ""
    return Markup(f'<div class="tablewrap"><table class="{escape(cls)}"{ident}><thead><tr>{head}</tr></thead>'
                  f'<tbody>{"".join(body)}</tbody></table></div>')


PER_PROBE = "ms per update / host probe ms"
# Columns left out where no configuration has a value: column -> heading.
OPTIONAL = {"grad_error": "gradient error vs float64", "per_probe": PER_PROBE}


def configurations(agg: pd.DataFrame) -> Markup:
    """Every configuration, sortable by clicking a heading, filterable."""
    t = facts.configurations(agg)
    cols = ["<implementation", "<device set", "batch", "n_units", "repeats", "ms per update",
            "middle half of updates (ms)", "fastest – slowest repeat (ms)", PER_PROBE, "windows per s",
            "time to MSE target (s)", "one-step test MSE", OPTIONAL["grad_error"]]
    rows = [[r["impl"], r["label"], (str(r["batchsize"]), r["batchsize"]), (str(r["n_units"]), r["n_units"]),
             (str(r["repeats"]), r["repeats"]), (num(r["ms"]), r["ms"]),
             (f"{num(r['ms_p25'])} – {num(r['ms_p75'])}", r["ms_p25"]),
             (f"{num(r['fastest repeat'])} – {num(r['slowest repeat'])}", r["fastest repeat"]),
             (num(r["per_probe"], 4), r["per_probe"]),  # drifts of 1 % show
             (num(r["samples_per_s"]), r["samples_per_s"]), (num(r["time_to_target_s"]), r["time_to_target_s"]),
             (sci(r["val_mse"]), r["val_mse"]), (sci(r["grad_error"]), r["grad_error"])] for _, r in t.iterrows()]
    # Not measured (an older folder, the gate off): no column of dashes.
    for col, heading in OPTIONAL.items():
        if t[col].isna().all():
            at = cols.index(heading)
            cols, rows = cols[:at] + cols[at + 1:], [r[:at] + r[at + 1:] for r in rows]
    filt = ('<p class="filter"><label>Filter: <input type="search" data-filter="configs" '
            'placeholder="e.g. GPU, b100, article"></label> <span class="hint">click a heading to sort</span></p>')
    return Markup(filt) + html_table(cols, rows, "sortable", "configs")


def failed(runs: pd.DataFrame) -> Markup:
    f = facts.failed_runs(runs)
    if f.empty:
        return Markup("")
    rows = [[r["run_id"], r["status"], r["message"]] for _, r in f.iterrows()]
    return Markup("<p>Runs that did not finish:</p>") + html_table(["<run", "<status", "<message"], rows)


def cost(models: dict) -> Markup:
    rows = []
    for m in models.values():
        peak = f"{m.peak_gflops / 1e3:.3g} TFLOP/s" if m.peak_gflops else "not recorded"
        rows.append([m.label, num(m.fixed_ms), m.rate_text + (" (at the peak)" if m.capped else ""), peak,
                     f"{m.rel_error:.0%}", "yes" if m.drawn else "no: error too large", str(m.points)])
    return html_table(["<device set", "fixed ms", "<rate", "<peak of its devices", "median error", "<drawn",
                       "sizes"], rows)


def quality(table: pd.DataFrame) -> Markup:
    t = table.sort_values(["recipe", "batchsize", "n_units", "mean_s"])
    rows = [[r["label"], r["recipe"], str(r["batchsize"]), str(r["n_units"]), f"{r['reached']} / {r['seeds']}",
             num(r["mean_s"]) if math.isfinite(r["mean_s"]) else "not reached",
             f"{num(r['fastest_s'])} – {num(r['slowest_s'])}" if pd.notna(r["fastest_s"]) else "–",
             num(r["mean_updates"]) if pd.notna(r["mean_updates"]) and math.isfinite(r["mean_updates"]) else "–"]
            for _, r in t.iterrows()]
    return html_table(["<device set", "<recipe", "batch", "n_units", "seeds reached", "time to quality (s)",
                       "fastest – slowest seed (s)", "updates to quality"], rows)


def ladder(rungs: list) -> Markup:
    """The overhead ladder (bench.ladder.rungs): cheapest fixed cost first."""
    rows = []
    for r in rungs:
        b, n, ms = r.smallest
        bl, nl, rate = r.largest
        rows.append([str(r.seqlen), r.label, (num(r.fixed_ms), r.fixed_ms),
                     (sentences.fmt_rate(r.flops_per_s), r.flops_per_s), _basis(r), (f"{num(ms)} (b{b}/n{n})", ms),
                     (f"{sentences.fmt_rate(rate)} (b{bl}/n{nl})", rate),
                     f"{r.fit.rel_error:.0%}" if r.fit is not None else "–"])
    return html_table(["steps", "<device set · implementation", "fixed ms per update", "<rate", "<from",
                       "<smallest update: ms", "<largest update: rate", "fit error"], rows, "ladder")


def _basis(r) -> str:
    """Where a rung's fixed cost and rate come from."""
    if r.fitted:
        return f"fit over {r.sizes} sizes"
    if r.fit is None:
        return "measured (one size)" if r.sizes < 2 else "measured"
    return f"measured (fit error {r.fit.rel_error:.0%})"

