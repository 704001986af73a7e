"""The report's statements in English: each function turns one fact from
:mod:`bench.facts` into sentences with its numbers, and computes nothing
beyond rounding. Kept apart from the facts so that rewording cannot change
a number, and apart from the page so that a test can read what the summary
says without rendering HTML."""
import math

import pandas as pd

from bench import analysis, crossover as xover, facts, ttq
from bench.facts_scaling import baseline
from bench.facts import ARTICLE
from sinelstm.devices import parse_device_set
from sinelstm.names import ARTICLE_RECIPE, SINGLE_DEVICE, device_label

AT_ARTICLE = f"the article's size (batch {ARTICLE[0]}, n_units {ARTICLE[1]})"


def fmt_ms(ms: float) -> str:
    return f"{ms:.3g} ms"


def fmt_x(x: float) -> str:
    return f"{x:.2g}×" if x < 10 else f"{x:.0f}×"


def fmt_flops(flops: float) -> str:
    for unit, scale in (("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
        if flops >= scale:
            return f"{flops / scale:.2g} {unit}"
    return f"{flops:.2g} FLOP"


def fmt_rate(flops_per_s: float) -> str:
    """1.23 TFLOP/s, 456 GFLOP/s, 7.8 MFLOP/s."""
    for unit, scale in (("TFLOP/s", 1e12), ("GFLOP/s", 1e9), ("MFLOP/s", 1e6)):
        if flops_per_s >= scale:
            return f"{flops_per_s / scale:.3g} {unit}"
    return f"{flops_per_s:.3g} FLOP/s"


def at(batch, units) -> str:
    return f"batch {batch} / n_units {units}"


def counts(c: facts.Counts, impl: str) -> str:
    uncounted = f"; {c.uncounted} not counted: timed on a slow or disturbed host, see below" if c.uncounted else ""
    return (f"{c.finished} of {c.runs} runs finished ({c.main_runs} with the {impl} implementation, over "
            f"{c.main_configs} configurations{uncounted}); times are medians of per-update times, then the median "
            f"over repeats.")


def no_gpu(cpu_ms: float | None, ran: str | None = None) -> list:
    """The summary without a GPU to compare; ``ran``: the GPU that ran, but
    none of whose runs counts."""
    out = [] if ran else ["No GPU ran in this sweep, so it shows only the CPU's side of the question; "
                          "run it on a GPU machine (or see the GPU sweeps in results/) for the crossover."]
    if cpu_ms is not None:
        out.append(f"At {AT_ARTICLE} the CPU takes {fmt_ms(cpu_ms)} per update.")
    return out + ([gpu_uncounted(ran)] if ran else [])


def gpu_uncounted(gpu: str) -> str:
    return (f"GPU {gpu} finished runs, but none of them counts: each was timed on a slow or disturbed host, so there "
            f"is no GPU time to set against the CPU's; run it again with more repeats, or --repeats auto.")


def none_counted(who: str) -> str:
    return (f"At {AT_ARTICLE} no run of {who} counts: each was timed on a slow or disturbed host, so this size "
            f"has no time to state; run it again with more repeats, or --repeats auto.")


def gpu_vs_cpu(f: facts.GpuVsCpu, comps: dict | None = None) -> list:
    """``comps`` ((batch, n_units) -> :class:`bench.intervals.Comparison`)
    adds each speedup's interval, and a winner is named only where it holds."""
    from bench import trust_sentences as ts

    comps = comps or {}
    card = f" ({', '.join(f.cards)})" if f.cards else ""
    out = [f"One GPU{card} beats the CPU in {f.wins} of {f.sizes} configurations (batch × n_units)."]
    if f.cpu_ms and f.gpu_ms:
        c = comps.get(ARTICLE)
        rel = "faster" if f.gpu_ms < f.cpu_ms else "slower"
        ratio = fmt_x(max(f.cpu_ms, f.gpu_ms) / min(f.cpu_ms, f.gpu_ms))
        said = (f"the GPU is {ratio} {rel}" if c is None or c.clear is not False else
                f"no clear winner: the GPU's speedup is {fmt_x(c.speedup)}")
        out.append(f"At {AT_ARTICLE} the CPU takes {fmt_ms(f.cpu_ms)} per update and one GPU {fmt_ms(f.gpu_ms)}: "
                   f"{said}{ts.interval(c, slower=rel == 'slower' and (c is None or c.clear is not False))}.")
    best, worst = comps.get((f.best.batch, f.best.units)), comps.get((f.worst.batch, f.worst.units))
    out.append(f"The GPU's largest lead is {fmt_x(f.best.speedup)}{ts.interval(best)} at "
               f"{at(f.best.batch, f.best.units)}; its worst showing is {fmt_x(f.worst.speedup)}"
               f"{ts.interval(worst)} at {at(f.worst.batch, f.worst.units)}.")
    return out


def cost_model(m) -> str:
    held = ("; held at what its devices can do at most — an unbounded fit needs a faster device than exists"
            if m.capped else "")
    bad = "; too large an error to draw it or read a crossover off it" if not m.drawn else ""
    return (f"Cost model for {m.label}: {m.fixed_ms:.3g} ms fixed per update plus the FLOPs at {m.rate_text} "
            f"(median error {m.rel_error:.0%} over {m.points} sizes{held}{bad}).")


def measured_crossover(m: xover.Measured, why: str) -> str:
    """The crossover read from the measured cells, with why not from the model."""
    if m.gpu_wins_from is None:
        out = f"Measured, one GPU is slower than the CPU in all {m.cells} configurations."
    elif m.cpu_wins_up_to is None:
        out = f"Measured, one GPU beats the CPU in all {m.cells} configurations."
    elif m.clean:
        out = (f"Measured, one GPU beats the CPU in every configuration above {m.cpu_wins_up_to:.2g} FLOPs per "
               f"update (the first: {at(*m.first_win)}, {m.gpu_wins_from:.2g} FLOPs) and the CPU wins every one "
               f"at or below it.")
    else:
        out = (f"Measured, one GPU beats the CPU in every configuration above {m.cpu_wins_up_to:.2g} FLOPs per "
               f"update and loses every one below {m.gpu_wins_from:.2g}; in between the shape decides (the GPU "
               f"already wins at {at(*m.first_win)}, the CPU still at {at(*m.last_loss)}).")
    return out + (f" The cost model's crossover is not stated: {why}." if why else "")


def why_not_model(a: xover.Agreement | None) -> str:
    if a is None:
        return ""
    if a.bad_fits:
        return f"the median error of the fit for {' and '.join(a.bad_fits)} is above {analysis.MAX_ERROR:.0%}"
    return (f"it puts {len(a.misplaced)} of the {a.cells} measured configurations on the wrong side of 1.0× "
            f"({', '.join(at(*c) for c in a.misplaced[:2])})")


def compared(grid: pd.DataFrame, card: str, name: str, hint: str) -> str:
    """This machine's CPU against another machine's GPU (see bench.compare)."""
    if grid.empty:
        return (f"No size ran both here and in {name}; to compare, run: {hint}" if hint else
                f"{name} has no finished one-GPU runs to compare with.")
    s = grid.stack().dropna()
    wins, best, worst = int((s > 1).sum()), s.idxmax(), s.idxmin()
    faster = f" (at most {fmt_x(s[best])}, at {at(*best)})" if wins else ""
    return (f"This machine's CPU against one {card} from {name}, at the {len(s)} sizes both ran: the GPU is "
            f"faster in {wins}{faster} and slower in {len(s) - wins}"
            + (f" (down to {fmt_x(s[worst])}, at {at(*worst)})." if wins < len(s) else "."))


def verdict(sw: facts.Sweep, models: dict, compare: tuple | None = None, ev=None) -> str:
    """The one sentence at the top of the page: time to quality first when the
    sweep measured it, then where one GPU beats the CPU per update."""
    lead = []
    table = ttq.time_to_quality(baseline(sw.runs))
    if not table.empty:
        fast = [f for f in ttq.fastest_per_size(table) if math.isfinite(f.mean_s)][:3]
        lead = [f"{f.label} at {at(f.batchsize, f.n_units)} ({fmt_s(f.mean_s)}"
                + (f"; {f.others[0][0]} {fmt_s(f.others[0][1])})" if f.others else ")") for f in fast]
    head = ("Fastest to a model that generates the sine: " + "; ".join(lead)) if lead else (
        "No device set trained a model that generates the sine within its budget"
        if (table["recipe"] != "article").any() else "")  # the article's recipe is known not to
    gpu = facts.one_gpu(sw.main)
    g = facts.gpu_vs_cpu(sw.main, sw.ok, gpu) if gpu else None
    if g is None and compare is not None and not compare[0].empty:
        grid, card, name = compare
        s = grid.stack().dropna()
        tail = (f"per update, one {card} from {name} beats this machine's CPU in {int((s > 1).sum())} of the "
                f"{len(s)} sizes both ran")
    elif g is None and compare is not None:
        tail = f"no GPU ran here, and no size ran both here and in {compare[2]} (the line below says how to)"
    elif g is None and gpu:
        tail = "the CPU did not run here, so no GPU is set against it" + _beat_one_gpu(sw)
    elif g is None:
        tail = ("no GPU ran here, so this is the CPU's side only: render it with --compare and a GPU machine's "
                "results folder to set it beside one")
    else:
        m = xover.measured(sw.main, gpu, sw.seqlen, sw.impl)
        where = (f" — every one above {fmt_flops(m.cpu_wins_up_to)} per update, from {at(*m.first_win)}"
                 if m.clean and None not in (m.cpu_wins_up_to, m.gpu_wins_from) else "")
        card = f"one {g.cards[0]}" if len(g.cards) == 1 else "one GPU"
        tail = f"per update, {card} beats the CPU in {g.wins} of {g.sizes} configurations{where}"
        if ev is not None:
            from bench import trust

            t = trust.tally(trust.gpu_vs_cpu(ev, sw.main, gpu))
            if t.judged:
                tail += (f" (clearly, beyond the 95 % interval, in {t.other_wins}; too close to call in "
                         f"{t.unclear})")
        tail += _beat_one_gpu(sw)
    if not head:
        return tail[0].upper() + tail[1:] + "."
    return f"{head} — {tail}."


def _beat_one_gpu(sw: facts.Sweep) -> str:
    """The verdict's clause on several GPUs against one ('' if none ran):
    the summary's implementation's best, and any other implementation's
    that does visibly better at the same precision (with its name, so that
    the headline does not understate what the sweep found)."""
    best = _best_gpu_speedup(sw.main)
    if best is None:
        return ""
    precision = sw.main["precision"].iloc[0] if "precision" in sw.main else None
    better = []
    for impl in sorted(set(sw.agg["impl"]) - {sw.impl}):
        rows, _ = facts.impl_rows(sw.agg, impl, sw.seqlen)
        top = _best_gpu_speedup(rows[rows["precision"] == precision] if precision is not None else rows)
        if top is not None and top["speedup"] > best["speedup"] and fmt_x(top["speedup"]) != fmt_x(best["speedup"]):
            better.append((impl, top))
    mine = f" with {sw.impl}" if better else ""
    if best["speedup"] < 1:  # "beat ... by 0.88x" would read as a win
        out = (f"; several GPUs were slower than one everywhere{mine} ({best['label']} at best "
               f"{fmt_x(best['speedup'])})")
        for impl, top in better:
            out += (f"; with {impl}, {top['label']} beat one GPU by at most {fmt_x(top['speedup'])}"
                    if top["speedup"] >= 1 else f" (with {impl}: {fmt_x(top['speedup'])})")
        return out
    also = "; ".join((impl if top["label"] == best["label"] else f"{top['label']} with {impl}")
                     + f": {fmt_x(top['speedup'])}" for impl, top in better)
    return f"; {best['label']} beat one GPU by at most {fmt_x(best['speedup'])}{mine}" + (f" ({also})" if also else "")


def _best_gpu_speedup(rows: pd.DataFrame):
    """The row of the largest speedup of a multi-GPU set over its first GPU
    in ``rows`` (CPU replicas are not GPUs), or None."""
    eff = facts.efficiency(rows)
    eff = eff[[parse_device_set(d, check=False).is_gpu for d in eff["devices"]]]
    return eff.loc[eff["speedup"].idxmax()] if len(eff) else None


def crossover(c: analysis.Crossover) -> str:
    if c.flops is None:
        return "By this fit one GPU never beats the CPU here."
    if c.flops == 0:
        return "By this fit one GPU beats the CPU at every size."
    examples = ", ".join(f"n_units ≈ {units:.0f} at batch {b}" for b, units in c.examples)
    return (f"So one GPU beats the CPU once an update carries more than {c.flops:.2g} FLOPs ({examples}): below "
            f"that the GPU's fixed cost per update — framework calls and kernel launches, not arithmetic — "
            f"dominates.")


def scaling(s: facts.Scaling, comps: dict | None = None) -> str:
    from bench import trust_sentences as ts

    comps = comps or {}
    point, ends = ts.interval_parts(comps.get((s.best.batch, s.best.units))) or (None, "")
    out = (f"{s.label} against one: at best {point or fmt_x(s.best.speedup)} (efficiency {s.best_efficiency:.0%}"
           f"{', ' + ends if ends else ''}) at {at(s.best.batch, s.best.units)}")
    if s.article is not None:
        c = comps.get(ARTICLE)
        out += (f"; at the article's size {fmt_x(s.article)}{ts.interval(c)}"
                + (", no clear winner" if c is not None and c.clear is False else ""))
    if s.communication_ms is not None:
        out += f", where communication alone takes {fmt_ms(s.communication_ms)} per update"
    return out + "."


def phase_split(p: facts.PhaseSplit) -> str:
    parts = ", ".join(f"{phase} {fmt_ms(ms)}" for phase, ms in p.top(3))
    return (f"Where an update's time goes at the article's size on {device_label(p.devices, '')}: {parts} "
            f"(of {fmt_ms(p.total)} with every phase synchronized).")


def impl_ratio(r: facts.Ratio) -> str:
    return (f"sinebench's implementation against the article's approach, same device sets and sizes: "
            f"{fmt_x(r.median)} faster in the median ({fmt_x(r.low)} to {fmt_x(r.high)}, {r.n} configurations).")


def time_to_target(size: tuple, t: facts.TimeToTarget) -> str:
    # The budget counts training alone; the time to target is wall time, evaluations included, so it can
    # exceed the budget (4x H200: 2.66 s within a 2 s budget read as a contradiction).
    budget = "within each run's training budget" + (f" ({t.budget_s:g} s)" if t.budget_s is not None else "")
    if t.fastest is None:
        return f"At {at(*size)} no device set reached one-step test MSE {t.target:g} {budget}."
    return (f"Time to one-step test MSE {t.target:g} at {at(*size)}: fastest {t.fastest[0]} in "
            f"{t.fastest[1]:.2f} s (wall time, evaluations included); {t.reached} of {len(t.times)} device sets "
            f"reached it {budget}.")


def time_to_target_each(t: facts.TimeToTarget) -> str:
    """Each device set's time, the ones that did not reach it named once."""
    reached = "; ".join(f"{label}: {s:.2f} s" for label, s in t.times if s is not None)
    missed = [label for label, s in t.times if s is None]
    if not reached:
        return (f"None of the {len(missed)} device sets reached one-step test MSE {t.target:g} within its "
                f"budget.")
    return (f"Time to one-step test MSE {t.target:g} (evaluations included): {reached}"
            + (f"; not reached: {', '.join(missed)}." if missed else "."))


def repeat_spread(r: facts.RepeatSpread) -> str:
    """The size of a difference that this machine's noise alone can make."""
    return (f"Repeat to repeat, a configuration's time moved by {r.median:.0%} in the median and by up to "
            f"{r.max:.0%} ({r.label} at {at(r.batch, r.units)}: {fmt_ms(r.ms_min)} to {fmt_ms(r.ms_max)}); "
            f"smaller differences than that are within this machine's noise.")


def failures(counts: pd.Series, retried: int = 0) -> str:
    parts = []
    if not counts.empty:
        parts.append("Not every run finished: " + ", ".join(f"{v} {k}" for k, v in counts.items())
                     + " (see 'All configurations').")
    if retried:
        parts.append(f"{retried} failed attempts were tried again; each run counts by its latest attempt.")
    return " ".join(parts)


def fmt_s(seconds: float, budget: float = math.nan) -> str:
    if math.isfinite(seconds):
        return f"{seconds:.3g} s"
    return f"not reached within {budget:g} s" if math.isfinite(budget) else "not reached"


def seeds_mean(n: int) -> str:
    """How the seeds became one time: MLPerf's rule, or all of them when too few to drop two."""
    if n >= 3:
        return f"mean of {n} seeds without the fastest and slowest"
    return "one seed" if n == 1 else f"mean of {n} seeds (too few to drop the fastest and slowest)"


def time_to_quality(f: ttq.Fastest) -> str:
    others = "; ".join(f"{label} {fmt_s(s, budget)}" for label, s, budget in f.others)
    return (f"Time to a model that generates the sine (closed-loop RMSE ≤ {f.target:g}) at batch {f.batchsize} / "
            f"n_units {f.n_units}, recipe {f.recipe}: fastest {f.label}, {fmt_s(f.mean_s)} of training "
            f"({seeds_mean(f.seeds)}; {f.reached} of {f.seeds} reached it, "
            f"{f.fastest_s:.3g}–{f.slowest_s:.3g} s)" + (f"; {others}." if others else "."))


def article_baseline(b: ttq.Baseline) -> str:
    return (f"The article's recipe (10-step windows from a zero state) is the baseline: {b.reached} of its {b.runs} "
            f"runs generate the sine (best closed-loop RMSE {b.best_rmse:.2f}, target {b.target:g}).")


def quality(runs: pd.DataFrame) -> list:
    """The headline: which device set trains a useful model fastest, per size."""
    table = ttq.time_to_quality(runs)
    if table.empty:
        return []
    target = float(table["target"].iloc[0])
    out = [time_to_quality(f) for f in ttq.fastest_per_size(table)]
    out += [f"At batch {b} / n_units {n}, recipe {recipe}, no device set trains a model that generates the sine "
            f"reliably: {hit} of {seeds} seeds reached closed-loop RMSE {target:g} within their budget."
            for recipe, b, n, hit, seeds in ttq.unreached_sizes(table) if recipe != ARTICLE_RECIPE]
    if (b := ttq.article_baseline(runs)) is not None:
        out.append(article_baseline(b))
    return out


def summary(sw: facts.Sweep, models: dict, ev=None) -> list:
    """The summary's sentences, in order, for a sweep and its cost models;
    ``ev`` (:class:`bench.trust.Evidence`) adds intervals and the judgement
    of which differences the data support."""
    from bench import trust, trust_sentences as ts

    out = quality(baseline(sw.runs))
    out.append(counts(facts.counts(sw.runs, sw.ok, sw.main), sw.impl))
    gpu = facts.one_gpu(sw.main)
    ran = gpu or facts.one_gpu(facts.finished(sw))  # a GPU whose runs all went uncounted still ran
    if gpu is None:
        out += no_gpu(facts.ms_at(sw.main, "cpu", SINGLE_DEVICE), ran)
    elif (g := facts.gpu_vs_cpu(sw.main, sw.ok, gpu)) is not None:
        comps = trust.gpu_vs_cpu(ev, sw.main, gpu) if ev is not None else {}
        out += gpu_vs_cpu(g, comps)
        if (line := ts.tally(trust.tally(comps), "one GPU", "the CPU")) is not None:
            out.append(line)
    # Where the sentence above would state the article's size, had a run counted.
    out += [none_counted(who) for who, devices in (("the CPU", "cpu"), (f"GPU {gpu}", gpu))
            if devices and facts.none_counted_at(sw, devices, SINGLE_DEVICE)]
    out += [cost_model(models[label]) for label in (analysis.CPU, analysis.ONE_GPU) if label in models]
    agree = xover.agreement(models, sw.main, gpu, sw.seqlen, sw.impl) if gpu else None
    c = analysis.crossover(models, sw.main["batchsize"].unique(), sw.seqlen, sw.impl)
    if c is not None and agree is not None and agree.trusted:
        out.append(crossover(c))
    elif gpu and (m := xover.measured(sw.main, gpu, sw.seqlen, sw.impl)) is not None:
        out.append(measured_crossover(m, why_not_model(agree)))
    phases = facts.phase_medians(sw.breakdown, sw.base_ok, sw.impl)
    multi = trust.multi_vs_first(ev, sw.main) if ev is not None else {}
    out += [scaling(s, multi.get((s.devices, s.strategy))) for s in facts.scaling(facts.efficiency(sw.main), phases)]
    splits = (facts.phase_split(phases, d) for d in ["cpu"] + ([gpu] if gpu else []))
    out += [phase_split(p) for p in splits if p is not None]
    if (r := facts.impl_ratio(facts.impl_pairs(baseline(sw.agg)))) is not None:
        out.append(impl_ratio(r))
        if ev is not None and (line := ts.tally(trust.tally(trust.impl_vs_impl(ev, sw.agg)),
                                                f"{facts.SINEBENCH}'s implementation", "the article's")):
            out.append(line)
    size, runs = facts.representative_runs(sw.base_ok)
    if size is not None and (t := facts.time_to_target(runs)) is not None:
        out.append(time_to_target(size, t))
    if (r := facts.repeat_spread(sw.main)) is not None:
        out.append(repeat_spread(r))
    if ev is not None:
        out += [line for line in (ts.stop_reasons(trust.stop_reasons(sw.runs)), ts.coverage(ev)) if line]
    out += [line for line in (ts.host_waits(trust.host_waits(sw.runs)), ts.host_speed(trust.host_speed(sw.ok)))
            if line]
    return out


def ladder_rungs(rungs: list) -> list:
    """The ladder of each window length in one sentence: fixed costs, cheapest first."""
    out = []
    for seqlen in sorted({r.seqlen for r in rungs}):
        steps = [f"{r.label} {fmt_ms(r.fixed_ms)}" for r in rungs if r.seqlen == seqlen]
        out.append(f"Fixed cost per update with {seqlen}-step windows, cheapest first: {'; '.join(steps)}.")
    return out


def crossing(c) -> str:
    """Where one GPU of an implementation starts to beat the CPU (bench.ladder.Crossing)."""
    against = "" if c.cpu_impl == c.impl else f" running {c.cpu_impl}"
    if c.by_model:
        where = ("never, by the fits" if math.isinf(c.model_flops) else "at every size, by the fits"
                 if c.model_flops == 0 else f"above {c.model_flops:.2g} FLOPs per update, by the fits")
    elif c.cells is None:
        where = "at no size that both ran (none did)"
    elif c.cells.gpu_wins_from is None:
        where = f"at none of the {c.cells.cells} sizes both ran"
    elif c.cells.cpu_wins_up_to is None:
        where = f"at all {c.cells.cells} sizes both ran"
    elif c.cells.clean:
        where = f"above {c.cells.cpu_wins_up_to:.2g} FLOPs per update, measured at {c.cells.cells} sizes"
    else:
        where = (f"from {c.cells.gpu_wins_from:.2g} FLOPs per update but not at every size up to "
                 f"{c.cells.cpu_wins_up_to:.2g}, measured at {c.cells.cells} sizes")
    return (f"{c.impl}, {c.seqlen}-step windows: one GPU beats the CPU{against} {where} (fixed cost "
            f"{fmt_ms(c.cpu.fixed_ms)} on the CPU, {fmt_ms(c.gpu.fixed_ms)} on one GPU).")
