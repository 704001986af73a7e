"""Fault injection into the store: damaged lines and headers, an older
schema, a second writer, a full disk and kill -9 mid-write. In this process,
no Chainer; the command-level cases are in test_faults.py."""
import errno
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from bench.schema import RunRow, RunSpec
from bench.store import ResultsError, ResultStore
from sinelstm.config import Budget, TrainConfig
from tests.helpers import PROJECT_ROOT, cli_env

PUBLISHED = PROJECT_ROOT / "results" / "h200x2-2026-11-27"


def spec(n_units=5, **train) -> RunSpec:
    cfg = TrainConfig(n_units=n_units, eval_every=10, budget=Budget(updates=20, seconds=1.0, warmup=1), **train)
    return RunSpec(cfg, devices="cpu", strategy="single-device")


def row(n_units=5, status="error") -> RunRow:
    return RunRow.failure(spec(n_units), status, "x") if status != "ok" else replace(
        RunRow.failure(spec(n_units), "error", ""), status="ok")


def point(run_id, update=1) -> dict:
    return {"run_id": run_id, "update": update, "elapsed_s": 0.1, "train_loss": 0.5, "val_mse": 0.4, "train_s": 0.05,
            "rmse_all": 0.7}


def opened(folder, warnings=None) -> ResultStore:
    store = ResultStore(folder, warn=(warnings.append if warnings is not None else None))
    store.open_for_writing()
    return store


def rows_in(path) -> int:
    return max(0, len(Path(path).read_bytes().splitlines()) - 1) if Path(path).exists() else 0



def wait_for(condition, timeout=120.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


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
    # The published sweep predates the attempt, recipe and quality columns.
    for name in ("runs.csv", "curves.csv", "breakdown.csv"):
        shutil.copy(PUBLISHED / name, tmp_path / name)
    before = pd.read_csv(tmp_path / "runs.csv")
    assert "attempt" not in before
    tables = ResultStore(tmp_path).load()
    assert len(tables["runs"]) == len(before) == 240 and (tables["runs"]["attempt"] == 1).all()
    said = []
    opened(tmp_path, said).close()
    added = [c for c in RunRow.columns() if c not in before.columns]
    assert said == ["runs.csv: written by an older version; added the columns " + ", ".join(added),
                    "curves.csv: written by an older version; added the columns train_s, rmse_all"]
    after = pd.read_csv(tmp_path / "runs.csv")
    assert list(after.columns) == RunRow.columns() and (after["attempt"] == 1).all()
    assert (after["recipe"] == "article").all() and (after["seed"] == 0).all()
    assert after["quality_status"].isna().all()
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
