"""The report's sections for the scaling axes: device count (strong and weak
scaling), precision, and NCCL transport. Each appears only when the sweep
measured that axis: two device counts of one kind or more, two precisions,
two transports (or a bus-bandwidth measurement in env.json). Numbers from
:mod:`bench.facts_scaling`, words from :mod:`bench.sentences_scaling`."""
from markupsafe import Markup

from bench import facts_scaling as fs
from bench import plots_scaling, sentences_scaling
from bench.tables import html_table, num


def _section(id_, title, figures, text=(), table=None) -> dict:
    return {"id": id_, "title": title, "text": list(text), "figures": figures, "table": table}


def devices_section(agg, figs) -> list:
    if not fs.has_scaling(agg):
        return []
    c = fs.curves(agg)
    figures = []
    for scaling, kind in c[["scaling", "kind"]].drop_duplicates().itertuples(index=False, name=None):
        figures.append(figs.add(
            f"scaling_{scaling}_{kind.lower()}", plots_scaling.scaling_curves(c, scaling, kind),
            f"{scaling.capitalize()} scaling: times faster than one device (top) and efficiency (bottom) against "
            "the number of devices, one panel per size; dotted: ideal. Solid lines fp32, dashed tf32.",
            f"{scaling} scaling"))
    if not figures:
        return []
    return [_section("devices", "Scaling with the number of devices", figures,
                     [sentences_scaling.best(b) for b in fs.best_at_most_devices(c)])]


def cost_table(crossovers) -> Markup:
    rows, seen_cpu = [], False
    for c in crossovers:
        for who, m in (("CPU (fp32)", c.cpu), (f"1 GPU ({c.precision})", c.gpu)):
            if m is None or (who.startswith("CPU") and seen_cpu):
                continue
            seen_cpu = seen_cpu or who.startswith("CPU")
            rows.append([who, num(m.fixed_ms), m.rate_text, f"{m.rel_error:.0%}", str(m.points),
                         "–" if c.flops is None or who.startswith("CPU") else f"{c.flops:.2g}"])
    return html_table(["<model", "fixed ms", "<rate", "median error", "sizes", "crossover (FLOPs/update)"], rows)


def precision_section(agg, peaks, figs) -> list:
    ps = fs.precision_speedup(agg)
    crossovers = fs.precision_crossovers(agg, peaks)
    if ps.empty:
        return []
    figures = [figs.add("precision", plots_scaling.precision_bars(ps),
                        "How many times faster TF32 is than fp32 at each size, per device set (same runs "
                        "otherwise).", "tf32 against fp32")]
    return [_section("precision", "TF32 against FP32", figures, sentences_scaling.precision(ps, crossovers),
                     table=cost_table(crossovers) if any(c.gpu for c in crossovers) else None)]


def busbw_table(bw) -> Markup:
    rows = [[r["devices"], r["transport"], num(r["latency_us"]), num(r["busbw_GBps"]), r["paths"] or "–",
             r["why"] or "–"] for _, r in bw.iterrows()]
    return html_table(["<device set", "<transport", "all-reduce latency (µs)", "bus bandwidth (GB/s)",
                       "<NCCL's paths", "<problem"], rows)


def transport_section(agg, records, figs) -> list:
    ts = fs.transport_speedup(agg)
    bw = fs.bus_bandwidth(records)
    several = ts["transport"].nunique() > 1
    if not several and bw.empty:
        return []
    figures = [figs.add("transports", plots_scaling.transport_speedup(ts),
                        "Each multi-GPU set's speedup over one GPU at each size (left to right: more FLOPs per "
                        "update), one line per NCCL transport; ✕: slower than one GPU; dotted: ideal.",
                        "speedup per transport")] if several else []
    text = sentences_scaling.transport(ts, fs.link_losses(ts)) if several else []
    return [_section("transport", "What the link between GPUs does", figures, text,
                     table=busbw_table(bw) if not bw.empty else None)]


def sections(sw, records: dict, peaks: dict, figs) -> list:
    agg = sw.agg[sw.agg["impl"] == sw.impl]
    agg = agg[agg["seqlen"] == sw.seqlen]
    return devices_section(agg, figs) + precision_section(agg, peaks, figs) + transport_section(agg, records, figs)
