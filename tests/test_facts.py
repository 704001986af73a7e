"""The report's facts on small hand-made sweeps whose right numbers are known
(written out in each test), and the sentences that state them."""
import pandas as pd
import pytest

from bench import analysis, facts, sentences
from sinelstm.flops import count_flops
from sinelstm.names import SINGLE_DEVICE

NAN = float("nan")


def runs(devices, strategy, ms_by_size, impl="sinebench", repeats=(1.0,), status="ok", **extra) -> list:
    """runs.csv rows: one per size in ``ms_by_size`` ({(batch, n_units): ms})
    and repeat, repeat r taking ``ms * repeats[r]``; ``extra`` sets any column,
    or per size when given as a dict."""
    rows = []
    for (b, n), ms in ms_by_size.items():
        for r, factor in enumerate(repeats):
            row = {"run_id": f"{impl}-{devices}-{strategy}-{b}-{n}-{r}", "impl": impl, "recipe": "article", "devices": devices,
                   "n_devices": len(devices.split("+")), "strategy": strategy, "batchsize": b, "n_units": n,
                   "seqlen": 10, "repeat": r, "status": status, "ms_per_update_median": ms * factor,
                   "ms_per_update_p25": ms * factor, "ms_per_update_p75": ms * factor,
                   "samples_per_s": b / ms * 1e3, "time_to_target_s": NAN, "val_mse": 1e-3,
                   "flops_per_update": count_flops(n, b, 10, impl), "target_mse": 1e-3, "max_seconds": 2.0,
                   "gpu_name": NAN if devices.startswith("cpu") else "Fake GPU"}
            row.update({k: v[(b, n)] if isinstance(v, dict) else v for k, v in extra.items()})
            rows.append(row)
    return rows


def sweep(*groups, breakdown=()) -> facts.Sweep:
    return facts.sweep({"runs": pd.DataFrame([row for g in groups for row in g]),
                        "breakdown": pd.DataFrame(list(breakdown), columns=["run_id", "phase", "ms"])})


def phase_rows(rows: list, **ms_by_phase) -> list:
    """Breakdown rows giving each run in ``rows`` the phase times given
    (a list: one value per run, in order)."""
    return [{"run_id": row["run_id"], "phase": p, "ms": ms[i] if isinstance(ms, list) else ms}
            for i, row in enumerate(rows) for p, ms in ms_by_phase.items()]


def test_gpu_vs_cpu_counts_strict_wins_and_finds_the_extremes():
    cpu = {(10, 5): 1.0, (10, 50): 4.0, (100, 5): 2.0, (100, 50): 8.0, (1000, 5): 0.1}  # the GPU skipped one
    gpu = {(10, 5): 2.0, (10, 50): 2.0, (100, 5): 2.0, (100, 50): 1.0}  # speedups 0.5, 2, 1 (a tie), 8
    sw = sweep(runs("cpu", SINGLE_DEVICE, cpu), runs("0", SINGLE_DEVICE, gpu),
               runs("1", SINGLE_DEVICE, {(10, 5): 0.1}), runs("0", SINGLE_DEVICE, cpu, impl="article"))
    assert facts.one_gpu(sw.main) == "0"
    f = facts.gpu_vs_cpu(sw.main, sw.ok, "0")
    assert (f.wins, f.sizes, f.cards, f.cpu_ms, f.gpu_ms) == (2, 4, ("Fake GPU",), 1.0, 2.0)
    assert f.best == facts.Cell(8.0, 100, 50) and f.worst == facts.Cell(0.5, 10, 5)
    assert sentences.gpu_vs_cpu(f) == [
        "One GPU (Fake GPU) beats the CPU in 2 of 4 configurations (batch × n_units).",
        "At the article's size (batch 10, n_units 5) the CPU takes 1 ms per update and one GPU 2 ms: "
        "the GPU is 2× slower.",
        "The GPU's largest lead is 8× at batch 100 / n_units 50; its worst showing is 0.5× at batch 10 / n_units 5."]


def test_no_gpu_and_no_overlap():
    sw = sweep(runs("cpu", SINGLE_DEVICE, {(10, 5): 1.5}))
    assert facts.one_gpu(sw.main) is None
    assert sentences.summary(sw, {})[1:3] == sentences.no_gpu(1.5)
    assert sentences.no_gpu(1.5)[1] == "At the article's size (batch 10, n_units 5) the CPU takes 1.5 ms per update."
    sw = sweep(runs("cpu", SINGLE_DEVICE, {(10, 5): 1.0}), runs("0", SINGLE_DEVICE, {(100, 5): 1.0}))
    assert facts.gpu_vs_cpu(sw.main, sw.ok, "0") is None


def test_a_size_whose_runs_all_ran_on_a_slow_or_disturbed_host_says_so():
    # Two CPU repeats at the article's size: the first at the fastest probe
    # but spread far more than the second (disturbed); the second steady but
    # timed on a host 50 % slower than the first. Neither counts, and the
    # summary says so rather than leave out the size's sentence.
    cpu = runs("cpu", SINGLE_DEVICE, {(10, 5): 1.0}, repeats=(1.0, 1.0), host_gate=0.2)
    for row, probe, p75 in zip(cpu, (1.0, 1.5), (2.0, 1.01)):
        row.update(host_probe_ms=probe, ms_per_update_p75=p75)
    gpu = runs("0", SINGLE_DEVICE, {(10, 5): 2.0, (100, 5): 1.0})
    sw = sweep(cpu, gpu)
    assert facts.ms_at(sw.main, "cpu", SINGLE_DEVICE) is None
    assert facts.none_counted_at(sw, "cpu", SINGLE_DEVICE) and not facts.none_counted_at(sw, "0", SINGLE_DEVICE)
    said = sentences.summary(sw, {})
    assert sentences.none_counted("the CPU") in said and not any("the CPU takes" in s for s in said)
    # one counted repeat is enough to state the time
    cpu[1]["host_probe_ms"] = 1.1
    sw = sweep(cpu, gpu)
    assert not facts.none_counted_at(sw, "cpu", SINGLE_DEVICE) and facts.ms_at(sw.main, "cpu", SINGLE_DEVICE) == 1.0
    # Runs the summary does not compare (other windows, TF32) are not said to be uncounted.
    cpu50 = runs("cpu", SINGLE_DEVICE, {(10, 5): 1.0}, seqlen=50)
    tf32 = runs("0", SINGLE_DEVICE, {(10, 5): 2.0}, precision="tf32")
    sw = sweep(cpu50, tf32, runs("cpu", SINGLE_DEVICE, {(100, 5): 1.0}), runs("0", SINGLE_DEVICE, {(100, 5): 1.0},
                                                                            precision="fp32"))
    assert not facts.none_counted_at(sw, "cpu", SINGLE_DEVICE) and not facts.none_counted_at(sw, "0", SINGLE_DEVICE)
    assert not any("counts: each was timed" in s for s in sentences.summary(sw, {}))


def test_a_gpu_whose_runs_all_went_uncounted_is_not_said_to_be_missing():
    cpu = runs("cpu", SINGLE_DEVICE, {(10, 5): 1.0})
    gpu = runs("0", SINGLE_DEVICE, {(10, 5): 2.0}, repeats=(1.0, 1.0), host_gate=0.2)
    for row, probe, p75 in zip(gpu, (1.0, 1.5), (4.0, 2.02)):  # disturbed, then slow: neither counts
        row.update(host_probe_ms=probe, ms_per_update_p75=p75)
    sw = sweep(cpu, gpu)
    assert facts.one_gpu(sw.main) is None
    said = sentences.summary(sw, {})
    assert not any(s.startswith("No GPU ran") for s in said)
    assert sentences.gpu_uncounted("0") in said and not any("no run of GPU 0" in s for s in said)
    assert "At the article's size (batch 10, n_units 5) the CPU takes 1 ms per update." in said
    # Nothing counted at all, in 50-step windows (the summary's window length then defaults to 10).
    for row in gpu:
        row["seqlen"] = 50
    said = sentences.summary(sweep(gpu), {})
    assert sentences.gpu_uncounted("0") in said and not any(s.startswith("No GPU ran") for s in said)


CPU_MODEL, GPU_MODEL = (0.5, 2.0), (3.0, 0.02)  # fixed ms, ms per GFLOP
SIZES = [(b, n) for b in (10, 100, 1000) for n in (5, 50, 500)]


def modelled(devices, model, impl="sinebench") -> list:
    fixed, per = model
    return runs(devices, SINGLE_DEVICE, {(b, n): fixed + count_flops(n, b, 10, impl) / 1e9 * per for b, n in SIZES},
                impl=impl)


def test_cost_models_and_crossover_follow_the_known_model():
    sw = sweep(modelled("cpu", CPU_MODEL), modelled("0", GPU_MODEL))
    models = analysis.cost_models(sw.main)
    assert set(models) == {"CPU", "1 GPU"}
    assert (models["CPU"].fixed_ms, models["CPU"].ms_per_gflop) == pytest.approx(CPU_MODEL, rel=1e-6)
    assert (models["1 GPU"].fixed_ms, models["1 GPU"].ms_per_gflop) == pytest.approx(GPU_MODEL, rel=1e-6)
    c = analysis.crossover(models, [1000, 10, 100, 50], 10, "sinebench")
    assert c.flops == pytest.approx((3.0 - 0.5) / (2.0 - 0.02) * 1e9, rel=1e-6)  # 1.26e9
    assert [b for b, _ in c.examples] == [10, 50, 100]  # the three smallest batches
    predicted = analysis.predicted_speedup(models, 10, "sinebench")
    for b, units in c.examples:
        assert count_flops(units, b, 10, "sinebench") == pytest.approx(c.flops, rel=1e-6)
        assert predicted(b, units) == pytest.approx(1.0, rel=1e-6)
    assert predicted(10, 5) == pytest.approx(0.5 / 3.0, rel=1e-3)  # fixed costs dominate
    assert sentences.crossover(c).startswith("So one GPU beats the CPU once an update carries more than 1.3e+09 "
                                             "FLOPs (n_units ≈ 763 at batch 10, n_units ≈ 340 at batch 50, "
                                             "n_units ≈ 240 at batch 100)")


def test_crossover_never_and_always():
    cpu = analysis.CostModel("CPU", 1.0, 1.0, 3, 0)
    never = analysis.crossover({"CPU": cpu, "1 GPU": analysis.CostModel("1 GPU", 2.0, 2.0, 3, 0)}, [10], 10, "x")
    always = analysis.crossover({"CPU": cpu, "1 GPU": analysis.CostModel("1 GPU", 0.5, 0.1, 3, 0)}, [10], 10, "x")
    assert (never.flops, always.flops, always.examples) == (None, 0.0, ())
    assert sentences.crossover(never) == "By this fit one GPU never beats the CPU here."
    assert sentences.crossover(always) == "By this fit one GPU beats the CPU at every size."
    assert analysis.crossover({"CPU": cpu}, [10], 10, "x") is None


def test_scaling_against_the_first_device_with_communication_at_the_article_size():
    one = {(10, 5): 2.0, (100, 50): 4.0}
    two = runs("0+1", "chainermn", {(10, 5): 4.0, (100, 50): 2.5}, repeats=(1, 1, 1))  # 0.5x and 1.6x
    article = runs("0+1", "chainermn", {(10, 5): 4.0}, impl="article")
    sw = sweep(runs("0", SINGLE_DEVICE, one), two, article, runs("cpu", SINGLE_DEVICE, {(10, 5): 3.0}),
               runs("cpu+cpu", "single-process", {(10, 5): 1.5}),
               breakdown=phase_rows(two[:3], communication=[1.0, 2.0, 9.0]) + phase_rows(article, communication=99))
    eff = facts.efficiency(sw.main)
    got = {(r.devices, r.batchsize, r.n_units): (r.speedup, r.efficiency) for r in eff.itertuples()}
    assert got == {("0+1", 10, 5): (0.5, 0.25), ("0+1", 100, 50): (1.6, 0.8), ("cpu+cpu", 10, 5): (2.0, 1.0)}
    scaled = facts.scaling(eff, facts.phase_medians(sw.breakdown, sw.ok, sw.impl))
    assert scaled[0] == facts.Scaling("0+1", "chainermn", "2 GPUs (chainermn)", facts.Cell(1.6, 100, 50), 0.8, 0.5,
                                      2.0)  # the median of 1, 2 and 9; the article's 99 is another implementation
    assert scaled[1].communication_ms is None
    assert sentences.scaling(scaled[0]) == ("2 GPUs (chainermn) against one: at best 1.6× (efficiency 80%) at batch "
                                            "100 / n_units 50; at the article's size 0.5×, where communication "
                                            "alone takes 2 ms per update.")
    assert sentences.scaling(scaled[1]) == ("2 CPU replicas (single-process) against one: at best 2× (efficiency "
                                            "100%) at batch 10 / n_units 5; at the article's size 2×.")


def test_phase_split_needs_every_phase():
    cpu = runs("cpu", SINGLE_DEVICE, {(10, 5): 3.0})
    gpu = runs("0", SINGLE_DEVICE, {(10, 5): 3.0})
    phases = dict(data=0.1, forward=1.0, backward=2.0, communication=0.05, optimizer=0.5)
    sw = sweep(cpu, gpu, breakdown=phase_rows(cpu, **phases) + phase_rows(gpu, forward=1.0))
    medians = facts.phase_medians(sw.breakdown, sw.ok, sw.impl)
    split = facts.phase_split(medians, "cpu")
    assert split.top(3) == [("backward", 2.0), ("forward", 1.0), ("optimizer", 0.5)]
    assert split.total == pytest.approx(3.65)
    assert facts.phase_split(medians, "0") is None
    assert sentences.phase_split(split) == ("Where an update's time goes at the article's size on CPU: backward 2 ms, "
                                            "forward 1 ms, optimizer 0.5 ms (of 3.65 ms with every phase "
                                            "synchronized).")


def test_impl_ratio_over_configurations_run_both_ways():
    fast = {(10, 5): 1.0, (10, 50): 2.0, (100, 5): 1.0, (100, 50): 7.0}
    slow = {(10, 5): 3.0, (10, 50): 10.0, (100, 5): 10.0}  # 3x, 5x, 10x; (100, 50) ran only one way
    sw = sweep(runs("0", SINGLE_DEVICE, fast), runs("0", SINGLE_DEVICE, slow, impl="article"))
    pairs = facts.impl_pairs(sw.agg)
    assert len(pairs) == 6 and "1 GPU · b10/n50" in set(pairs["config"])
    assert facts.impl_ratio(pairs) == facts.Ratio(5.0, 3.0, 10.0, 3)
    assert sentences.impl_ratio(facts.Ratio(5.0, 3.0, 10.0, 3)).endswith(
        "5× faster in the median (3× to 10×, 3 configurations).")
    assert facts.impl_ratio(facts.impl_pairs(sweep(runs("0", SINGLE_DEVICE, fast)).agg)) is None


def test_time_to_target_over_the_first_repeat_at_the_article_size():
    ttt = {(10, 5): [3.0, 0.1], (100, 50): [NAN, NAN]}  # repeat 1 is faster but is not the representative run
    per_repeat = [{k: v[r] for k, v in ttt.items()} for r in (0, 1)]

    def set_(devices, strategy, t0):
        return [row for r in (0, 1) for row in runs(devices, strategy, {(10, 5): 1.0, (100, 50): 1.0},
                                                     time_to_target_s={**per_repeat[r], (10, 5): t0[r]})
                if row["repeat"] == r]
    sw = sweep(set_("cpu", SINGLE_DEVICE, [3.0, 0.1]), set_("0", SINGLE_DEVICE, [1.25, 0.1]),
               set_("0+1", "chainermn", [NAN, 0.1]))
    size, rep = facts.representative_runs(sw.base_ok)
    assert size == (10, 5) and list(rep["repeat"]) == [0, 0, 0]
    t = facts.time_to_target(rep)
    assert t.times == (("1 GPU", 1.25), ("CPU", 3.0), ("2 GPUs (chainermn)", None))
    assert (t.fastest, t.reached, t.target, t.budget_s) == (("1 GPU", 1.25), 2, 1e-3, 2.0)
    assert sentences.time_to_target(size, t) == ("Time to one-step test MSE 0.001 at batch 10 / n_units 5: fastest "
                                                 "1 GPU in 1.25 s (wall time, evaluations included); 2 of 3 device "
                                                 "sets reached it within each run's training budget (2 s).")
    assert sentences.time_to_target_each(t) == ("Time to one-step test MSE 0.001 (evaluations included): 1 GPU: "
                                                "1.25 s; CPU: 3.00 s; not reached: 2 GPUs (chainermn).")


def test_representative_size_without_the_article_size_is_the_most_shared():
    sw = sweep(runs("cpu", SINGLE_DEVICE, {(100, 50): 1.0, (1000, 500): 1.0}),
               runs("0", SINGLE_DEVICE, {(100, 50): 1.0}),
               runs("0", SINGLE_DEVICE, {(1000, 500): 1.0}, impl="article", max_seconds=NAN))
    size, rep = facts.representative_runs(sw.base_ok)
    assert size == (100, 50) and len(rep) == 2
    t = facts.time_to_target(rep)
    assert t.fastest is None and sentences.time_to_target(size, t) == (
        "At batch 100 / n_units 50 no device set reached one-step test MSE 0.001 within each run's training budget (2 s).")


def test_repeat_spread_is_slowest_over_fastest_repeat():
    sw = sweep(runs("cpu", SINGLE_DEVICE, {(10, 5): 1.0}, repeats=(1.0, 1.0, 1.5)),  # 50 %
               runs("0", SINGLE_DEVICE, {(10, 5): 2.0}, repeats=(1.0, 1.1, 1.0)),  # 10 %
               runs("0", SINGLE_DEVICE, {(100, 5): 1.0}, repeats=(1.0, 1.2)),  # 20 %
               runs("0", SINGLE_DEVICE, {(100, 50): 1.0}))  # one repeat: no spread
    r = facts.repeat_spread(sw.main)
    assert (r.median, r.max) == pytest.approx((0.2, 0.5))
    assert (r.label, r.batch, r.units, r.ms_min, r.ms_max) == ("CPU", 10, 5, 1.0, 1.5)
    assert sentences.repeat_spread(r).startswith("Repeat to repeat, a configuration's time moved by 20% in the median "
                                                 "and by up to 50% (CPU at batch 10 / n_units 5: 1 ms to 1.5 ms)")
    assert facts.repeat_spread(sweep(runs("0", SINGLE_DEVICE, {(10, 5): 1.0})).main) is None


def test_counts_and_failures():
    sw = sweep(runs("0", SINGLE_DEVICE, {(10, 5): 1.0, (100, 5): 1.0}, repeats=(1, 1)),
               runs("cpu", SINGLE_DEVICE, {(10, 5): 1.0}, impl="article"),
               runs("0+1", "chainermn", {(10, 5): 1.0, (100, 5): 1.0}, status="oom"),
               runs("0+1", "single-process", {(10, 5): 1.0}, status="timeout"))
    assert facts.counts(sw.runs, sw.ok, sw.main) == facts.Counts(5, 8, 4, 2)
    assert facts.failure_counts(sw.runs).to_dict() == {"oom": 2, "timeout": 1}
    assert sentences.failures(facts.failure_counts(sw.runs)) == (
        "Not every run finished: 2 oom, 1 timeout (see 'All configurations').")
    assert sentences.counts(facts.counts(sw.runs, sw.ok, sw.main), sw.impl).startswith(
        "5 of 8 runs finished (4 with the sinebench implementation, over 2 configurations)")
    assert sentences.failures(facts.failure_counts(sweep(runs("0", SINGLE_DEVICE, {(10, 5): 1.0})).runs)) == ""


def test_breakdown_bars_keep_the_corners_and_the_article_size_in_order():
    sizes = {(b, n): 1.0 for b in (10, 100, 1000) for n in (5, 50, 500)}
    groups = [runs("0+1", "chainermn", sizes), runs("cpu", SINGLE_DEVICE, sizes), runs("0", SINGLE_DEVICE, sizes),
              runs("cpu", SINGLE_DEVICE, {(10, 5): 1.0}, impl="article")]
    sw = sweep(*groups, breakdown=[p for g in groups for p in phase_rows(g, forward=1.0)])
    bars = facts.breakdown_bars(sw.breakdown, sw.ok)
    assert set(zip(bars["batchsize"], bars["n_units"])) == {(10, 5), (10, 500), (1000, 5), (1000, 500)}
    assert list(bars["bar"][:4]) == ["b10/n5 · CPU", "b10/n5 · 1 GPU", "b10/n5 · 2 GPUs (chainermn)",
                                     "b10/n5 · CPU · article"]
