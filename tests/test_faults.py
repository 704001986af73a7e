"""Fault injection: whatever happens to a sweep or its folder, nothing
committed is lost or duplicated, and every failure is one line.

CPU only; tiny sweeps. The store-level cases run in this process; the
others run the ``sinebench`` command and hurt it (signals, a second sweep,
a full disk, bad input).
"""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import pytest

from bench import procs, runner
from bench.schema import RunRow, RunSpec
from bench.store import ResultsError, ResultStore
from sinelstm.config import Budget, TrainConfig
from tests.helpers import PROJECT_ROOT, cli_env, sinebench

TINY = ["--devices", "cpu", "--batchsize", "10", "--units", "5", "--updates", "20", "--max-seconds", "1",
        "--warmup", "1", "--eval-every", "10", "--no-progress", "--no-report", "--repeats", "1"]
PUBLISHED = PROJECT_ROOT / "results" / "h200x2-2026-11-27"


def one_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def spec(n_units=5, **train) -> RunSpec:
    cfg = TrainConfig(n_units=n_units, eval_every=10, budget=Budget(updates=20, seconds=1.0, warmup=1), **train)
    return RunSpec(cfg, devices="cpu", strategy="single-device")


def row(n_units=5, status="error") -> RunRow:
    return RunRow.failure(spec(n_units), status, "x") if status != "ok" else replace(
        RunRow.failure(spec(n_units), "error", ""), status="ok")


def point(run_id, update=1) -> dict:
    return {"run_id": run_id, "update": update, "elapsed_s": 0.1, "train_loss": 0.5, "val_mse": 0.4}


def opened(folder, warnings=None) -> ResultStore:
    store = ResultStore(folder, warn=(warnings.append if warnings is not None else None))
    store.open_for_writing()
    return store


def sweep_cmd(out, *extra) -> list:
    return [sys.executable, "-m", "bench.cli", "sweep", *TINY, *map(str, extra), "--out", str(out)]


def wait_for(condition, timeout=120.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def rows_in(path) -> int:
    return max(0, len(Path(path).read_bytes().splitlines()) - 1) if Path(path).exists() else 0


def workers_of(folder) -> list:
    return [pid for session in Path(folder).glob(".work/*/session")
            for pid in procs.session_members(int(session.read_text()), mentioning=str(session.parent))]


def check_folder(out, expected_ids=None):
    """runs.csv and curves.csv are whole, each run once, no curve without its run."""
    runs = pd.read_csv(out / "runs.csv")
    assert not runs.duplicated(["run_id", "attempt"]).any()
    assert (runs[runs["status"] == "ok"].groupby("run_id").size() == 1).all()
    if expected_ids is not None:
        assert set(runs.loc[runs["status"] == "ok", "run_id"]) == set(expected_ids)
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["run_id"]) <= set(runs.loc[runs["status"] == "ok", "run_id"])
    assert not curves.duplicated(["run_id", "update"]).any()
    assert b"\x00" not in (out / "runs.csv").read_bytes()
    return runs


# -- the store: damaged files -------------------------------------------------
def test_damaged_rows_are_quarantined_never_counted(tmp_path):
    store = opened(tmp_path)
    a, b = row(5, "ok"), row(6)
    store.append_run(a, {"curves.csv": [point(a.run_id)]})
    store.append_run(b, {})
    store.close()
    good = (tmp_path / "runs.csv").read_bytes()
    line = good.splitlines()[1]
    garbage = [b"garbage", line + b",extra", b"\xff\xfe" + line[2:], line.replace(b"single", b"sin\x00le"),
               line.replace(b",ok,", b",okay,")]
    (tmp_path / "runs.csv").write_bytes(good + b"\r\n".join(garbage) + b"\r\n" + line[:30])  # + a torn line
    said = []
    tables = ResultStore(tmp_path, warn=said.append).load()  # the report: reads, warns, writes nothing
    assert sorted(tables["runs"]["run_id"]) == sorted([a.run_id, b.run_id])
    assert [w.split(":")[0] for w in said] == [f"runs.csv line {n}" for n in (4, 5, 6, 7, 8)]
    assert len(said) == 5 and "not UTF-8" in said[2] and "control character" in said[3]
    said.clear()
    store = opened(tmp_path, said)  # the sweep: quarantines
    store.close()
    assert (tmp_path / "runs.csv").read_bytes() == good
    assert (tmp_path / "runs.quarantine.csv").read_bytes() == b"\n".join(garbage + [line[:30]]) + b"\n"
    assert len(said) == 6 and all("moved to runs.quarantine.csv" in w for w in said)
    assert store.completed_ids() == {a.run_id}


@pytest.mark.parametrize("header,why", [
    ("run_id,impl,DEVICES", "unknown column 'DEVICES'"),
    ("impl,run_id", "not in this version's order"),
    ("run_id,impl,impl", "appears twice"),
    (",".join(RunRow.columns()) + ",velocity", "unknown column 'velocity'"),
])
def test_a_header_of_no_known_schema_is_refused_in_one_line(tmp_path, header, why):
    (tmp_path / "runs.csv").write_bytes(header.encode() + b"\r\n")
    for action in (lambda: opened(tmp_path), lambda: ResultStore(tmp_path).load()):
        with pytest.raises(ResultsError, match=why) as err:
            action()
        assert "\n" not in str(err.value) and "mv runs.csv" in str(err.value)
    assert (tmp_path / "runs.csv").read_bytes() == header.encode() + b"\r\n"  # untouched


def test_an_older_schema_is_read_and_migrated(tmp_path):
    # The published sweep predates the attempt column.
    for name in ("runs.csv", "curves.csv", "breakdown.csv"):
        shutil.copy(PUBLISHED / name, tmp_path / name)
    before = pd.read_csv(tmp_path / "runs.csv")
    assert "attempt" not in before
    tables = ResultStore(tmp_path).load()
    assert len(tables["runs"]) == len(before) == 240 and (tables["runs"]["attempt"] == 1).all()
    said = []
    opened(tmp_path, said).close()
    assert said == ["runs.csv: written by an older version; added the columns attempt"]
    after = pd.read_csv(tmp_path / "runs.csv")
    assert list(after.columns) == RunRow.columns() and (after["attempt"] == 1).all()
    pd.testing.assert_frame_equal(after[before.columns], before)
    assert rows_in(tmp_path / "curves.csv") == rows_in(PUBLISHED / "curves.csv")


# -- the store: one writer, a full disk, kill -9 mid-write ----------------------
def test_one_writer_per_folder_and_a_dead_holders_lock_is_free(tmp_path):
    first = opened(tmp_path)
    with pytest.raises(ResultsError, match=rf"in use by another sweep \(pid {os.getpid()} on .*, started 20"):
        opened(tmp_path)
    first.close()
    opened(tmp_path).close()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from bench.lock import FolderLock; "
                               f"FolderLock({str(tmp_path)!r}).acquire(); print(1, flush=True); time.sleep(60)"],
                              env=cli_env(), cwd=PROJECT_ROOT, stdout=subprocess.PIPE)
    holder.stdout.readline()
    with pytest.raises(ResultsError, match=f"pid {holder.pid} "):
        opened(tmp_path)
    holder.kill()
    holder.wait()
    opened(tmp_path).close()  # the kernel dropped the dead holder's lock


def test_a_full_disk_mid_append_loses_no_committed_row(tmp_path, monkeypatch):
    from bench import store as store_module

    store = opened(tmp_path)
    a, b = row(5, "ok"), row(6, "ok")
    store.append_run(a, {"curves.csv": [point(a.run_id)]})
    real = store_module.append_synced

    def half_then_full(path, data):
        real(path, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(store_module, "append_synced", half_then_full)
    with pytest.raises(OSError):
        store.append_run(b, {"curves.csv": [point(b.run_id)]})
    monkeypatch.undo()
    store.close()
    store = opened(tmp_path)  # next sweep: the torn curve line goes, a's rows stay
    assert store.completed_ids() == {a.run_id}
    store.append_run(b, {"curves.csv": [point(b.run_id)]})
    store.close()
    assert set(pd.read_csv(tmp_path / "curves.csv")["run_id"]) == {a.run_id, b.run_id}


def test_kill_9_during_an_atomic_rewrite_leaves_old_or_new(tmp_path):
    target = tmp_path / "env.json"
    code = ("import sys; from bench.fsio import atomic_write\n"
            "i = 0\n"
            "while True:\n"
            "    atomic_write(sys.argv[1], str(i % 2) * 2_000_000); i += 1\n")
    for delay in (0.05, 0.2, 0.4):
        proc = subprocess.Popen([sys.executable, "-c", code, str(target)], env=cli_env(), cwd=PROJECT_ROOT)
        time.sleep(delay)
        wait_for(target.exists, 20, "a first write")
        proc.kill()
        proc.wait()
        data = target.read_bytes()
        assert data in (b"0" * 2_000_000, b"1" * 2_000_000)


# -- the runner: what a failed run's row says ---------------------------------------
@pytest.mark.parametrize("script,status,message", [
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "killed", "worker killed by SIGKILL: no output"),
    ("import sys; print('x' * 74); print('There are not enough slots\\x00 available'); print();"
     "print('-' * 74); sys.exit(137)".replace("'x' * 74", "'-' * 74"), "killed",
     "worker killed by SIGKILL: There are not enough slots available"),
    ("import sys; print('boom\\x1b[31m red'); sys.exit(3)", "error", "worker exited with code 3: boom [31m red"),
])
def test_a_dead_workers_row_says_why_in_one_clean_line(tmp_path, monkeypatch, script, status, message):
    monkeypatch.setattr(runner, "worker_command", lambda *a: [sys.executable, "-c", script])
    ((_, got, _),) = list(runner.run_all([spec()], tmp_path))
    assert (got.status, got.message) == (status, message)


def test_a_nan_loss_is_diverged_and_a_failed_run_is_retried(tmp_path, monkeypatch):
    bad, good = spec(optimizer="sgd", lr=1e4), spec(n_units=6)
    store = opened(tmp_path)
    real = runner.worker_command
    marker = tmp_path / "failed-once"
    # The first worker dies of a signal; the retry gets the real one.
    monkeypatch.setattr(runner, "worker_command", lambda *a: [
        sys.executable, "-c", f"import os, pathlib, signal; pathlib.Path({str(marker)!r}).touch(); "
        "os.kill(os.getpid(), signal.SIGKILL)"] if not marker.exists() else real(*a))
    counts = runner.sweep([good, bad, good], store, progress=False, retries=1)
    store.close()
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(zip(runs["run_id"], runs["status"], runs["attempt"])) == [
        (good.run_id, "killed", 1), (bad.run_id, "diverged", 1), (good.run_id, "ok", 2)]
    assert "non-finite by update 10" in runs["message"][1]
    assert counts == {"skipped": 0, "ok": 1, "diverged": 1, "retried": 1}
    tables = ResultStore(tmp_path).load()
    assert dict(zip(tables["runs"]["run_id"], tables["runs"]["status"])) == {good.run_id: "ok", bad.run_id: "diverged"}
    assert len(tables["attempts"]) == 3
    store = opened(tmp_path)  # the next sweep tries the diverged run again, not the ok one
    monkeypatch.setattr(runner, "run_all", lambda pending, *a: iter(
        [(s, RunRow.failure(s, "diverged", "again"), {}) for s in pending]))
    assert runner.sweep([good, bad], store, progress=False)["skipped"] == 1
    store.close()
    assert list(pd.read_csv(tmp_path / "runs.csv")["attempt"]) == [1, 1, 2, 2]


# -- the command ------------------------------------------------------------------
BAD_INPUT = [
    (["--batchsize", "10,10"], "--batchsize lists '10' more than once"),
    (["--batchsize", "10,010"], "--batchsize lists a number more than once"),
    (["--devices", "cpu,cpu"], "--devices lists 'cpu' more than once"),
    (["--impl", "sinebench,sinebench"], "--impl lists 'sinebench' more than once"),
    (["--batchsize", "10,,100"], "--batchsize has an empty item"),
    (["--units", "5,"], "--units has an empty item"),
    (["--max-seconds", "nan"], "--max-seconds must be positive"),
    (["--max-seconds", "inf"], "--max-seconds must be a finite number"),
    (["--target-mse", "nan"], "--target-mse must be positive"),
    (["--seqlen", "800"], "does not fit in the 800 training points"),
    (["--repeats", "100000000"], "the sweep would have 100000000 runs"),
    (["--warmup", "-1"], "--warmup must be zero or more"),
]


@pytest.mark.parametrize("args,message", BAD_INPUT)
def test_bad_input_is_refused_before_anything_is_written(tmp_path, args, message):
    proc = subprocess.run(sweep_cmd(tmp_path / "res", *args), env=cli_env(), cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in one_line(proc)
    assert not (tmp_path / "res").exists()


def test_a_second_sweep_is_refused_and_the_first_ends_whole(tmp_path):
    out = tmp_path / "res"
    first = subprocess.Popen(sweep_cmd(out, "--units", "5,6,7"), env=cli_env(), cwd=PROJECT_ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (out / ".lock").exists() and (out / ".lock").stat().st_size > 0, what="the lock")
    second = subprocess.run(sweep_cmd(out, "--units", "5,6,7"), env=cli_env(), cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and f"in use by another sweep (pid {first.pid} " in one_line(second)
    report = sinebench("report", out, "-o", tmp_path / "during.html")  # a snapshot meanwhile
    assert report.returncode in (0, 2), report.stderr  # 2: no row committed yet
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    runs = check_folder(out)
    assert len(runs) == 3 and (runs["status"] == "ok").all()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_the_sweep_like_sigint(tmp_path, sig):
    out = tmp_path / "res"
    proc = subprocess.Popen(sweep_cmd(out, "--units", "5,6,7,8,9"), env=cli_env(), cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: rows_in(out / "runs.csv") >= 1, what="a committed row")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"stopped by {sig.name}; the runs committed so far are kept" in lines[0], err
    assert not (out / ".work").exists()
    committed = set(check_folder(out)["run_id"])
    assert 1 <= len(committed) < 5
    done = subprocess.run(sweep_cmd(out, "--units", "5,6,7,8,9"), env=cli_env(), cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(committed)} skipped" in done.stdout
    assert len(check_folder(out)) == 5


@pytest.mark.mpi
def test_a_stopped_mpi_rank_then_kill_9_of_the_sweep_leaves_nothing_running(tmp_path):
    out = tmp_path / "res"
    mpi = ["--strategy", "chainermn", "--devices", "cpu+cpu", "--updates", "100000", "--max-seconds", "60"]
    sweep = subprocess.Popen(sweep_cmd(out, *mpi), env=cli_env(), cwd=PROJECT_ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(workers_of(out)) >= 3, what="mpiexec and two ranks")  # prterun + 2 ranks
    time.sleep(3)  # in the training loop
    members = workers_of(out)
    ranks = [p for p in members if b"bench.worker" in Path(f"/proc/{p}/cmdline").read_bytes()
             and b"prterun" not in Path(f"/proc/{p}/cmdline").read_bytes() and b"mpiexec" not in
             Path(f"/proc/{p}/cmdline").read_bytes()]
    os.kill(max(ranks), signal.SIGSTOP)
    sweep.kill()
    sweep.wait()
    # The other rank's watchdog sees the sweep gone; the job ends, the stopped rank with it.
    wait_for(lambda: not workers_of(out), timeout=30, what="the orphaned MPI job to end")
    # Now orphans that cannot end themselves: every process of a job stopped.
    sweep = subprocess.Popen(sweep_cmd(out, *mpi), env=cli_env(), cwd=PROJECT_ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(workers_of(out)) >= 3, what="mpiexec and two ranks")
    for pid in workers_of(out):
        os.kill(pid, signal.SIGSTOP)
    sweep.kill()
    sweep.wait()
    stopped = workers_of(out)
    assert stopped
    done = subprocess.run(sweep_cmd(out, "--strategy", "chainermn", "--devices", "cpu+cpu"), env=cli_env(),
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"ended {len(stopped)} leftover worker process(es)" in done.stderr
    assert not any(Path(f"/proc/{p}").exists() for p in stopped)
    runs = check_folder(out)
    assert list(runs["status"]) == ["ok"]


def test_report_and_train_fail_in_one_line(tmp_path):
    out = tmp_path / "res"
    assert subprocess.run(sweep_cmd(out), env=cli_env(), cwd=PROJECT_ROOT, timeout=300).returncode == 0
    (tmp_path / "file").write_text("")
    for args, code, message in [
        (["report", out, "-o", ""], 2, "is a folder"),
        (["report", out, "-o", tmp_path], 2, "is a folder"),
        (["report", out, "-o", tmp_path / "file" / "r.html"], 2, "cannot write the report: File exists"),
        (["train", "--seqlen", "800", "--out", tmp_path / "t"], 2, "does not fit"),
        (["train", "--units", "3000000", "--updates", "1", "--out", tmp_path / "t"], 1, "out of memory"),
    ]:
        proc = sinebench(*args)
        assert proc.returncode == code and message in one_line(proc), (args, proc.stderr)
    from bench import envinfo

    for damage, why in [("", "unreadable"), ("[1, 2]", "holds a list"), ('{"cpu": {"model"', "unreadable"),
                        (b"\xff{}", "unreadable"), (None, "unreadable")]:
        (out / "env.json").unlink(missing_ok=True)
        if damage is None:  # a folder
            (out / "env.json").mkdir()
        else:
            (out / "env.json").write_bytes(damage.encode() if isinstance(damage, str) else damage)
        said = []
        assert envinfo.load(out, said.append) == {} and why in said[0]
    proc = sinebench("report", out)  # env.json is a folder: a warning, then the report
    assert proc.returncode == 0 and "env.json is unreadable" in one_line(proc)
    proc = subprocess.run(sweep_cmd(out), env=cli_env(), cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "env.json" in one_line(proc)


def test_a_full_disk_is_one_line_and_the_rerun_completes(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (the store-level ENOSPC case still runs)")
    try:
        out = disk / "res"
        proc = subprocess.run(sweep_cmd(out, "--units", "5,6,7", "--retries", "0"), env=cli_env(),
                              cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
        assert "Traceback" not in proc.stderr, proc.stderr
        if proc.returncode:
            assert proc.returncode == 1 and "No space left on device" in proc.stderr.splitlines()[-1]
        shutil.copytree(out, tmp_path / "moved", ignore=shutil.ignore_patterns(".lock", ".work"))
    finally:
        subprocess.run(["umount", "-l", str(disk)])
    out = tmp_path / "moved"
    proc = subprocess.run(sweep_cmd(out, "--units", "5,6,7"), env=cli_env(), cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    runs = check_folder(out)
    assert (runs.groupby("run_id")["status"].last() == "ok").all() and runs["run_id"].nunique() == 3
