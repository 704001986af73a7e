"""Issue 14: intervals that tell a real difference from noise, the samples
they are computed from, repeats until stable, pinning, and the warning that
a machine was noisy. Seeded and fast (one short sweep; the GPU tests skip here)."""
import json
import re
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bench import adaptive, analysis, facts, intervals, pinning, plots_maps, samples, trust, trust_sentences, ttq
from bench.grid import expand_grid
from bench.run_options import DEFAULT
from bench.schema import SLOW_HOST, RunRow
from bench.store import ResultStore
from sinelstm import hostspeed
from sinelstm.names import SINGLE_DEVICE
from tests.helpers import PROJECT_ROOT, cli_env, sinebench
from tests.test_facts import runs as fact_runs, sweep as fact_sweep


def sample_sets(scale: float, seed: int, repeats: int = 5, n: int = 600, run_noise: float = 0.03):
    """Per-update ms of ``repeats`` runs: a skewed per-update spread (as
    timings are) and a run-to-run shift, around ``scale`` ms."""
    rng = np.random.default_rng(seed)
    sets = [scale * (1 + run_noise * rng.standard_normal()) * rng.lognormal(0, 0.25, n) for _ in range(repeats)]
    return intervals.Repeats.of([np.median(s) for s in sets], sets)


def test_one_distribution_is_not_called_different_and_twenty_percent_is():
    for seed in range(5):
        same = intervals.compare(sample_sets(2.0, seed), sample_sets(2.0, 100 + seed), f"same{seed}")
        assert same.clear is False, (seed, same)
        assert same.interval.includes(1.0)
        slower = intervals.compare(sample_sets(2.4, seed), sample_sets(2.0, 100 + seed), f"diff{seed}")
        assert slower.clear is True, (seed, slower)
        assert 1.0 < slower.interval.low < 1.2 < slower.interval.high < 1.4


def test_an_interval_covers_the_true_median_and_narrows_with_quieter_runs():
    noisy = intervals.median_interval(sample_sets(1.0, 1, run_noise=0.2), "noisy")
    quiet = intervals.median_interval(sample_sets(1.0, 1, run_noise=0.005), "quiet")
    true_median = np.exp(0)  # of the lognormal, times scale 1.0
    assert quiet.low < true_median < quiet.high and quiet.complete
    assert quiet.rel_halfwidth < 0.03 < noisy.rel_halfwidth


def test_the_resampled_median_shortcut_matches_resampling():
    x = np.sort(np.random.default_rng(0).exponential(size=101))
    rng = np.random.default_rng(1)
    direct = np.median(rng.choice(x, size=(4000, len(x))), axis=1)
    fast = intervals._resampled_median(x, 4000, np.random.default_rng(2))
    assert abs(np.percentile(direct, 2.5) - np.percentile(fast, 2.5)) < 0.03
    assert abs(np.percentile(direct, 97.5) - np.percentile(fast, 97.5)) < 0.03


def test_without_samples_the_interval_comes_from_the_repeat_medians_or_is_absent():
    medians = intervals.Repeats.of([1.0, 1.1, 1.3])
    ci = intervals.median_interval(medians, "legacy")
    assert not ci.complete and 1.0 <= ci.low <= 1.1 <= ci.high <= 1.3
    assert intervals.median_interval(intervals.Repeats.of([1.0]), "one") is None
    assert intervals.compare(intervals.Repeats.of([1.0]), medians).clear is None


def test_the_same_data_give_the_same_interval():
    a, b = sample_sets(1.0, 3), sample_sets(1.1, 4)
    assert intervals.compare(a, b, "x").interval == intervals.compare(a, b, "x").interval


# -- samples in the results folder ---------------------------------------------
def row(run_id="r0", repeat=0, ms=1.0, status="ok", **extra) -> RunRow:
    base = dict.fromkeys(RunRow.columns())
    base.update(run_id=run_id, impl="sinebench", devices="cpu", n_devices=1, strategy=SINGLE_DEVICE, batchsize=10,
                n_units=5, seqlen=10, repeat=repeat, status=status, message="", ms_per_update_median=ms,
                target_mse=1e-3, flops_per_update=1.0, optimizer="adam", update_budget=10, warmup=1, host="h",
                started_at="t", attempt=1, recipe="article", seed=repeat, quality_target=0.1, invocation="",
                threads=None, cpus="", stop_reason="", ci_halfwidth=None)
    base.update(extra)
    return RunRow(**base)


def test_samples_are_stored_compactly_before_the_row_and_read_back(tmp_path):
    store = ResultStore(tmp_path)
    store.open_for_writing()
    ms = np.random.default_rng(0).lognormal(0, 0.2, 5000)
    store.append_run(row(), {}, ms)
    store.close()
    back = samples.read(tmp_path, "r0")
    np.testing.assert_allclose(back, ms, rtol=1e-6)  # float32
    assert samples.path_of(tmp_path, "r0").stat().st_size < 5000 * 4  # compressed float32
    samples.path_of(tmp_path, "r0").write_bytes(b"torn")
    assert samples.read(tmp_path, "r0") is None and samples.read_all(tmp_path, ["r0", "absent"]) == {}


# -- repeats until stable -------------------------------------------------------
def specs(cap: int, units=(5, 32)):
    base = replace(DEFAULT, n_units=5)
    return expand_grid(base, impls=["sinebench"], device_specs=["cpu"], strategies=["single-process"],
                       batchsizes=[10], units=list(units), repeats=cap)


def frame(rows: list) -> pd.DataFrame:
    return pd.DataFrame([r.__dict__ for r in rows], columns=RunRow.columns())


def test_auto_repeats_stop_a_quiet_configuration_at_three_and_a_noisy_one_at_the_cap(tmp_path):
    all_specs = specs(5)
    progress = adaptive.Progress(tmp_path, all_specs, frame([]), target=0.03, cap=5)
    reasons = {}
    for r in range(5):
        for spec in progress.next_round(r):
            quiet = spec.train.n_units == 5
            rep = sample_sets(1.0, r, repeats=1, n=5000, run_noise=0.001 if quiet else 0.3)
            decided = progress.decide(row(spec.run_id, r, rep.medians[0]), rep.samples[0])
            reasons.setdefault(spec.train.n_units, []).append(decided.stop_reason)
    assert reasons[5] == ["", "", adaptive.STABLE]
    assert reasons[32] == ["", "", "", "", adaptive.CAP]


def started(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(1_800_000_000 + seconds))


def test_repeats_inside_one_slow_phase_are_not_stable_until_they_span_the_minimum(tmp_path):
    """As on a 2x H200 host (results/h200x2-repro2-2026-11-28): four rounds
    in a slow start agree to ±1 % but started within 45 s; with a 60 s span
    the sweep goes on, the host reads fast, they stop counting, and the
    figure it settles on is the fast one. Without a span it settles on the
    slow one; a resumed sweep judges the span from the folder's rows."""
    settled = {}
    for span in (0.0, 60.0):
        (tmp_path / str(span)).mkdir()
        all_specs = specs(10, units=(5,))
        progress = adaptive.Progress(tmp_path, all_specs, frame([]), target=0.03, cap=10, min_span_s=span)
        config = adaptive.config_key(all_specs[0])
        rows = []
        for r in range(10):
            if not progress.next_round(r):
                break
            (spec,) = progress.next_round(r)
            slow = r < 4  # rounds 15 s apart; the first four in the slow phase
            rep = sample_sets(1.7 if slow else 1.0, r, repeats=1, n=2000, run_noise=0.001)
            rows.append(progress.decide(row(spec.run_id, r, rep.medians[0], started_at=started(15 * r),
                                            host_probe_ms=2.4 if slow else 1.4, host_gate=0.2), rep.samples[0]))
            samples.write(tmp_path / str(span), spec.run_id, rep.samples[0])
        assert rows[-1].stop_reason == adaptive.STABLE
        settled[span] = (len(rows), np.median([v.median for v in progress.counted(config)]))
        if span:
            assert progress.span_s(config) >= 60
            folder = tmp_path / str(span)
            resumed = adaptive.Progress(folder, all_specs, frame(rows), target=0.03, cap=10, min_span_s=span)
            assert resumed.span_s(config) == progress.span_s(config) and resumed.stable(config)
            early = adaptive.Progress(folder, all_specs, frame(rows[:-1]), target=0.03, cap=10, min_span_s=span)
            assert not early.stable(config) and early.next_round(len(rows) - 1)
    assert settled[0.0][0] == 3 and settled[0.0][1] > 1.6  # called stable inside the slow phase
    assert settled[60.0][1] < 1.05 and settled[60.0][0] == 9  # four slow, then five fast over 60 s
    assert adaptive.epoch_s("t") is None and adaptive.epoch_s(started(0)) == 1_800_000_000


def test_a_quick_configuration_waits_for_its_span_rather_than_repeating_inside_one_phase(tmp_path, monkeypatch):
    """Three runs 3 s apart are within ±3 %; the sweep waits until a fourth
    would start 60 s after the first, runs it, and is done: four runs, not
    twenty inside the same minute."""
    clock = {"now": 1_800_000_000.0, "slept": []}

    def sleep(s):
        clock["slept"].append(s)
        clock["now"] += s

    monkeypatch.setattr(adaptive.time, "time", lambda: clock["now"])
    monkeypatch.setattr(adaptive.time, "sleep", sleep)
    progress = adaptive.Progress(tmp_path, specs(10, units=(5,)), frame([]), target=0.03, cap=10, min_span_s=60)
    rows, said = [], []

    def sweep_round(pending, decide):
        for spec in pending:
            noisy = spec.train.n_units != 5
            rep = sample_sets(1.0, spec.repeat, repeats=1, n=2000, run_noise=0.3 if noisy else 0.001)
            rows.append(decide(row(spec.run_id, spec.repeat, rep.medians[0],
                                   started_at=started(clock["now"] - 1_800_000_000)), rep.samples[0]))
            clock["now"] += 3
        return {"ok": len(pending)}

    adaptive.run_rounds(progress, sweep_round, say=said.append)
    assert [r.stop_reason for r in rows] == ["", "", "", adaptive.STABLE]
    assert clock["slept"] == [52.0]  # until 60 s after the first start, and a second for whole-second times
    assert any(line.startswith("waiting 52 s") and "(--min-span)" in line for line in said), said
    # beside a noisy configuration it sits out rounds instead of running them up to the cap
    rows.clear()
    progress = adaptive.Progress(tmp_path, specs(10), frame([]), target=0.03, cap=10, min_span_s=60)
    adaptive.run_rounds(progress, sweep_round, say=said.append)
    quick = [r for r in rows if "-u5-" in r.run_id]
    assert [r.stop_reason for r in quick] == ["", "", "", adaptive.STABLE]
    assert 60 <= adaptive.epoch_s(quick[-1].started_at) - adaptive.epoch_s(quick[0].started_at) < 70
    assert len(rows) > len(quick) + 4  # the noisy one ran on meanwhile


def test_the_report_says_how_repeats_were_decided():
    from bench import machine, sweep_control

    auto = sweep_control._repeats("auto", None, 8, None)
    assert sweep_control.describe(auto) == {"mode": "auto", "target_ci": 0.03, "max_repeats": 8, "min_span_s": 60.0}
    shown = dict(machine.rows({"repeats": sweep_control.describe(auto)}))["repeats"]
    assert "±3 %" in shown and "at least 60 s apart" in shown and "at most 8" in shown
    no_span = sweep_control.describe(sweep_control._repeats("auto", 0.05, 4, 0.0))
    assert "apart" not in dict(machine.rows({"repeats": no_span}))["repeats"]
    fixed = sweep_control.describe(sweep_control._repeats("3", None, None, None))
    assert dict(machine.rows({"repeats": fixed}))["repeats"] == "3 of each configuration"
    assert "repeats" not in dict(machine.rows({}))  # a folder from before says nothing


def test_settle_waits_until_the_machine_has_been_up_five_minutes(monkeypatch, tmp_path):
    """``--settle``: the dry run says how long it would wait; the sweep waits
    (a fake clock here) before anything is timed, records the wait, and its
    record's load then is a settled machine's: no warning of a fresh one. A
    finished sweep, rerun, does not wait; a machine without an uptime says
    it cannot."""
    from click.testing import CliRunner

    from bench import cli, hostload, interrupt, machine, sweep_control

    monkeypatch.setattr(interrupt, "install", lambda: None)  # pytest keeps its own signal handlers
    clock = {"up": 200.0, "slept": []}
    monkeypatch.setattr(hostload, "uptime_s", lambda: clock["up"])

    def sleep(seconds):
        clock["slept"].append(seconds)
        clock["up"] += seconds

    monkeypatch.setattr(sweep_control, "_wait", sleep)
    args = ["sweep", "--devices", "cpu", "--batchsize", "10", "--units", "5", "--recipe", "article", "--full-budget",
            "--updates", "20", "--max-seconds", "0.2", "--warmup", "1", "--repeats", "1", "--host-gate", "off",
            "--threads", "1", "--no-report", "--no-progress", "--settle", "--out", str(tmp_path / "res")]
    dry = CliRunner().invoke(cli.main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "first a wait of 100 s, until this machine has been up 5 minutes (--settle)" in dry.output
    assert clock["slept"] == [] and not (tmp_path / "res").exists()
    done = CliRunner().invoke(cli.main, args)
    assert done.exit_code == 0, done.output
    assert "this machine booted 200 s ago: waiting 100 s" in done.output and clock["slept"] == [100.0]
    assert "booted" not in done.output.split("waiting 100 s")[1]  # no fresh-machine warning after the wait
    (record,) = json.loads((tmp_path / "res" / "env.json").read_text())["invocations"].values()
    assert record["boot_wait_s"] == 100.0 and record["control"]["settle"] is True
    assert record["uncontrolled"]["load_before"]["uptime_s"] == 300.0
    assert "waited 100 s for the machine to have been up 5 minutes" in dict(machine.rows(record))["timing control"]
    # the same sweep again on a fresh machine: nothing left to run, so no wait
    clock["up"] = 10.0
    again = CliRunner().invoke(cli.main, args)
    assert again.exit_code == 0 and "1 skipped" in again.output and clock["slept"] == [100.0], again.output
    assert "first a wait" not in CliRunner().invoke(cli.main, [*args, "--dry-run"]).output
    # a machine up long enough: no wait, 0 recorded; without --settle nothing is; no uptime: said, no wait
    clock["up"] = 4000.0
    assert sweep_control.settle(pinning.Control(settle=True), lambda: True, print) == 0.0
    assert sweep_control.settle(pinning.Control(), lambda: True, print) is None
    said = []
    monkeypatch.setattr(hostload, "uptime_s", lambda: None)
    assert sweep_control.settle(pinning.Control(settle=True), lambda: True, said.append) is None
    assert said == ["this machine does not say when it booted (/proc/uptime): --settle cannot wait"]
    assert len(clock["slept"]) == 1
    assert "waited" not in dict(machine.rows({**record, "boot_wait_s": 0.0}))["timing control"]


def test_a_sweep_on_a_freshly_booted_machine_says_so(monkeypatch):
    """At the start of the sweep, in the noise warning's conditions and in
    the report's machine table; a machine up for an hour says nothing."""
    from bench import hostload, machine, sweep_control

    monkeypatch.setattr(hostload, "_read", lambda path: "42.5 80.0" if str(path) == "/proc/uptime" else None)
    assert hostload.uptime_s() == 42.5
    record = {"uncontrolled": {"load_before": {"uptime_s": 42.5}}}
    (line,) = sweep_control.start_warnings(record)
    assert line.startswith("this machine booted 42 s ago") and "results/h200x1-boot-2026-11-29" in line
    assert "booted 42 s before the sweep" in trust_sentences._conditions(record["uncontrolled"], True)
    assert "freshly started machines" in dict(machine.rows(record))["machine up"]
    settled = {"uncontrolled": {"load_before": {"uptime_s": 3600.0}}}
    assert sweep_control.start_warnings(settled) == []
    assert trust_sentences._conditions(settled["uncontrolled"], True) == ""
    assert dict(machine.rows(settled))["machine up"] == "60 min when the sweep began"
    assert sweep_control.start_warnings({}) == [] and "machine up" not in dict(machine.rows({}))


def test_a_round_the_host_kept_slow_is_replaced_not_counted(tmp_path):
    """A slow-host run neither counts as a repeat nor ends its configuration:
    the next round runs in its place, up to the rounds laid out."""
    all_specs = specs(6, units=(5,))  # a cap of 3 counted repeats, 6 rounds laid out
    progress = adaptive.Progress(tmp_path, all_specs, frame([]), target=0.03, cap=3)
    assert progress.rounds == 6
    reasons = []
    for r in range(progress.rounds):
        for spec in progress.next_round(r):
            slow = r in (1, 2)
            rep = sample_sets(1.0, r, repeats=1, n=5000, run_noise=0.3)
            decided = progress.decide(row(spec.run_id, r, None if slow else rep.medians[0],
                                          status="slow-host" if slow else "ok"), None if slow else rep.samples[0])
            reasons.append(decided.stop_reason)
    assert reasons == ["", "", "", "", adaptive.CAP]  # rounds 0, 3, 4 counted; the third is the cap
    always_slow = adaptive.Progress(tmp_path, specs(4, units=(5,)), frame([]), target=0.03, cap=2)
    for r in range(4):
        for spec in always_slow.next_round(r):
            last = always_slow.decide(row(spec.run_id, r, None, status="slow-host"), None)
    assert r == 3 and last.stop_reason == adaptive.ROUNDS and not always_slow.next_round(4)
    line = trust_sentences.stop_reasons(pd.Series({adaptive.ROUNDS: 1}))
    assert "1 configurations out of rounds before the repeat cap" in line
    # and where no run counted, the report says nothing of samples (it said they predated samples/)
    assert trust_sentences.coverage(trust.evidence(frame([]), tmp_path)) is None


def test_auto_rounds_do_not_retry_a_slow_host_run_within_the_round(tmp_path, monkeypatch):
    """A later round replaces it; failures that may pass are still retried."""
    from bench import runner, sweep_control
    from bench.schema import TRANSIENT

    seen = []
    monkeypatch.setattr(runner, "sweep", lambda pending, store, **kw: seen.append(kw["transient"]) or {})
    store = ResultStore(tmp_path)
    sweep_control.run(specs(2, units=(5,)), store, sweep_control.Repetition(1, 0.03), pinning.Control(),
                      say=print)
    assert seen and "slow-host" not in seen[0] and set(seen[0]) == set(TRANSIENT) - {"slow-host"}


def probed_rounds(folder, probes: list) -> tuple:
    """Rounds of one configuration through adaptive.Progress (cap 3, six
    rounds laid out), round r's row gated at 20 % with the probe columns
    ``probes[r]``: (the progress, the configuration, the rows)."""
    all_specs = specs(6, units=(5,))
    progress = adaptive.Progress(folder, all_specs, frame([]), target=0.5, cap=3)
    rows = []
    for r, columns in enumerate(probes):
        (spec,) = progress.next_round(r)
        rep = sample_sets(1.0, r, repeats=1, n=500, run_noise=0.001)
        rows.append(progress.decide(row(spec.run_id, r, rep.medians[0], host_gate=0.2, **columns), rep.samples[0]))
    return progress, adaptive.config_key(all_specs[0]), rows


def test_a_run_timed_on_a_host_slower_than_its_configurations_fastest_does_not_count(tmp_path):
    """Judged again as runs come: the first run looked fast to the gate, but
    a later one shows the host can be 30 % faster; the first stops counting
    (a round more), in the sweep's rounds and in the report alike."""
    progress, config, rows = probed_rounds(tmp_path, [{"host_probe_ms": p} for p in (1.3, 1.0, 1.02, 1.05)])
    assert [r.stop_reason for r in rows] == ["", "", "", adaptive.STABLE]  # round 0 stopped counting at round 1
    assert len(progress.counted(config)) == 3 and not progress.next_round(4)
    runs = frame(rows)
    assert analysis.ok_runs(runs)["host_probe_ms"].tolist() == [1.0, 1.02, 1.05]
    w = trust.host_waits(runs.assign(host_slow=0.0, host_wait_s=0.0))
    assert w.uncounted == 1 and "1 finished run was timed while the host was more than 20% slower" in \
        trust_sentences.host_waits(w)
    assert hostspeed.counted([1.0, None, 1.5, float("nan")], 0.2) == [True, True, False, True]
    assert hostspeed.counted([1.0, 9.0], None) == hostspeed.counted([1.0, 9.0], float("nan")) == [True, True]
    assert hostspeed.counted([pd.NA, "x", 1.0, 1.3], 0.2) == [True, True, True, False]
    twice = pd.concat([runs, runs])  # a repeated index, as a concatenation leaves it
    assert len(analysis.ok_runs(twice)) == 6
    assert analysis.counted(runs[["host_probe_ms", "host_gate"]]).tolist() == [False, True, True, True]
    sw = facts.counts(runs, analysis.ok_runs(runs), pd.DataFrame())
    assert (sw.finished, sw.uncounted) == (4, 1)
    # the profiled run (repeat 0) not counted: its phases leave the report, which still renders
    phases = pd.DataFrame({"run_id": [rows[0].run_id], "phase": ["forward"], "ms": [1.0]})
    bars = facts.breakdown_bars(phases, analysis.ok_runs(runs))
    assert bars.empty and "devices" in bars


def test_an_mpi_job_counts_by_its_slowest_ranks_probe_in_the_rounds_and_the_report(tmp_path):
    """Rank 0 read the host fast in every round, the job's other rank read
    it 50 % slower in round 1: the job ran at that rank's pace, so round 1
    does not count, in --repeats auto's rounds and in the report alike."""
    progress, config, rows = probed_rounds(tmp_path, [{"host_probe_ms": 1.0, "host_probe_slowest_ms": p}
                                                      for p in (1.0, 1.5, 1.02, 1.05)])
    assert [r.stop_reason for r in rows] == ["", "", "", adaptive.STABLE]  # three counted by round 3
    assert len(progress.counted(config)) == 3
    runs = frame(rows)
    assert analysis.counted(runs).tolist() == [True, False, True, True]
    assert analysis.counted(runs.drop(columns=["host_probe_slowest_ms"])).all()  # by rank 0's alone: all


def split_run(rng, fast_ms: float, slow_share: float, n: int = 400):
    """Per-update ms of a run the host interrupted: a share of its updates
    slowed by half, as ChainerMN's were on 2x H200 (hostspeed.undisturbed)."""
    ms = fast_ms * rng.lognormal(0, 0.02, n)
    ms[rng.random(n) < slow_share] *= 1.5
    return ms


def test_a_run_whose_updates_split_in_two_does_not_count_and_a_steadily_slower_one_does(tmp_path):
    """The probe read the host fast at every check, yet runs 1 and 3 had
    their updates split into a fast and a slow group: they move the median
    and do not count; run 4, steadily 6 % slower (the host's fast state
    drifting), counts. The sweep's rounds, the report's runs, the gate's
    record and its sentence agree."""
    all_specs = specs(8, units=(5,))
    progress = adaptive.Progress(tmp_path, all_specs, frame([]), target=0.01, cap=4)
    config = adaptive.config_key(all_specs[0])
    rng = np.random.default_rng(3)
    rows = []
    for r, (fast, slow_share) in enumerate([(3.0, 0.0), (3.0, 0.4), (3.0, 0.02), (3.0, 0.6), (3.18, 0.0),
                                           (3.0, 0.0)]):
        (spec,) = progress.next_round(r)
        ms = split_run(rng, fast, slow_share)
        p25, p75 = np.percentile(ms, [25, 75])
        rows.append(progress.decide(row(spec.run_id, r, float(np.median(ms)), host_probe_ms=1.0, host_gate=0.2,
                                        ms_per_update_p25=p25, ms_per_update_p75=p75), ms))
    runs = frame(rows)
    spreads = [hostspeed.spread(a, b) for a, b in zip(runs["ms_per_update_p25"], runs["ms_per_update_p75"])]
    assert max(spreads[i] for i in (0, 2, 4, 5)) < 0.1 < 0.3 < min(spreads[1], spreads[3]), spreads
    assert analysis.ok_runs(runs)["repeat"].tolist() == [0, 2, 4, 5]
    assert len(progress.counted(config)) == 4 and rows[-1].stop_reason == adaptive.CAP
    # a sweep resumed from the folder's rows judges the same runs as the live one
    resumed = adaptive.Progress(tmp_path, all_specs, frame(rows), target=0.01, cap=4)
    assert sorted(v.median for v in resumed.counted(config)) == sorted(v.median for v in progress.counted(config))
    assert len(resumed.data[config]) == 6 and resumed.full(config)
    w = trust.host_waits(runs.assign(host_slow=0.0, host_wait_s=0.0))
    assert (w.uncounted, w.disturbed) == (0, 2)
    assert "2 finished runs were disturbed while timed" in trust_sentences.host_waits(w)
    # the gate off: the user asked for no judging, every run counts
    assert analysis.ok_runs(runs.assign(host_gate=None))["repeat"].tolist() == [0, 1, 2, 3, 4, 5]


def test_the_disturbance_bound_follows_the_configurations_steadiest_run():
    """A configuration whose runs all spread (an eager path with two modes)
    keeps them; alone, or without quartiles, a run counts."""
    assert hostspeed.undisturbed([0.03, 0.5, 0.14, 0.16]) == [True, False, True, False]
    assert hostspeed.undisturbed([0.3, 0.45, 0.7]) == [True, True, False]
    assert hostspeed.undisturbed([0.9]) == [True]
    assert hostspeed.undisturbed([None, float("nan"), pd.NA, 0.0, 0.2]) == [True, True, True, True, False]
    assert hostspeed.spread(2.0, 3.0) == 0.5 and hostspeed.spread(None, 3.0) is None
    assert hostspeed.counted([1.0, 1.0], 0.2, [0.02, 0.4]) == [True, False]
    assert hostspeed.counted([1.0, 1.0], None, [0.02, 0.4]) == [True, True]
    with pytest.raises(ValueError):
        hostspeed.counted([1.0, 1.0], 0.2, [0.02])
    # the report's rule: a gated folder without probes still leaves the spread-out run out, as the sweep does
    runs = frame([row(f"r{i}", i, 1.0, host_gate=0.2, ms_per_update_p25=1.0, ms_per_update_p75=1.0 + sp)
                  for i, sp in enumerate([0.02, 0.4, 0.03])])
    assert analysis.counted(runs).tolist() == [True, False, True]
    # time to quality keeps the spread-out run's seed (it did not converge: dropping it would hide that)
    assert ttq.measured(runs.assign(quality_status=["reached", "not-reached", "reached"]))["repeat"].tolist() == \
        [0, 1, 2]


def test_auto_repeats_resume_from_the_folder(tmp_path):
    """A sweep killed after two rounds goes on with round 3 for both
    configurations; a configuration whose round failed gets no more."""
    all_specs = specs(4)
    store = ResultStore(tmp_path)
    store.open_for_writing()
    committed = []
    for spec in all_specs:
        if spec.repeat < 2:
            rep = sample_sets(1.0, spec.repeat, repeats=1, run_noise=0.001)
            failed = spec.train.n_units == 32 and spec.repeat == 1
            committed.append(row(spec.run_id, spec.repeat, None if failed else rep.medians[0],
                                 status="error" if failed else "ok"))
            store.append_run(committed[-1], {}, None if failed else rep.samples[0])
    store.close()
    progress = adaptive.Progress(tmp_path, all_specs, store.load()["runs"], target=0.03, cap=4)
    nxt = progress.next_round(2)
    assert [s.train.n_units for s in nxt] == [5]
    assert len(progress.data[adaptive.config_key(nxt[0])]) == 2
    lines = adaptive.plan_lines(progress)
    assert "1 settled" in lines[0] and "at most 2 more runs" in lines[0]


def test_a_warm_up_round_runs_each_unfinished_configuration_and_keeps_nothing(tmp_path, monkeypatch):
    """Fixed repeats: a configuration with a run left is warmed once a
    round; auto: not one already settled (three quiet repeats)."""
    from bench import pinning, runner, sweep_control

    all_specs = specs(4)
    store = ResultStore(tmp_path)
    store.open_for_writing()
    for spec in all_specs:
        if spec.train.n_units == 32 and spec.repeat == 0:
            store.append_run(row(spec.run_id, 0, None, status="error"), {}, None)
        elif spec.train.n_units == 5 and spec.repeat < 3:
            rep = sample_sets(1.0, spec.repeat, repeats=1, run_noise=0.001)
            store.append_run(row(spec.run_id, spec.repeat, rep.medians[0]), {}, rep.samples[0])
    rows = store.load()["runs"]
    fixed = sweep_control.Repetition(4, None)
    auto = sweep_control.Repetition(4, 0.03)
    left = sweep_control.unfinished(all_specs, adaptive.Progress(tmp_path, all_specs, rows, None, 4), fixed)
    assert sorted((s.train.n_units, s.repeat) for s in left) == [(5, 3), (32, 0)]
    assert not any(s.profile for s in left)  # the profile warms nothing that is counted
    left = sweep_control.unfinished(all_specs, adaptive.Progress(tmp_path, all_specs, rows, 0.03, 4), auto)
    assert [(s.train.n_units, s.repeat) for s in left] == [(32, 0)]  # its failed run is run again

    calls = []
    monkeypatch.setattr(runner, "run_all", lambda specs, work, isolate, control: calls.append(specs) or iter(()))
    one = [all_specs[0]]
    sweep_control.warm_up(one, store, pinning.Control(warmup_rounds=2))
    sweep_control.warm_up(one, store, pinning.Control(warmup_rounds=0))
    assert calls == [one, one]
    assert len(store.load()["runs"]) == len(rows)
    store.close()


def test_fixed_repeats_mark_their_rows_fixed(tmp_path):
    progress = adaptive.Progress(tmp_path, specs(2), frame([]), target=None, cap=2)
    spec = progress.next_round(0)[0]
    assert progress.decide(row(spec.run_id, 0, 1.0), None).stop_reason == adaptive.FIXED


# -- pinning ---------------------------------------------------------------------
def test_cpulists_round_trip():
    assert pinning.parse_cpulist("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert pinning.format_cpulist([11, 0, 1, 2, 3, 8, 10]) == "0-3,8,10-11"
    assert pinning.parse_cpulist("garbage") == []


def test_ranks_of_one_job_take_disjoint_cores_while_there_are_enough():
    usable = list(range(8))
    sets = [pinning.core_set([None, None], k, 2, 3, usable) for k in range(2)]
    assert len(sets[0]) == len(sets[1]) == 3 and not set(sets[0]) & set(sets[1])
    crowded = [pinning.core_set([None, None], k, 2, 3, [0, 1, 2, 3]) for k in range(2)]
    assert crowded[1][0] == 3 and len(crowded[1]) == 3  # the one free core first, then shared ones


def test_a_worker_pins_itself_and_sets_its_blas_threads():
    code = ("import os, numpy; from bench.pinning import hold_still; from sinelstm.devices import parse_device_set;"
            "t, c = hold_still(parse_device_set('cpu'), 0, 1); print(t, c, sorted(os.sched_getaffinity(0)))")
    env = pinning.worker_env(cli_env(), pinning.Control(pin=True, threads=1))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT,
                         timeout=60)
    threads, cpus, affinity = out.stdout.split(maxsplit=2)
    assert out.returncode == 0 and threads == "1" and env["PYTHONHASHSEED"] == pinning.HASH_SEED
    assert json.loads(affinity) == pinning.parse_cpulist(cpus) and len(json.loads(affinity)) == 1
    unpinned = pinning.worker_env({}, pinning.Control(pin=False))
    assert pinning.ENV_THREADS not in unpinned and "OMP_NUM_THREADS" not in unpinned


# -- the report's judgement ------------------------------------------------------
def test_noise_larger_than_a_difference_is_named_and_a_quiet_one_is_not():
    cpu = {(10, 5): 1.0, (100, 5): 4.0}
    gpu = {(10, 5): 0.9, (100, 5): 1.0}  # 11 % and 4x
    sw = fact_sweep(fact_runs("cpu", SINGLE_DEVICE, cpu, repeats=(1.0, 1.5, 1.2)),
                    fact_runs("0", SINGLE_DEVICE, gpu, repeats=(1.0, 1.01, 1.02)))
    noisy = trust.noisy(sw)
    assert [(e.label, e.batch) for e in noisy] == [("CPU", 10)]
    text = trust_sentences.noise_warning(noisy, {"load_before": {"loadavg_1_5_15min": [3.5, 1, 1],
                                                                 "busy_processes": []}}, pinned=False)
    assert "CPU at batch 10 / n_units 5" in text and "50% apart" in text and "--repeats auto" in text
    assert "ran unpinned" in text and "load average 3.5 before" in text
    quiet = fact_sweep(fact_runs("cpu", SINGLE_DEVICE, cpu, repeats=(1.0, 1.01)),
                       fact_runs("0", SINGLE_DEVICE, gpu, repeats=(1.0, 1.01)))
    assert trust.noisy(quiet) == [] and trust_sentences.noise_warning([]) is None


def test_a_sweeps_noise_warning_names_the_configurations_it_ran_not_the_folders_earlier_ones(tmp_path, monkeypatch):
    from bench import store, sweep_control

    noisy = (1.0, 1.5, 1.2)  # both far apart against their 11 % difference
    table = {"runs": pd.DataFrame(fact_runs("cpu", SINGLE_DEVICE, {(10, 5): 1.0}, repeats=noisy, invocation="a")
                                  + fact_runs("0", SINGLE_DEVICE, {(10, 5): 0.9}, repeats=noisy, invocation="b")),
             "breakdown": pd.DataFrame(columns=["run_id", "phase", "ms"])}
    monkeypatch.setattr(store.ResultStore, "load", lambda self: table)
    (first,), (second,) = sweep_control.finish(tmp_path, "a"), sweep_control.finish(tmp_path, "b")
    assert "the repeats of 1 configuration(s)" in first and "— CPU at batch 10" in first
    assert "the repeats of 1 configuration(s)" in second and "— 1 GPU at batch 10" in second


def test_a_sweep_whose_runs_the_host_kept_slow_says_what_brings_them_back(tmp_path, monkeypatch):
    from bench import invocations, store, sweep_control

    mine = invocations.append(tmp_path, {"control": {"host_gate_tolerance": 0.2}})
    quiet = (1.0, 1.01)
    rows = (fact_runs("cpu", SINGLE_DEVICE, {(10, 5): 1.0}, repeats=quiet, invocation=mine)
            + fact_runs("cpu", SINGLE_DEVICE, {(10, 8): 1.0}, repeats=quiet, invocation=mine, status=SLOW_HOST)
            + fact_runs("0", SINGLE_DEVICE, {(10, 5): 0.5}, repeats=quiet, invocation="b", status=SLOW_HOST))
    table = {"runs": pd.DataFrame(rows), "breakdown": pd.DataFrame(columns=["run_id", "phase", "ms"])}
    monkeypatch.setattr(store.ResultStore, "load", lambda self: table)
    (only,) = sweep_control.finish(tmp_path, mine)
    assert only.startswith("2 of 4 runs stopped untimed as slow-host: the host stayed more than 20% slower")
    assert "Rerun the same command" in only and "a new folder with --host-gate off" in only
    assert sweep_control.finish(tmp_path, "c") == []  # an invocation none of whose runs stopped: nothing
    assert sweep_control.finish(tmp_path, mine, auto=True) == []  # auto: a later round replaced them


def test_a_map_cell_whose_interval_includes_one_is_marked():
    grid = pd.DataFrame([[0.95, 3.0]], index=[10], columns=[5, 50])
    comps = {(10, 5): intervals.Comparison(intervals.Interval(0.95, 0.8, 1.1, True), 0.5),
             (10, 50): intervals.Comparison(intervals.Interval(3.0, 2.8, 3.2, True), 1e-9)}
    unclear = trust.unclear_grid(comps, grid)
    assert unclear.loc[10, 5] and not unclear.loc[10, 50]
    fig = plots_maps.speedup_heatmap(grid, "t", unclear=unclear)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "≈0.95×" in texts and "3×" in texts
    assert "no clear winner" in " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert trust.tally(comps) == trust.Tally(1, 0, 1, 0)


def test_sentences_state_intervals_and_do_not_name_an_unsupported_winner(tmp_path):
    from bench import facts, sentences

    cpu = {(10, 5): 1.0, (100, 50): 8.0}
    gpu = {(10, 5): 1.05, (100, 50): 1.0}
    sw = fact_sweep(fact_runs("cpu", SINGLE_DEVICE, cpu, repeats=(1.0, 1.2, 0.9)),
                    fact_runs("0", SINGLE_DEVICE, gpu, repeats=(1.0, 1.1, 0.95)))
    ev = trust.evidence(sw.ok)
    said = sentences.summary(sw, {}, ev)
    article = next(s for s in said if s.startswith("At the article's size"))
    assert "no clear winner" in article and "95 % interval" in article and "slower" not in article
    assert any("clearly faster than the CPU in 1 configurations" in s for s in said)
    assert said[-1].startswith("This folder has no per-update times")
    assert facts.gpu_vs_cpu(sw.main, sw.ok, "0").wins == 1


def test_a_tf32_run_does_not_pool_with_the_fp32_one_of_the_same_set():
    # Same device set and size, two precisions: the summary's (fp32)
    # evidence holds the fp32 repeats only, so its interval stays tight.
    fp32 = fact_runs("0", SINGLE_DEVICE, {(10, 5): 20.0}, repeats=(1.0, 1.01), precision="fp32")
    tf32 = fact_runs("0", SINGLE_DEVICE, {(10, 5): 5.0}, repeats=(1.0, 1.01), precision="tf32")
    for r in tf32:
        r["run_id"] += "-tf32"
    sw = fact_sweep(fp32, tf32)
    ev = trust.evidence(sw.base_ok)
    rep = ev.of(("sinebench", 10, "0", SINGLE_DEVICE), (10, 5))
    assert rep.n == 2 and rep.median == pytest.approx(20.1)
    assert trust.evidence(sw.ok).of(("sinebench", 10, "0", SINGLE_DEVICE), (10, 5)).n == 4  # without: pooled


# -- end to end ------------------------------------------------------------------
def test_an_auto_sweep_records_its_control_samples_and_stop_reasons(tmp_path):
    out = tmp_path / "res"
    args = ["sweep", "--devices", "cpu", "--batchsize", "10", "--units", "5", "--recipe", "article",
            "--full-budget", "--updates", "60", "--max-seconds", "0.3", "--warmup", "1", "--eval-every", "30",
            "--repeats", "auto", "--max-repeats", "3", "--min-span", "0", "--threads", "1", "--no-progress",
            "--out", out]
    done = sinebench(*args, timeout=300)
    assert done.returncode == 0, done.stderr
    runs = pd.read_csv(out / "runs.csv")
    # three rounds, or more where the host was slow during one (not counted, replaced)
    assert 3 <= len(runs) <= 6 and set(runs["threads"]) == {1} and runs["cpus"].notna().all()
    assert runs["stop_reason"].fillna("").tolist()[:2] == ["", ""]
    last = runs["stop_reason"].iloc[-1]
    # or, where the host stayed slow, the six rounds laid out (twice the cap) all ran first
    assert last in (adaptive.STABLE, adaptive.CAP) or (last == adaptive.ROUNDS and len(runs) == 6), runs
    assert len(samples.read_all(out, runs["run_id"])) == len(runs)
    assert runs["host_probe_ms"].gt(0).all() and (runs["host_gate"] == hostspeed.DEFAULT_TOLERANCE).all()
    env = json.loads((out / "env.json").read_text())
    record = list(env["invocations"].values())[-1]
    assert record["control"]["pinned"] and record["control"]["threads"] == 1
    assert {"load_before", "load_after", "frequency_scaling"} <= set(record["uncontrolled"])
    report = (out / "report.html").read_text()
    # every run stored its samples, so the report never says they are missing
    assert "predates samples/" not in report and "stored per-update times" not in report
    finished = runs[runs["status"] == "ok"]
    if analysis.counted(finished).any():  # on a loaded host every round can be judged slow
        assert "95 % bootstrap intervals" in report


def test_a_report_whose_profiled_run_does_not_count_renders_and_says_so(tmp_path):
    """Repeat 0 carries the phase profile; judged slow afterwards, it leaves
    the report's figures, and the report still renders (it did not)."""
    out = tmp_path / "res"
    done = sinebench("sweep", "--devices", "cpu", "--batchsize", "10", "--units", "5", "--recipe", "article",
                     "--full-budget", "--updates", "20", "--max-seconds", "0.2", "--warmup", "1", "--repeats", "2",
                     "--threads", "1", "--no-report", "--no-progress", "--out", out, timeout=300)
    assert done.returncode == 0, done.stderr
    runs = pd.read_csv(out / "runs.csv")
    # Only the probe decides: the finished runs equally steady and, but for
    # repeat 0's, at one host speed (on a loaded host repeat 1 could be
    # judged slow or disturbed too).
    ok = runs["status"] == "ok"
    assert sorted(runs.loc[ok, "repeat"]) == [0, 1]
    for column in ("ms_per_update_p25", "ms_per_update_p75"):
        runs.loc[ok, column] = runs.loc[ok & (runs["repeat"] == 1), column].iloc[0]
    fastest = runs["host_probe_ms"].min()
    for probe in ("host_probe_ms", "host_probe_slowest_ms"):  # one process: its probe is the slowest
        runs.loc[ok, probe] = fastest
        runs.loc[ok & (runs["repeat"] == 0), probe] *= 2
    runs.to_csv(out / "runs.csv", index=False)
    shown = sinebench("report", out)
    assert shown.returncode == 0, shown.stderr
    html = (out / "report.html").read_text()
    assert "1 not counted: timed on a slow or disturbed host" in html
    assert "1 finished run was timed while the host" in html


def test_a_sweep_warms_up_first_and_records_it(tmp_path):
    out = tmp_path / "res"
    done = sinebench("sweep", "--devices", "cpu", "--batchsize", "10", "--units", "5", "--recipe", "article",
                     "--full-budget", "--updates", "20", "--max-seconds", "0.2", "--warmup", "1", "--eval-every",
                     "10", "--repeats", "1", "--warmup-rounds", "1", "--threads", "1", "--no-progress",
                     "--no-report", "--out", out, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "warm-up: 1 round(s) of 1 configuration(s), not kept" in done.stdout
    runs = pd.read_csv(out / "runs.csv")
    assert runs["repeat"].tolist() == [0] and runs["attempt"].tolist() == [1]
    record = list(json.loads((out / "env.json").read_text())["invocations"].values())[-1]
    assert record["control"]["warmup_rounds"].startswith("1:")
    dry = sinebench("sweep", "--devices", "cpu", "--warmup-rounds", "2", "--out", tmp_path / "y", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith("warm-up first: 2 round(s) of 4 configuration(s), 8 run(s)")
    bad = sinebench("sweep", "--devices", "cpu", "--warmup-rounds", "-1", "--out", tmp_path / "y", "--dry-run")
    assert bad.returncode == 2 and not (tmp_path / "y").exists()


def test_bad_repeat_options_are_refused_before_anything_is_written(tmp_path):
    for args in (["--repeats", "0"], ["--repeats", "some"], ["--repeats", "4", "--target-ci", "0.05"],
                 ["--repeats", "auto", "--target-ci", "2"], ["--repeats", "auto", "--min-span", "nan"],
                 ["--repeats", "3", "--max-repeats", "5"]):
        done = sinebench("sweep", "--devices", "cpu", "--out", tmp_path / "x", "--dry-run", *args)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
    assert not (tmp_path / "x").exists()
    dry = sinebench("sweep", "--devices", "cpu", "--out", tmp_path / "x", "--dry-run", "--repeats", "auto")
    assert dry.returncode == 0 and "--repeats auto: 4 configurations" in dry.stdout


# -- on GPUs (skipped here) --------------------------------------------------------
@pytest.mark.gpu
def test_a_gpu_run_is_pinned_near_its_gpu_and_keeps_its_samples(tmp_path):
    from pathlib import Path

    import cupy

    bus = str(cupy.cuda.Device(0).pci_bus_id).lower()
    local = pinning.parse_cpulist((Path("/sys/bus/pci/devices") / bus / "local_cpulist").read_text()) \
        if (Path("/sys/bus/pci/devices") / bus / "local_cpulist").exists() else []
    assert pinning.gpu_local_cpus(0) == local
    out = tmp_path / "res"
    done = sinebench("sweep", "--devices", "0", "--batchsize", "10", "--units", "5", "--recipe", "article",
                     "--full-budget", "--updates", "60", "--max-seconds", "0.5", "--warmup", "2", "--threads", "2",
                     "--repeats", "2", "--no-progress", "--no-report", "--out", out, timeout=600)
    assert done.returncode == 0, done.stderr
    runs = pd.read_csv(out / "runs.csv", dtype={"cpus": str})
    for cpus in runs["cpus"]:
        chosen = pinning.parse_cpulist(cpus)
        assert len(chosen) == 2 and (not local or set(chosen) <= set(local) or len(local) < 2)
    assert len(samples.read_all(out, runs["run_id"])) == 2


@pytest.mark.multigpu
@pytest.mark.mpi
def test_a_two_gpu_mpi_job_runs_pinned_and_records_its_first_ranks_cores(tmp_path):
    out = tmp_path / "res"
    done = sinebench("sweep", "--devices", "0+1", "--strategy", "chainermn", "--batchsize", "10", "--units", "5",
                     "--recipe", "article", "--full-budget", "--updates", "60", "--max-seconds", "0.5",
                     "--warmup", "2", "--threads", "1", "--repeats", "1", "--no-progress", "--no-report",
                     "--out", out, timeout=600)
    assert done.returncode == 0, done.stderr
    runs = pd.read_csv(out / "runs.csv", dtype={"cpus": str})
    assert runs["status"].tolist() == ["ok"] and len(pinning.parse_cpulist(runs["cpus"].iloc[0])) == 1


def test_a_tight_interval_is_written_with_ends_that_differ_and_the_point_between():
    from bench import trust_sentences

    tight = intervals.Comparison(intervals.Interval(1.884, 1.881, 1.887, True), 1e-9)
    assert trust_sentences.interval(tight) == " (1.88×; 95 % interval 1.88×–1.89×)"
    tighter = intervals.Comparison(intervals.Interval(0.53, 0.528, 0.532, True), 1e-9)
    assert trust_sentences.interval(tighter) == " (0.530×; 95 % interval 0.528×–0.532×)"
    across = intervals.Comparison(intervals.Interval(1.949, 1.947, 1.952, True), 1e-9)  # '1.9×–2×' at 2 digits
    assert trust_sentences.interval(across) == " (1.949×; 95 % interval 1.947×–1.952×)"
    small = intervals.Comparison(intervals.Interval(0.00125, 0.00123, 0.00127, True), 1e-9)
    assert trust_sentences.interval(small) == " (0.00125×; 95 % interval 0.00123×–0.00127×)"
    large = intervals.Comparison(intervals.Interval(1512.0, 1504.0, 1519.0, True), 1e-9)
    assert trust_sentences.interval(large) == " (1,512×; 95 % interval 1,504×–1,519×)"
    wide = intervals.Comparison(intervals.Interval(1.5, 1.3, 1.7, True), 1e-9)
    assert trust_sentences.interval(wide) == " (95 % interval 1.3×–1.7×)"


def test_the_phase_breakdown_keeps_to_the_summary_s_precision():
    # A tf32 run of the same set and size must not be drawn into the fp32
    # run's phase bar (it was: a 1-GPU bar showed the mean of both).
    from bench import facts

    fp32 = fact_runs("0", SINGLE_DEVICE, {(10, 5): 20.0}, precision="fp32")
    tf32 = fact_runs("0", SINGLE_DEVICE, {(10, 5): 5.0}, precision="tf32")
    for r in tf32:
        r["run_id"] += "-tf32"
    phases = [(r["run_id"], "forward", r["ms_per_update_median"]) for r in fp32 + tf32]
    sw = fact_sweep(fp32, tf32, breakdown=phases)
    bars = facts.breakdown_bars(sw.breakdown, sw.base_ok)
    assert bars["ms"].tolist() == [20.0]


def test_the_gates_record_is_summed_and_said():
    """host_waits over finished runs: which found the host slow, the waits,
    the runs that used the whole cap; nothing for a folder without the gate."""
    from sinelstm.hostspeed import MAX_WAIT_S

    runs = pd.DataFrame({"status": ["ok", "ok", "ok", "error"], "host_slow": [0.0, 0.5, 1.0, 1.0],
                         "host_wait_s": [0.01, 2.0, MAX_WAIT_S, 9.0]})
    w = trust.host_waits(runs)
    assert (w.runs, w.slow_runs, w.capped) == (3, 2, 1)
    assert w.wait_s == pytest.approx(2.0 + MAX_WAIT_S)
    line = trust_sentences.host_waits(w)
    assert "slow in 2 of 3 finished runs" in line and "1 reached the" in line and "include slow phases" in line
    quiet = trust.host_waits(runs.assign(host_slow=0.0))
    assert trust_sentences.host_waits(quiet) == ("The host-speed gate never found the host slow in the 3 finished "
                                                 "runs it checked.")
    stopped = trust.host_waits(pd.concat([runs, runs.assign(status="slow-host")]))
    assert (stopped.runs, stopped.stopped) == (3, 4)
    assert "4 other runs met a host still slow after the" in trust_sentences.host_waits(stopped)
    # since slow-host, a finished run that used its cap was fast where it went on: not "timed slow"
    assert trust.host_waits(runs.assign(host_probe_ms=1.0, host_gate=0.2)).capped == 0
    assert "not counted (status slow-host)" in trust_sentences.host_waits(stopped)
    assert trust.host_waits(runs.drop(columns=["host_slow"])) is None
    assert trust.host_waits(runs.assign(host_slow=np.nan)) is None  # gate off


def test_the_hosts_speed_while_timed_is_read_from_one_kind_of_run_and_said():
    """host_speed: the counted CPU runs' probes where there are any, else
    the one-process runs', else the MPI jobs' (the probe reads differently
    in each kind of process); probes missing in some runs are left out; the
    summary sentence gives the reading, names the kind, and says the
    intervals leave out the drift between sweeps; nothing without probes."""
    runs = pd.DataFrame({"devices": ["cpu", "cpu", "cpu", "0", "0+1"],
                         "strategy": [SINGLE_DEVICE, SINGLE_DEVICE, SINGLE_DEVICE, SINGLE_DEVICE, "chainermn"],
                         "host_probe_ms": [1.40, 1.50, np.nan, 1.60, 3.0]})
    h = trust.host_speed(runs)
    assert (h.median_ms, h.low_ms, h.high_ms, h.runs, h.whose) == (1.45, 1.40, 1.50, 2, "CPU")
    line = trust_sentences.host_speed(h)
    assert "2 counted CPU runs were timed" in line and "read 1.450 ms at the median (1.400–1.500)" in line
    assert "cover only this sweep's repeats" in line and "time over the probe" in line
    gpu = trust.host_speed(runs[runs["devices"] != "cpu"])
    assert (gpu.median_ms, gpu.whose) == (1.60, "one-process")
    job = trust.host_speed(runs[runs["strategy"] == "chainermn"])
    assert (job.median_ms, job.whose) == (3.0, "MPI rank 0")
    assert "the 1 counted MPI rank 0 run was timed" in trust_sentences.host_speed(job)
    slowest = runs.assign(host_probe_slowest_ms=[1.40, 1.50, np.nan, 1.60, 3.3])
    assert (trust.host_speed(slowest).median_ms, trust.host_speed(slowest).whose) == (1.45, "CPU")
    job = trust.host_speed(slowest[slowest["strategy"] == "chainermn"])  # the job's slowest rank
    assert (job.median_ms, job.whose) == (3.3, "MPI (slowest rank)")
    from bench.report import _mpi_probe_words

    assert trust.mpi_probes(runs) == "rank 0" and "rank 0's probe" in _mpi_probe_words("rank 0")
    assert trust.mpi_probes(slowest) == "slowest rank" and "rank 0" not in _mpi_probe_words("slowest rank")
    both = pd.concat([slowest, runs.tail(1)])  # a job of an older invocation into the same folder
    assert trust.mpi_probes(both) == "both" and trust.mpi_probes(runs.head(3)) is None
    assert trust.host_speed(both[both["strategy"] == "chainermn"]).whose == "MPI"  # rows of both kinds
    assert trust.host_speed(runs.assign(host_probe_ms=np.nan)) is None  # gate off
    assert trust.host_speed(runs.drop(columns=["host_probe_ms"])) is None  # a folder from before the probe
    assert trust_sentences.host_speed(None) is None


def test_each_configuration_gives_its_time_over_the_host_probe_and_the_table_shows_it_where_probed():
    """aggregate's per_probe: the median over counted repeats of ms / the
    run's probe, so that a host twice as slow in one repeat (probe and time
    both doubled) leaves it unchanged; the configurations table has the
    column only where some run was probed."""
    from bench import tables

    cpu = pd.DataFrame(fact_runs("cpu", SINGLE_DEVICE, {(10, 5): 1.5}, repeats=(1.0, 2.0, 1.0)))
    cpu["host_probe_ms"] = [1.5, 3.0, 1.6]
    agg = analysis.aggregate(cpu)  # the gate off (no host_gate column): every repeat counts
    assert agg["per_probe"].iloc[0] == pytest.approx(1.0)  # 1.5/1.5, 3.0/3.0, 1.5/1.6: median 1.0
    assert agg["ms"].iloc[0] == pytest.approx(1.5)
    assert tables.PER_PROBE in tables.configurations(agg)
    # an MPI job's time over its slowest rank's probe, where the row has it (older rows: rank 0's)
    job = cpu.assign(devices="cpu+cpu", strategy="chainermn", host_probe_slowest_ms=[3.0, 3.0, np.nan])
    assert analysis.job_probe(job).tolist() == [3.0, 3.0, 1.6]
    assert analysis.aggregate(job)["per_probe"].iloc[0] == pytest.approx(1.5 / 1.6)  # 0.5, 1.0, 0.9375
    unprobed = analysis.aggregate(cpu.drop(columns=["host_probe_ms"]))
    assert unprobed["per_probe"].isna().all() and tables.PER_PROBE not in tables.configurations(unprobed)
    html = str(tables.configurations(unprobed))
    assert "gradient error" not in html  # both dropped, and every row's cells still under their headings:
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", html)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert len(cells) == len(heads) and cells[heads.index("windows per s")] == tables.num(10 / 1.5 * 1e3)
