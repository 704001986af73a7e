"""The host-speed gate (sinelstm.hostspeed): waits until the probe reads
fast twice in a row, stops at its cap, leaves a quiet host alone, waits for
any rank, and the training loop keeps its waits out of every time it
reports."""
import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from sinelstm import hostspeed
from sinelstm.config import Budget, TrainConfig
from sinelstm.hostspeed import HostGate


@pytest.fixture
def host(monkeypatch):
    """A scripted host: probe times from a list (then its last value), sleeps
    that only count, and a fresh reference."""
    monkeypatch.setattr(hostspeed, "_BEST", {})
    monkeypatch.delenv(hostspeed.REFERENCE_ENV, raising=False)
    state = {"probes": [], "slept": 0, "now": 0.0}

    def probe():
        value = state["probes"].pop(0) if len(state["probes"]) > 1 else state["probes"][0]
        return value

    def sleep(s):
        state["slept"] += 1
        state["now"] += s

    monkeypatch.setattr(hostspeed, "probe_ms", probe)
    monkeypatch.setattr(hostspeed.time, "sleep", sleep)
    monkeypatch.setattr(hostspeed.time, "perf_counter", lambda: state["now"])
    return state


def test_a_slow_host_is_waited_for_until_it_is_fast_again(host):
    host["probes"] = [1.0, 2.0, 1.05, 1.9, 1.05, 1.0, 2.0]
    gate = HostGate(0.35)
    assert gate.wait() == 0.0  # first probe: the reference, quiet
    waited = gate.wait()  # 2.0 slow; 1.05 fast once, then 1.9 slow again; 1.05 and 1.0: fast twice in a row
    assert host["slept"] == 4 and waited == pytest.approx(4 * hostspeed._PAUSE_S)
    assert gate.checks == 2 and gate.slow_checks == 1 and gate.slow_share == 0.5


def test_the_runs_host_speed_is_the_median_probe_at_which_timing_went_on(host):
    host["probes"] = [1.0, 2.0, 1.1, 1.05, 1.2]
    gate = HostGate(0.35)
    gate.wait()  # 1.0
    gate.wait()  # 2.0 slow, 1.1, 1.05: goes on at 1.05
    gate.wait()  # 1.2
    assert gate.passed_ms == [1.0, 1.05, 1.2] and gate.probe_ms == 1.05
    assert HostGate(None).probe_ms is None


def test_a_jobs_host_speed_is_its_slowest_processs_probe_at_each_check(host):
    host["probes"] = [1.0, 1.1, 1.2]  # this rank's
    gate = HostGate(0.35)
    others = iter([1.5, 1.0, 1.6])  # another rank's, at the same checks
    for _ in range(3):
        gate.wait(slowest=lambda mine: max(mine, next(others)))
    assert gate.slowest_ms == [1.5, 1.1, 1.6] and gate.slowest_probe_ms == 1.5
    assert gate.probe_ms == 1.1  # this rank's own reading is kept apart
    alone = HostGate(0.35)
    host["probes"] = [1.0, 1.3]
    alone.wait()
    alone.wait()
    assert alone.slowest_probe_ms == alone.probe_ms == 1.15  # one process: its own
    assert HostGate(None).slowest_probe_ms is None


def test_a_quiet_host_never_waits(host):
    host["probes"] = [1.0, 1.1, 1.2, 1.3]
    gate = HostGate(0.35)
    assert sum(gate.wait() for _ in range(4)) == 0.0
    assert host["slept"] == 0 and gate.slow_share == 0.0


def test_a_host_still_slow_at_the_runs_cap_stops_the_run(host):
    host["probes"] = [1.0, 5.0]  # slow for ever
    gate = HostGate(0.35, max_wait_s=1.0)
    gate.wait()
    with pytest.raises(hostspeed.HostSlow, match="35% slower than its reference probe"):
        gate.wait()
    assert gate.wait_s == pytest.approx(1.0, abs=hostspeed._PAUSE_S)
    with pytest.raises(hostspeed.HostSlow):
        gate.wait()  # the cap is used up: one probe, no waiting, and a slow host still stops the run
    assert gate.slow_checks == 2 and gate.wait_s == pytest.approx(1.0, abs=hostspeed._PAUSE_S)


def test_the_checks_own_probes_do_not_use_up_the_cap(host, monkeypatch):
    """Thousands of quiet checks (each probe takes time) leave the whole cap
    for waiting: a first slow reading later is waited out, not a stop."""
    def probe():
        host["now"] += 0.01  # a probe's own time
        return host["probes"].pop(0) if len(host["probes"]) > 1 else host["probes"][0]
    monkeypatch.setattr(hostspeed, "probe_ms", probe)
    gate = HostGate(0.35, max_wait_s=1.0)
    host["probes"] = [1.0]
    for _ in range(200):  # 2 s of probes, more than the cap
        gate.wait()
    host["probes"] = [2.0, 1.0, 1.0]
    gate.wait()
    assert gate.wait_s > 2.0 and gate.paused_s < 1.0


def test_a_wait_that_ends_fast_at_the_cap_goes_on(host):
    host["probes"] = [1.0, 5.0, 5.0, 1.0, 1.0, 5.0]  # fast twice in a row just in time
    gate = HostGate(0.35, max_wait_s=3 * hostspeed._PAUSE_S)
    gate.wait()
    gate.wait()
    assert host["slept"] == 3


def test_a_slow_host_under_another_rank_stops_every_rank(host):
    host["probes"] = [1.0]  # quiet here
    gate = HostGate(0.35, max_wait_s=1.0)
    gate.wait()
    # Another rank: slow at the check, waits three rounds, out of time, still slow.
    answers = iter([True, True, True, True, False, True])
    with pytest.raises(hostspeed.HostSlow):
        gate.wait(any_rank=lambda mine: next(answers))
    assert host["slept"] == 3


def test_the_gate_off_probes_nothing(host):
    host["probes"] = [1.0, 9.0]
    gate = HostGate(None)
    assert gate.wait() == 0.0 and gate.slow_share is None and gate.checks == 0


def test_a_slow_host_under_any_rank_makes_all_wait(host):
    host["probes"] = [1.0]  # quiet here, throughout
    gate = HostGate(0.35)
    gate.wait()
    answers = itertools.chain([True] * 3, itertools.repeat(False))  # another rank: slow, then two rounds
    gate.wait(any_rank=lambda slow: next(answers))
    assert host["slept"] == 2 and gate.slow_checks == 1


def _lines(path) -> list:
    return [float(line) for line in path.read_text().split()]


def test_the_reference_is_the_fifth_fastest_probe_once_five_are_known(host):
    """The fastest of hundreds of probes is an outlier: against it the host
    reads slow at most checks (a 2-core machine: 0.981 ms, where runs timed
    at 1.14-1.31)."""
    host["probes"] = [0.8, 1.0, 1.01, 1.02, 1.03, 1.2, 1.3, 0.5]
    gate = HostGate(0.2)
    assert [gate.slow() for _ in range(7)] == [False, True, True, True, False, False, True]
    assert gate.best_ms == 1.03
    gate.slow()  # 0.5: one of the five fastest now
    assert gate.best_ms == 1.02


def test_the_reference_is_the_fastest_probe_while_fewer_than_five_are_known(host):
    host["probes"] = [2.0, 1.0, 2.0, 1.2]  # started in a slow phase
    gate = HostGate(0.35)
    gate.wait()  # 2.0: the reference for now
    gate.wait()  # 1.0: faster, the new reference
    gate.wait()  # 2.0 is slow against 1.0; then 1.2 is quiet, twice
    assert host["slept"] == 2


def test_a_run_that_starts_in_a_slow_phase_knows_the_folders_reference(host, tmp_path, monkeypatch):
    """A fresh worker whose first probe is slow would take it for full speed;
    the results folder's fastest probe says otherwise, and the fastest this
    run sees goes back into it."""
    shared = tmp_path / hostspeed.REFERENCE_FILE
    shared.write_text("0.5\n")
    monkeypatch.setenv(hostspeed.REFERENCE_ENV, str(shared))
    host["probes"] = [1.0, 1.0, 0.6, 0.4]
    gate = HostGate(0.35)
    gate.wait()  # 1.0, 1.0 slow against 0.5; 0.6 and 0.4 within 35 %
    assert host["slept"] == 3
    gate.wait()  # 0.4: a new best
    gate.save()
    assert _lines(shared) == [0.4, 0.5, 0.6, 1.0]  # the fastest five, each probe once
    shared.write_text("0.3\n0.5\n")  # a faster one recorded meanwhile (another rank) is kept
    gate.save()
    assert _lines(shared) == [0.3, 0.4, 0.5, 0.6, 1.0]
    gate.save()
    assert _lines(shared) == [0.3, 0.4, 0.5, 0.6, 1.0]  # saved again: the same probes, not copies
    shared.write_text("0.3\n")  # only its own probes go back: the file's 0.5, read at the start, does not
    gate.save()
    assert _lines(shared) == [0.3, 0.4, 0.6, 1.0]


def test_a_later_sweep_on_the_machine_knows_its_reference_from_the_first(host, tmp_path, monkeypatch):
    """A second sweep (a new folder) that starts in a slow phase waits for
    full speed, because the machine's file remembers the first sweep's
    probes; without that file it takes the slow phase for full speed."""
    machine = tmp_path / "machine" / hostspeed.REFERENCE_FILE
    machine.parent.mkdir()
    monkeypatch.setenv(hostspeed.MACHINE_ENV, str(machine))
    monkeypatch.setenv(hostspeed.REFERENCE_ENV, str(tmp_path / "first.txt"))
    host["probes"] = [1.0]
    first = HostGate(0.2, kind="cpu")
    first.wait()
    first.save()
    machine_cpu = machine.parent / machine.name.replace(".txt", ".cpu.txt")
    assert _lines(tmp_path / "first.cpu.txt") == hostspeed.read_ms(str(machine_cpu)) == [1.0]
    for remembered in (True, False):
        monkeypatch.setattr(hostspeed, "_BEST", {})  # a new worker
        monkeypatch.setattr(hostspeed, "_OWN", {})
        monkeypatch.setenv(hostspeed.REFERENCE_ENV, str(tmp_path / f"second-{remembered}.txt"))
        if not remembered:
            monkeypatch.delenv(hostspeed.MACHINE_ENV)
        host["probes"], host["slept"] = [1.7, 1.7, 1.0, 1.05], 0
        HostGate(0.2, kind="cpu").wait()
        assert host["slept"] == (3 if remembered else 0)
    # the machine's file says when each probe came; after an hour it no longer judges
    (ms, when), = [line.split() for line in machine_cpu.read_text().splitlines()]
    assert float(ms) == 1.0 and abs(float(when) - time.time()) < 60
    assert (tmp_path / "first.cpu.txt").read_text().split() == [ms]  # a folder's file: probes alone
    machine_cpu.write_text(f"{ms} {float(when) - hostspeed.MACHINE_MAX_AGE_S - 1:.0f}\n")
    monkeypatch.setenv(hostspeed.MACHINE_ENV, str(machine))
    assert hostspeed._shared_ms("cpu") == [] and hostspeed.read_ms(str(machine_cpu)) == [1.0]


def test_a_resumed_folders_probes_do_not_enter_the_machines_memory(host, tmp_path, monkeypatch):
    """A folder from an earlier boot holds a faster probe: it judges the runs
    resumed into that folder, but is not written into this boot's machine
    file (stamped now, it would judge every sweep for an hour), nor the
    machine's probes into the folder's file."""
    folder, machine = tmp_path / "old.txt", tmp_path / "machine.txt"
    (tmp_path / "old.cpu.txt").write_text("0.9\n")
    (tmp_path / "machine.cpu.txt").write_text(f"0.95 {time.time():.0f}\n")
    monkeypatch.setenv(hostspeed.REFERENCE_ENV, str(folder))
    monkeypatch.setenv(hostspeed.MACHINE_ENV, str(machine))
    host["probes"] = [1.0]
    gate = HostGate(0.2, kind="cpu")
    gate.wait()  # 1.0 against 0.9: within 20 %
    gate.save()
    assert hostspeed.read_ms(str(tmp_path / "old.cpu.txt")) == [0.9, 1.0]
    assert hostspeed.read_ms(str(tmp_path / "machine.cpu.txt")) == [0.95, 1.0]


def test_each_kind_of_run_keeps_its_own_reference(host, tmp_path, monkeypatch):
    """A ChainerMN rank's probe reads slower than a CPU run's at the same host
    speed: against the CPU runs' reference it would wait, or stop, for ever."""
    monkeypatch.setenv(hostspeed.REFERENCE_ENV, str(tmp_path / hostspeed.REFERENCE_FILE))
    host["probes"] = [1.0]
    cpu = HostGate(0.1, kind="sinebench-single-device-cpu")
    cpu.wait()
    cpu.save()
    host["probes"] = [1.3]
    rank = HostGate(0.1, kind="sinebench-chainermn-0+1")
    assert rank.wait() == 0.0 and host["slept"] == 0
    rank.save()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["host_probe_cpu-update-b10-n5.sinebench-chainermn-0+1.txt",
                     "host_probe_cpu-update-b10-n5.sinebench-single-device-cpu.txt"]
    assert HostGate(0.1, kind="sinebench-single-device-cpu")._shared == [1.0]


def test_an_implausibly_fast_reference_is_not_believed(host, tmp_path, monkeypatch):
    """A reference far faster than anything this run sees (another machine's,
    a damaged file) would make every run wait its whole cap."""
    shared = tmp_path / hostspeed.REFERENCE_FILE
    shared.write_text("1e-9\n")
    monkeypatch.setenv(hostspeed.REFERENCE_ENV, str(shared))
    host["probes"] = [1.0, 1.1]
    gate = HostGate(0.35)
    assert gate.wait() == 0.0 and gate.wait() == 0.0 and host["slept"] == 0


def test_a_damaged_reference_file_is_ignored(host, tmp_path, monkeypatch):
    shared = tmp_path / hostspeed.REFERENCE_FILE
    shared.write_text("not a number")
    monkeypatch.setenv(hostspeed.REFERENCE_ENV, str(shared))
    host["probes"] = [1.0, 1.1]
    gate = HostGate(0.35)
    assert gate.wait() == 0.0 and gate.wait() == 0.0
    gate.save()
    assert _lines(shared) == [1.0, 1.1]


def test_bad_tolerance_is_refused():
    for bad in (0.0, -1.0, float("nan"), float("inf"), 1e-300, 35.0):
        with pytest.raises(ValueError, match="host-gate"):
            Budget(host_gate=bad)
    assert Budget(host_gate=None).timeout_s() < Budget().timeout_s()  # waits have room in the timeout


def test_training_records_the_jobs_slowest_probe_from_its_strategy(monkeypatch):
    """The loop asks the strategy for the slowest process's probe at each
    check (an MPI job: the ranks' maximum); here a strategy whose other
    process reads 1 ms slower than this one."""
    from sinelstm.devices import parse_device_set
    from sinelstm.recipes import RECIPES
    from sinelstm.strategy import make_strategy
    from sinelstm.train import train

    monkeypatch.setattr(hostspeed, "_BEST", {})
    monkeypatch.delenv(hostspeed.REFERENCE_ENV, raising=False)
    monkeypatch.setattr(hostspeed, "probe_ms", lambda: 1.0)
    strategy = make_strategy("single-process", parse_device_set("cpu"), "sinebench")
    strategy.slowest = lambda ms: ms + 1.0
    cfg = TrainConfig(n_units=5, batchsize=4, recipe=RECIPES["article"], eval_every=5,
                      budget=Budget(updates=10, warmup=0))
    result = train(cfg, strategy)
    assert (result.host_probe_ms, result.host_probe_slowest_ms) == (1.0, 2.0)


def test_training_keeps_waits_out_of_its_times(monkeypatch):
    """A CPU run on a host the probe calls slow at one check: the loop waits
    there, and reports the wait apart from training and wall time."""
    from sinelstm.devices import parse_device_set
    from sinelstm.recipes import RECIPES
    from sinelstm.strategy import make_strategy
    from sinelstm.train import train

    monkeypatch.setattr(hostspeed, "_BEST", {})
    monkeypatch.delenv(hostspeed.REFERENCE_ENV, raising=False)
    probes = iter([1.0] + [3.0] * 4 + [1.0] * 10_000)
    monkeypatch.setattr(hostspeed, "probe_ms", lambda: next(probes))
    monkeypatch.setattr(hostspeed, "_PAUSE_S", 0.1)
    cfg = TrainConfig(n_units=5, batchsize=4, recipe=RECIPES["article"], eval_every=5,
                      budget=Budget(updates=20, warmup=0))
    result = train(cfg, make_strategy("single-process", parse_device_set("cpu"), "sinebench"))
    assert result.updates == 20
    assert result.host_wait_s >= 0.4  # four pauses of 0.1 s
    assert result.host_slow == pytest.approx(1 / 4)  # four checks (before update 1, after 5, 10, 15), one slow
    assert result.wall_s < result.host_wait_s  # 20 tiny updates and four evaluations take less than the wait


def test_a_run_the_host_keeps_slow_ends_as_slow_host(monkeypatch, tmp_path):
    """The worker's row for a run the gate stops: status slow-host, its
    message says why, nothing timed, and the threads and cores it was held
    to (which cores are slow is what a reader of such rows asks)."""
    from bench import worker
    from bench.schema import RunSpec

    monkeypatch.setattr(hostspeed, "_BEST", {})
    monkeypatch.delenv(hostspeed.REFERENCE_ENV, raising=False)
    probes = iter([1.0] + [3.0] * 10_000)
    monkeypatch.setattr(hostspeed, "probe_ms", lambda: next(probes))
    monkeypatch.setattr(hostspeed, "MAX_WAIT_S", 0.2)
    monkeypatch.setattr(worker, "hold_still", lambda device_set, rank, ranks: (1, "0"))  # one thread, core 0
    cfg = TrainConfig(n_units=5, batchsize=4, eval_every=5, budget=Budget(updates=20, warmup=0))
    spec = RunSpec(devices="cpu", strategy="single-device", train=cfg)
    with pytest.raises(SystemExit):
        worker.run_or_fail(spec, tmp_path, 0)
    import json

    row = json.loads((tmp_path / "error-rank0.json").read_text())
    assert row["status"] == "slow-host" and row["message"].startswith("the host stayed more than 20% slower")
    assert "past the 0.2 s a run may wait" in row["message"]  # the status says the kind: no exception's name
    assert row["ms_per_update_median"] is None
    assert (row["threads"], row["cpus"]) == (1, "0")


def test_gate_off_in_training_records_nothing():
    from sinelstm.devices import parse_device_set
    from sinelstm.recipes import RECIPES
    from sinelstm.strategy import make_strategy
    from sinelstm.train import train

    cfg = TrainConfig(n_units=5, batchsize=4, recipe=RECIPES["article"], eval_every=5,
                      budget=Budget(updates=10, warmup=0, host_gate=None))
    result = train(cfg, make_strategy("single-process", parse_device_set("cpu"), "sinebench"))
    assert result.host_wait_s == 0.0 and result.host_slow is None


def test_the_real_probe_leaves_the_gated_run_as_it_was(monkeypatch):
    """The probe trains a model of its own: a gated run (the real probe at
    every check) learns exactly what an ungated one does."""
    from sinelstm.devices import parse_device_set
    from sinelstm.recipes import RECIPES
    from sinelstm.strategy import make_strategy
    from sinelstm.train import train

    monkeypatch.setattr(hostspeed, "_BEST", {})
    monkeypatch.delenv(hostspeed.REFERENCE_ENV, raising=False)
    hostspeed._probe_updater.cache_clear()
    np.random.seed(3)
    expected = np.random.random(3)
    np.random.seed(3)
    hostspeed.probe_ms()  # builds the probe's model
    assert (np.random.random(3) == expected).all()  # the global stream as it was
    results = {}
    for gate in (None, 10.0):  # 10: the probe runs at every check and never waits
        cfg = TrainConfig(n_units=5, batchsize=4, recipe=RECIPES["article"], eval_every=5,
                          budget=Budget(updates=20, warmup=0, host_gate=gate))
        results[gate] = train(cfg, make_strategy("single-process", parse_device_set("cpu"), "sinebench"))
    assert results[10.0].host_slow is not None  # the probe ran
    assert [c["train_loss"] for c in results[10.0].curve] == [c["train_loss"] for c in results[None].curve]
    assert 0 < hostspeed.probe_ms() < 1000


def test_a_folder_keeps_one_gate_setting(tmp_path):
    """Gated and ungated runs of one configuration would be pooled as repeats:
    a sweep asking for another setting than the folder's is refused (one line,
    exit 2, nothing written), and a folder from before the gate counts as off."""
    import json
    import os

    from bench import hostmemory
    from bench.machine import rows as machine_rows
    from tests.helpers import sinebench

    out = tmp_path / "r"
    common = ["sweep", "--devices", "cpu", "--units", "5", "--batchsize", "10", "--recipe", "article",
              "--full-budget", "--updates", "20", "--max-seconds", "0.2", "--warmup", "1", "--no-report",
              "--no-progress", "--out", out]
    first = sinebench(*common)
    assert first.returncode == 0, first.stderr
    env = json.loads((out / "env.json").read_text())
    assert [r["control"]["host_gate_tolerance"] for r in env["invocations"].values()] == [hostspeed.DEFAULT_TOLERANCE]
    assert (out / hostspeed.REFERENCE_FILE.replace(".txt", ".sinebench-single-device-cpu-rank0.txt")).is_file()
    # the machine remembers: a sweep into another folder starts knowing this one's probes
    (first_record,) = env["invocations"].values()
    machine = Path(first_record["control"]["host_gate_machine_file"])
    assert first_record["host_probes_known_at_start"] == {} and first_record["repeats"]["mode"] == "fixed"
    assert machine.parent.parent == Path(os.environ[hostmemory.CACHE_ENV])
    kind = "sinebench-single-device-cpu-rank0"
    remembered = hostspeed.read_ms(str(machine.with_name(machine.name.replace(".txt", f".{kind}.txt"))))
    second = sinebench(*common[:-1], tmp_path / "second")
    assert second.returncode == 0, second.stderr
    (record,) = json.loads((tmp_path / "second" / "env.json").read_text())["invocations"].values()
    assert record["host_probes_known_at_start"] == {kind: remembered} and len(remembered) >= 1
    shown = dict(machine_rows(record))  # the report's machine table says how the runs were timed
    assert shown["host speed known at the start"].startswith(f"{kind}: {min(remembered):.3f}")
    assert shown["timing control"].endswith("host-speed gate at 20%")
    assert "none: no sweep on this machine" in dict(machine_rows(first_record))["host speed known at the start"]
    before = (out / "runs.csv").read_text()
    refused = sinebench(*common, "--host-gate", "off", "--repeats", "2")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    for bad in (["--repeats", "2", "--min-span", "30"], ["--repeats", "auto", "--min-span", "-1"]):
        span = sinebench(*common, *bad)
        assert span.returncode == 2 and len(span.stderr.strip().splitlines()) == 1, span.stderr
    assert f"--host-gate {hostspeed.DEFAULT_TOLERANCE:g}" in refused.stderr and (out / "runs.csv").read_text() == before
    # the same folder as if written before the gate: its invocation has no tolerance -> off
    for record in env["invocations"].values():
        del record["control"]["host_gate_tolerance"]
    (out / "env.json").write_text(json.dumps(env))
    assert "--host-gate off" in sinebench(*common, "--repeats", "2").stderr
    assert sinebench(*common, "--repeats", "2", "--host-gate", "off").returncode == 0


def test_a_machine_whose_cache_cannot_be_written_keeps_no_memory(tmp_path, monkeypatch):
    """The gate then keeps to the folder's reference; env.json says no memory
    was kept (None), not that the machine knew nothing ({})."""
    import os

    from bench import hostmemory, pinning, sweep_control

    monkeypatch.setenv(hostmemory.CACHE_ENV, os.path.join(os.devnull, "sinebench"))
    assert hostmemory.reference_file(True, 4) is None
    control = sweep_control.with_references(pinning.Control(), tmp_path)
    assert control.machine_probe_file is None and control.probe_file.startswith(str(tmp_path))
    env = pinning.worker_env({hostspeed.MACHINE_ENV: "/elsewhere"}, control)
    assert hostspeed.MACHINE_ENV not in env and env[hostspeed.REFERENCE_ENV] == control.probe_file
    monkeypatch.setenv(hostmemory.CACHE_ENV, str(tmp_path / "cache"))
    kept = sweep_control.with_references(pinning.Control(threads=4), tmp_path)
    assert Path(kept.machine_probe_file).parent.parent == tmp_path / "cache"
    assert "threads4" in kept.machine_probe_file and hostmemory.machine_key() in kept.machine_probe_file
    assert sweep_control.with_references(pinning.Control(host_gate=None), tmp_path).machine_probe_file is None
