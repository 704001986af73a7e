"""One self-contained HTML report from a results folder: the answer on the
first screen (a one-sentence verdict, the speedup maps, the crossover), the
summary in sentences with numbers below it, then the charts that back it
(PNGs beside it too).

This module only assembles: the numbers come from :mod:`bench.facts`, their
wording from :mod:`bench.sentences`, tables from :mod:`bench.tables` and
:mod:`bench.machine`, the explanatory prose and the page from
``templates/report.html.j2``. What is left here is which sections and
figures a sweep gets, and encoding them. It imports no framework, so a
report can be built on a machine without Chainer or CuPy.
"""
import base64
import io
from pathlib import Path

import jinja2
from markupsafe import Markup
import matplotlib.pyplot as plt

from bench import (compare as cmp, facts, invocations, ladder, machine, peaks, plots, plots_compare, plots_ladder,
                   plots_maps, plots_quality, report_scaling, sentences, tables, trust, trust_sentences, ttq)
from bench.analysis import CPU, ONE_GPU, cost_models, predicted_speedup, speedup_grid
from bench.crossover import agreement
from bench.facts import Sweep
from bench.facts_scaling import baseline
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
        return {"name": name, "data": base64.b64encode(buf.getvalue()).decode(), "caption": caption, "alt": alt}


def _section(id_: str, title: str, figures: list, text: list = (), table=None) -> dict:
    """A section of the page; its explanatory prose is the template's, by ``id_``."""
    return {"id": id_, "title": title, "text": list(text), "figures": figures, "table": table}


def quality_section(sw: Sweep, figs: Figures) -> list:
    """Time to a model that generates the sine: the report's headline."""
    base = baseline(sw.runs)  # seeds of one precision, transport and scaling only
    table = ttq.time_to_quality(base)
    if table.empty:
        return []
    runs = ttq.measured(base)
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
    return [_section("ttq", "Time to a model that generates the sine", figures, table=tables.quality(table))]


def maps(sw: Sweep, models: dict, figs: Figures, other=None, ev=None) -> list:
    """The first screen's speedup maps: one GPU against the CPU (this
    machine's, or another machine's GPU against this CPU), then each
    multi-device set against its first device alone; with ``ev``
    (:class:`bench.trust.Evidence`) cells without a clear winner are marked."""
    out = []
    if other is not None:
        grid = cmp.cpu_vs_gpu(sw, other)
        if not grid.empty:
            out.append(figs.add("speedup_compared", plots_maps.speedup_heatmap(
                grid, f"{ONE_GPU} ({other.name}) vs this {CPU}"), f"{other.card} from {other.name} against "
                "this machine's CPU, same implementation and recipe.", "speedup map"))
    gpu = facts.one_gpu(sw.main)
    grid = speedup_grid(sw.main, ("cpu", SINGLE_DEVICE), (gpu, SINGLE_DEVICE)) if gpu else None
    if grid is not None and not grid.empty:
        a = agreement(models, sw.main, gpu, sw.seqlen, sw.impl)
        predicted = predicted_speedup(models, sw.seqlen, sw.impl) if a is not None and a.trusted else None
        unclear = trust.unclear_grid(trust.gpu_vs_cpu(ev, sw.main, gpu), grid) if ev is not None else None
        out.append(figs.add("speedup_1gpu_vs_cpu", plots_maps.speedup_heatmap(
            grid, f"{ONE_GPU} vs {CPU} ({sw.impl})", predicted, unclear), "CPU ms / GPU ms.", "speedup map"))
    for devices, strategy in facts.multi_sets(sw.main):
        first = parse_device_set(devices, check=False).first_spec
        grid = speedup_grid(sw.main, (first, SINGLE_DEVICE), (devices, strategy))
        if grid.empty:
            continue
        name, base = device_label(devices, strategy), ONE_GPU if first != "cpu" else CPU
        unclear = (trust.unclear_grid(trust.comparisons(ev, sw.main, (first, SINGLE_DEVICE), (devices, strategy)),
                                      grid) if ev is not None else None)
        out.append(figs.add(f"speedup_{devices.replace('+', '_')}_{strategy}", plots_maps.speedup_heatmap(
            grid, f"{name} vs {base}", unclear=unclear), f"{base} ms / {name} ms.", "speedup map"))
    return out


def ladder_section(sw: Sweep, limits: dict | None, figs: Figures) -> list:
    """Each device set and implementation by its fixed cost per update, and
    each implementation's crossover: only for a sweep of several. One
    precision's runs (fp32 where it ran): a fit through TF32 or 3xTF32 rows
    beside fp32 ones would mix two rates."""
    agg = baseline(sw.agg)
    if not ladder.shown(agg):
        return []
    rungs = ladder.rungs(agg, limits)
    crossings = ladder.crossings(agg, rungs)
    figures = [figs.add("overhead_ladder", plots_ladder.fixed_costs(rungs),
                        "Fixed cost per update of every device set and implementation (hatched: other than "
                        "sinebench's eager one), "
                        "with its rate.", "overhead ladder")]
    if crossings:
        figures.append(figs.add("crossovers", plots_ladder.crossovers(agg, crossings),
                                "ms per update against FLOPs per update on the CPU and one GPU, one panel per "
                                "implementation, same axes; dotted: where one GPU starts to win.", "crossovers"))
    text = sentences.ladder_rungs(rungs) + [sentences.crossing(c) for c in crossings]
    return [_section("ladder", "Overhead ladder: fixed cost per update, rate and crossover", figures, text,
                     tables.ladder(rungs))]


def sections(sw: Sweep, models: dict, figs: Figures, records: dict | None = None, peak: dict | None = None) -> list:
    secs = quality_section(sw, figs)
    base = baseline(sw.agg)  # tf32, a forced transport, weak scaling: their own sections
    if len(sw.agg):
        secs.append(_section("time", "Time per update and throughput", [
            figs.add("time_per_update", plots.time_vs_batch(base, "ms"),
                     "ms per update against batch size, one panel per n_units.", "ms per update"),
            figs.add("throughput", plots.time_vs_batch(base, "samples"),
                     "Windows (sequences of seqlen steps) per second.", "throughput")]))
    if models:
        secs.append(_section("cost", "Cost model: fixed cost per update + cost per FLOP", [
            figs.add("cost_model", plots.cost_model(sw.main, models),
                     "Measured ms per update against FLOPs per update; lines: fits whose median error is at "
                     "most 25 %.", "cost model")], table=tables.cost(models)))
    secs += ladder_section(sw, peak, figs)
    bars = facts.breakdown_bars(sw.breakdown, sw.base_ok) if not sw.breakdown.empty else None
    if bars is not None and not bars.empty:  # empty too where the profiled runs do not count
        secs.append(_section("breakdown", "Where the time goes", [
            figs.add("breakdown", plots_compare.breakdown(bars),
                     "Each phase's share of an update, one panel per size; total ms per update beside each bar.",
                     "breakdown")]))
    eff = facts.efficiency(sw.main)
    if not eff.empty:
        secs.append(_section("scaling", "Scaling efficiency", [
            figs.add("scaling", plots_compare.scaling(eff), "How many times faster than its first device alone, "
                     "against batch size; dotted: ideal.", "scaling")]))
    secs += report_scaling.sections(sw, records or {}, peak or {}, figs)
    pairs = facts.impl_pairs(base)
    if not pairs.empty:
        secs.append(_section("impls", "The article's approach beside sinebench's", [
            figs.add("implementations", plots_compare.impl_compare(pairs),
                     "ms per update of both implementations, one panel per device set.", "implementations")]))
    size, runs = facts.representative_runs(sw.base_ok)
    if size is not None and (ttt := facts.time_to_target(runs)) is not None:
        where = f"batch {size[0]}, n_units {size[1]}"
        secs.append(_section("quality", f"Learning: {where}", [
            figs.add("loss_vs_time", plots.loss_vs_time(sw.curves, runs, ttt.target, where),
                     "One-step test MSE against wall time.", "loss against time"),
            figs.add("closed_loop", plots.closed_loop_panels(sw.closed, runs, "closed-loop prediction"),
                     "Closed-loop prediction per device set (first repeat).", "closed loop")],
            text=[sentences.time_to_target_each(ttt)]))
    exactness = [] if sw.agg["grad_error"].isna().all() else [
        "Gradient error vs float64: how exact the run's arithmetic is — its first update's gradient of the "
        "recurrent weights against the same update in float64 (norm of the difference over the norm), measured "
        "once per configuration on one device; – where not measured (several devices, the PyTorch reference, "
        "large CPU sizes, older folders, or a first repeat that failed)."]
    per_probe = [] if sw.agg["per_probe"].isna().all() else [
        f"{tables.PER_PROBE}: each counted run's time over the host-speed gate's probe read while it was timed "
        f"({trust.PROBE_WORDS}), the median over the repeats. It takes out the host's drift where an update is "
        "the probe's own kind of work: the CPU at the smallest sizes, and often one GPU's small eager updates "
        "(results/h200x1-perprobe-2026-11-29). Where the device or the CPU's BLAS bounds an update it adds the "
        "probe's noise instead: compare those by ms." + _mpi_probe_words(trust.mpi_probes(sw.ok))]
    secs.append(_section("runs", "All configurations", [], text=per_probe + exactness,
                         table=tables.configurations(sw.agg)
                         + tables.failed(sw.runs) if len(sw.agg) else
                         Markup("<p>No run finished.</p>") + tables.failed(sw.runs)))
    return secs


def _mpi_probe_words(whose: str | None) -> str:
    """What an MPI job's ratio divides by, as the folder's rows say."""
    slowest = "its slowest rank's probe at each check (the job runs at that rank's pace)"
    return {None: "",
            "slowest rank": f" An MPI job's is over {slowest}.",
            "rank 0": " An MPI job's is over rank 0's probe (rows from before the slowest rank's was kept), though "
                      "the job runs at its slowest rank's pace.",
            "both": f" An MPI job's is over {slowest}, or rank 0's in rows from before that was kept."}[whose]


def page(folder, figs: Figures, compare=None, warn=lambda message: None) -> str:
    """The report's HTML for a results folder; its figures land in ``figs``;
    what cannot be read is passed to ``warn`` and left out."""
    folder = Path(folder)
    loaded = ResultStore(folder, warn=warn).load()
    sw = facts.sweep(loaded)
    env = invocations.read(folder, warn)
    records = invocations.records(env, sw.runs["invocation"].unique())
    peak = peaks.peaks(next(iter(records.values()), {}))
    # A sweep that ran tf32 only: its GPU fits are not bounded by the FP32 peak.
    tf32_only = len(sw.main) and (sw.main["precision"] != "fp32").all()
    models = cost_models(sw.main, {**peak, "gpu": None} if tf32_only else peak)
    other = cmp.load(compare) if compare is not None else None
    ev = trust.evidence(sw.base_ok, folder)
    summary = sentences.summary(sw, models, ev)
    lead = []
    if other is not None:
        grid = cmp.cpu_vs_gpu(sw, other)
        lead = [sentences.compared(grid, other.card, other.name, cmp.sizes_hint(sw, other))]
        verdict = sentences.verdict(sw, models, (grid, other.card, other.name), ev)
    else:
        verdict = sentences.verdict(sw, models, ev=ev)
    crossing = [s for s in summary if s.startswith(("So one GPU", "Measured, one GPU"))]
    template = jinja2.Environment(loader=jinja2.PackageLoader("bench", "templates"), autoescape=True)
    return template.get_template("report.html.j2").render(
        title=folder.name, machine=machine.summary_line(next(iter(records.values()), {})), verdict=verdict,
        lead=lead + crossing, maps=maps(sw, models, figs, other, ev), summary=summary,
        noise=noise_warning(sw, records), intervals=trust_sentences.coverage(ev),
        sections=sections(sw, models, figs, records, peak),
        problems=sentences.failures(facts.failure_counts(sw.runs), len(loaded["attempts"]) - len(sw.runs)),
        env_tables=machine.tables(env, sw.runs["invocation"].unique()))


def noise_warning(sw: Sweep, records: dict) -> tuple | None:
    """The warning at the top of the page (headline, detail), with what the
    sweeps recorded of the machine's load and whether they pinned (their
    last invocation's)."""
    noisy = trust.noisy(sw)
    if not noisy:
        return None
    last = list(records.values())[-1] if records else {}
    control = last.get("control") or {}
    return (trust_sentences.noise_headline(noisy),
            trust_sentences.noise_detail(noisy, last.get("uncontrolled"), control.get("pinned")))


def render(folder, output=None, compare=None, warn=lambda message: None) -> Path:
    """Write the report (``folder``/report.html by default) and its PNGs in figures/ beside it."""
    folder = Path(folder)
    output = Path(output) if output else folder / "report.html"
    figs = Figures()
    html = page(folder, figs, compare, warn)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(output, html)
    figdir = output.parent / "figures"
    figdir.mkdir(exist_ok=True)
    for name, png in figs.png.items():
        atomic_write(figdir / f"{name}.png", png)
    return output
