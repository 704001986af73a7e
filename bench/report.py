"""One self-contained HTML report from a results folder: a summary in
sentences with numbers, then the charts that back it (PNGs beside it too).

This module only assembles: the numbers come from :mod:`bench.facts`, their
wording from :mod:`bench.sentences`, the explanatory prose and the page from
``templates/report.html.j2``. What is left here is which sections and
figures a sweep gets, and encoding them. It imports no framework, so a
report can be built on a machine without Chainer or CuPy.
"""
import base64
import io
from pathlib import Path

import jinja2
import matplotlib.pyplot as plt
import pandas as pd
from markupsafe import Markup

from bench import envinfo, facts, plots, plots_quality, sentences, ttq
from bench.analysis import CPU, ONE_GPU, cost_models, predicted_speedup, speedup_grid
from bench.facts import Sweep
from bench.fsio import atomic_write
from bench.store import ResultStore
from sinelstm.devices import parse_device_set
from sinelstm.names import SINGLE_DEVICE, device_label


class Figures:
    """The report's PNGs: embedded in the page, and kept to write beside it."""

    def __init__(self):
        self.png = {}

    def add(self, name: str, fig, caption: str, alt: str) -> dict:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        self.png[name] = buf.getvalue()
        return {"data": base64.b64encode(buf.getvalue()).decode(), "caption": caption, "alt": alt}


def _section(id_: str, title: str, figures: list, text: list = (), table=None) -> dict:
    """A section of the page; its explanatory prose is the template's, by ``id_``."""
    return {"id": id_, "title": title, "text": list(text), "figures": figures, "table": table}


def quality_section(sw: Sweep, figs: Figures) -> list:
    """Time to a model that generates the sine: the report's headline."""
    table = ttq.time_to_quality(sw.runs)
    if table.empty:
        return []
    runs = ttq.measured(sw.runs)
    target = float(table["target"].iloc[0])
    figures = [figs.add("time_to_quality", plots_quality.time_to_quality_bars(table),
                        "Seconds of training until the model generates the sine: mean of the seeds without the "
                        "fastest and slowest (MLPerf's rule); whiskers from the fastest to the slowest seed.",
                        "time to quality")]
    if not sw.curves.empty and sw.curves["rmse_all"].notna().any():
        figures.append(figs.add("rmse_vs_time", plots_quality.rmse_vs_time(sw.curves, runs, target),
                                f"Closed-loop RMSE against seconds of training, every seed; dotted: the target "
                                f"{target:g}.", "closed-loop error against time"))
    examples = ttq.reached_examples(runs)
    if len(examples) and not sw.closed.empty:
        warmup = int(sw.closed["prediction"].isna().groupby(sw.closed["run_id"]).sum().median())
        figures.append(figs.add("generated", plots_quality.generated_grid(sw.closed, examples, warmup),
                                "What reached models generate: one seed per configuration.", "generated sine"))
    return [_section("ttq", "Time to a model that generates the sine", figures, table=quality_table(table))]


def quality_table(table: pd.DataFrame) -> Markup:
    t = table.sort_values(["recipe", "batchsize", "n_units", "mean_s"])
    shown = pd.DataFrame({
        "device set": t["label"], "recipe": t["recipe"], "batch": t["batchsize"], "n_units": t["n_units"],
        "seeds reached": [f"{r} / {n}" for r, n in zip(t["reached"], t["seeds"])],
        "time to quality (s)": [sentences.fmt_s(v) for v in t["mean_s"]],
        "fastest – slowest seed (s)": [f"{a:.3g} – {b:.3g}" if pd.notna(a) else "–"
                                       for a, b in zip(t["fastest_s"], t["slowest_s"])],
        "updates to quality": [f"{v:.0f}" if pd.notna(v) and v != float("inf") else "–" for v in t["mean_updates"]],
    })
    return Markup(shown.to_html(index=False, escape=True))


def sections(sw: Sweep, models: dict, figs: Figures) -> list:
    secs = quality_section(sw, figs)
    if len(sw.agg):
        secs.append(_section("time", "Time per update and throughput", [
            figs.add("time_per_update", plots.time_vs_batch(sw.agg, "ms"),
                     "ms per update against batch size, one panel per n_units.", "ms per update"),
            figs.add("throughput", plots.time_vs_batch(sw.agg, "samples"),
                     "Windows (sequences of seqlen steps) per second.", "throughput")]))
    secs += speedup_sections(sw, models, figs)
    if models:
        secs.append(_section("cost", "Cost model: fixed cost per update + cost per FLOP", [
            figs.add("cost_model", plots.cost_model(sw.main, models),
                     "Measured ms per update against FLOPs per update, with fitted lines.", "cost model")],
            table=cost_table(models)))
    if not sw.breakdown.empty:
        secs.append(_section("breakdown", "Where the time goes", [
            figs.add("breakdown", plots.breakdown(facts.breakdown_bars(sw.breakdown, sw.ok)),
                     "Phase times per update.", "breakdown")]))
    eff = facts.efficiency(sw.main)
    if not eff.empty:
        secs.append(_section("scaling", "Scaling efficiency", [
            figs.add("scaling", plots.scaling(eff), "Scaling efficiency.", "scaling")]))
    pairs = facts.impl_pairs(sw.agg)
    if not pairs.empty:
        secs.append(_section("impls", "The article's approach beside sinebench's", [
            figs.add("implementations", plots.impl_compare(pairs), "ms per update by implementation.",
                     "implementations")]))
    size, runs = facts.representative_runs(sw.ok)
    if size is not None and (ttt := facts.time_to_target(runs)) is not None:
        where = f"batch {size[0]}, n_units {size[1]}"
        secs.append(_section("quality", f"Learning: {where}", [
            figs.add("loss_vs_time", plots.loss_vs_time(sw.curves, runs, ttt.target, where),
                     "One-step test MSE against wall time.", "loss against time"),
            figs.add("closed_loop", plots.closed_loop_panels(sw.closed, runs, "closed-loop prediction"),
                     "Closed-loop prediction per device set (first repeat).", "closed loop")],
            text=[sentences.time_to_target_each(ttt)]))
    secs.append(_section("runs", "All configurations", [], table=runs_table(sw)))
    return secs


def speedup_sections(sw: Sweep, models: dict, figs: Figures) -> list:
    """One GPU against the CPU, then each multi-device set against its first device alone."""
    out = []
    gpu = facts.one_gpu(sw.main)
    grid = speedup_grid(sw.main, ("cpu", SINGLE_DEVICE), (gpu, SINGLE_DEVICE)) if gpu else pd.DataFrame()
    if not grid.empty:
        predicted = predicted_speedup(models, sw.seqlen, sw.impl)
        out.append(_section("speedup-gpu", "One GPU against the CPU", [figs.add(
            "speedup_1gpu_vs_cpu", plots.speedup_heatmap(grid, f"{ONE_GPU} vs {CPU} ({sw.impl})", predicted),
            "Speedup of one GPU over the CPU.", "speedup heatmap")]))
    for devices, strategy in facts.multi_sets(sw.main):
        first = parse_device_set(devices, check=False).first_spec
        grid = speedup_grid(sw.main, (first, SINGLE_DEVICE), (devices, strategy))
        if grid.empty:
            continue
        name = device_label(devices, strategy)
        base = ONE_GPU if first != "cpu" else "the CPU"
        out.append(_section(f"speedup-{devices}-{strategy}", f"{name} against {base}", [figs.add(
            f"speedup_{devices.replace('+', '_')}_{strategy}", plots.speedup_heatmap(grid, f"{name} vs {base}"),
            f"Speedup of {name} over {base}.", "speedup heatmap")]))
    return out


def cost_table(models: dict) -> Markup:
    rows = [{"device set": m.label, "fixed ms": f"{m.fixed_ms:.3g}", "rate": m.rate_text,
             "median error": f"{m.rel_error:.0%}", "sizes": m.points} for m in models.values()]
    return Markup(pd.DataFrame(rows).to_html(index=False, escape=True))


def runs_table(sw: Sweep) -> Markup:
    if sw.agg.empty:
        return Markup("<p>No run finished.</p>")
    html = facts.configurations(sw.agg).to_html(index=False, escape=True, float_format=lambda v: f"{v:.4g}",
                                                na_rep="–")
    failed = facts.failed_runs(sw.runs)
    if len(failed):
        html += "<p>Runs that did not finish:</p>" + failed[["run_id", "status", "message"]].to_html(
            index=False, escape=True)
    return Markup(html)


def machine(env: dict) -> str:
    cpu, gpu = env.get("cpu", {}), env.get("gpu", {})
    gpus = ", ".join(f"{g['id']}: {g['name']}" for g in gpu.get("devices", [])) or "no GPU"
    return (f"CPU: {cpu.get('model', '?')} ({cpu.get('usable_cores', '?')} cores usable) · GPUs: {gpus} · "
            f"recorded {env.get('recorded_at', '?')} · commit {env.get('git_commit', '?')}")


def env_table(env: dict) -> Markup:
    if not env:
        return Markup("<p>No env.json.</p>")
    flat = pd.json_normalize(env, sep=".").T.reset_index()
    flat.columns = ["field", "value"]
    flat = flat[flat["field"] != "command"]
    return Markup(flat.to_html(index=False, escape=True))


def page(folder, figs: Figures, warn=lambda message: None) -> str:
    """The report's HTML for a results folder; its figures land in ``figs``;
    what cannot be read is passed to ``warn`` and left out."""
    folder = Path(folder)
    tables = ResultStore(folder, warn=warn).load()
    sw = facts.sweep(tables)
    env = envinfo.load(folder, warn)
    models = cost_models(sw.main)
    summary = sentences.summary(sw, models)
    secs = sections(sw, models, figs)
    template = jinja2.Environment(loader=jinja2.PackageLoader("bench", "templates"), autoescape=True)
    return template.get_template("report.html.j2").render(
        title=folder.name, machine=machine(env), summary=summary, sections=secs,
        problems=sentences.failures(facts.failure_counts(sw.runs), len(tables["attempts"]) - len(sw.runs)),
        command=env.get("command", "unknown"),
        env_table=env_table(env))


def render(folder, output=None, warn=lambda message: None) -> Path:
    """Write the report (``folder``/report.html by default) and its PNGs in figures/ beside it."""
    folder = Path(folder)
    output = Path(output) if output else folder / "report.html"
    figs = Figures()
    html = page(folder, figs, warn)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(output, html)
    figdir = output.parent / "figures"
    figdir.mkdir(exist_ok=True)
    for name, png in figs.png.items():
        atomic_write(figdir / f"{name}.png", png)
    return output
