"""The report's sections for the scaling axes: device count (strong and weak
scaling), precision, and NCCL transport. Each appears only when the sweep
measured that axis: two device counts of one kind or more, two precisions,
two transports (or a bus-bandwidth measurement in env.json). Numbers from
:mod:`bench.facts_scaling`, words from :mod:`bench.sentences_scaling`."""
import pandas as pd
from markupsafe import Markup

from bench import facts_scaling as fs
from bench import plots_scaling, sentences_scaling
from bench.tables import html_table, num
from sinelstm.names import device_label


def _section(id_, title, figures, text=(), table=None) -> dict:
    return {"id": id_, "title": title, "text": list(text), "figures": figures, "table": table}


def devices_section(agg, impls, figs) -> list:
    """One figure per scaling and kind, the curves of every implementation
    in ``impls`` (each against its own one device), and the split of every
    strong speedup whose batch share ran on one device too (also for a
    sweep of one and two GPUs alone, which has no curve)."""
    ls = fs.strong_losses(agg)
    figures, text = [], []
    if impls:
        c = fs.curves_by_impl(agg, impls)
        for scaling, kind in c[["scaling", "kind"]].drop_duplicates().itertuples(index=False, name=None):
            figures.append(figs.add(
                f"scaling_{scaling}_{kind.lower()}", plots_scaling.scaling_curves(c, scaling, kind),
                f"{scaling.capitalize()} scaling: times faster than one device (top) and efficiency (bottom) "
                "against the number of devices, one panel per size; dotted: ideal. Solid lines fp32, dashed tf32, "
                "dash-dotted 3xtf32"
                + ("; dark lines with diamonds: " + ", ".join(impls[1:]) + " (against its own one device)." if
                   len(impls) > 1 else "."),
                f"{scaling} scaling"))
        text = [sentences_scaling.best(b) for b in fs.best_at_most_devices(c)] if figures else []
    if not figures and ls.empty:
        return []
    return [_section("devices", "Scaling with the number of devices", figures, text + sentences_scaling.losses(ls),
                     table=losses_table(ls) if len(ls) else None)]


def losses_table(ls) -> Markup:
    """Where each strong-scaling speedup goes: the batch share's cap and
    what communication leaves of it (facts_scaling.strong_losses)."""
    rows = [[r["impl"], device_label(r["devices"], r["strategy"]), r["precision"],
             f"b{r['batchsize']}, n{r['n_units']}", num(r["base_ms"]), num(r["share_ms"]), num(r["ms"]),
             f"{num(r['speedup'])}×", f"{num(r['bound'])}×", f"{r['batch_efficiency']:.1%}",
             f"{r['parallel_efficiency']:.1%}"] for _, r in ls.iterrows()]
    return html_table(["<implementation", "<device set", "<precision", "<size", "1 device, ms",
                       "1 device at the share, ms", "set, ms", "speedup", "cap from the share",
                       "share's efficiency", "kept of the cap"], rows)


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


def precision_section(agg, peaks, figs, impl="") -> list:
    ps = fs.precision_speedup(agg)
    crossovers = fs.precision_crossovers(agg, peaks)
    if ps.empty:
        return []
    names = list(dict.fromkeys(ps["precision"]))
    others = " and ".join(names)
    figures = [figs.add(_name("precision", impl), plots_scaling.precision_bars(ps),
                        f"How many times faster {others} {'is' if len(names) == 1 else 'are'} than fp32 at each "
                        "size, per device set (same runs "
                        "otherwise).", f"{others} against fp32")]
    return [_section(_name("precision", impl), f"{others} against fp32" + _whose(impl), figures,
                     sentences_scaling.precision(ps, crossovers),
                     table=cost_table(crossovers) if any(c.gpu for c in crossovers) else None)]


def _name(base: str, impl: str) -> str:
    """A second implementation's section and figure names (the first's keep
    the template's prose)."""
    return f"{base}-{impl}" if impl else base


def _whose(impl: str) -> str:
    return f" — {impl}" if impl else ""


def busbw_table(bw) -> Markup:
    rows = [[r["devices"], r["transport"], num(r["latency_us"]), num(r["busbw_GBps"]), r["paths"] or "–",
             r["why"] or "–"] for _, r in bw.iterrows()]
    return html_table(["<device set", "<transport", "all-reduce latency (µs)", "bus bandwidth (GB/s)",
                       "<NCCL's paths", "<problem"], rows)


def transport_section(agg, records, figs, impl="") -> list:
    ts = fs.transport_speedup(agg)
    bw = fs.bus_bandwidth(records) if not impl else pd.DataFrame()  # the table once, with the first
    several = ts["transport"].nunique() > 1
    if not several and bw.empty:
        return []
    figures = [figs.add(_name("transports", impl), plots_scaling.transport_speedup(ts),
                        "Each multi-GPU set's speedup over one GPU at each size (left to right: more FLOPs per "
                        "update), one line per NCCL transport; ✕: slower than one GPU; dotted: ideal.",
                        "speedup per transport")] if several else []
    text = sentences_scaling.transport(ts, fs.link_losses(ts)) if several else []
    return [_section(_name("transport", impl), "What the link between GPUs does" + _whose(impl), figures, text,
                     table=busbw_table(bw) if not bw.empty else None)]


def sections(sw, records: dict, peaks: dict, figs) -> list:
    """The scaling figure with every implementation that scaled; the
    precision and transport sections of the summary's implementation, then
    of each other one that has them (the bus bandwidth table once)."""
    agg = sw.agg[sw.agg["seqlen"] == sw.seqlen]
    main = agg[agg["impl"] == sw.impl]
    out = devices_section(agg, fs.scaling_impls(agg, sw.impl), figs)
    out += precision_section(main, peaks, figs) + transport_section(main, records, figs)
    for impl in sorted(i for i in agg["impl"].unique() if i != sw.impl):
        mine = agg[agg["impl"] == impl]
        out += precision_section(mine, peaks, figs, impl) + transport_section(mine, records, figs, impl)
    return out
