"""The sweep's worker processes: shared between runs, replaced after a failure."""
import json
import subprocess
import sys

import pytest

from bench import runner
from bench.schema import RunSpec
from sinelstm.config import Budget, TrainConfig
from sinelstm.recipes import RECIPES
from tests.helpers import PROJECT_ROOT, cli_env


def spec(devices="cpu", n_units=5) -> RunSpec:
    cfg = TrainConfig(n_units=n_units, recipe=RECIPES["article"], eval_every=10,
                      budget=Budget(updates=20, seconds=2.0, warmup=1))
    return RunSpec(cfg, devices=devices, strategy="single-device")


@pytest.fixture
def launches(monkeypatch):
    """Counts the worker processes a sweep starts."""
    calls = []
    real = runner.worker_command

    def counting(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(runner, "worker_command", counting)
    return calls


@pytest.mark.parametrize("isolate,expected_launches", [(False, 2), (True, 3)])
def test_a_failed_run_costs_one_row_and_the_rest_go_on(tmp_path, launches, isolate, expected_launches):
    # GPU 7 exists on no test machine: that run fails inside its worker.
    specs = [spec(n_units=5), spec(devices="7"), spec(n_units=6)]
    got = list(runner.run_all(specs, tmp_path, isolate=isolate))
    assert [s for s, _, _ in got] == specs
    assert [row.status for _, row, _ in got] == ["ok", "unavailable", "ok"]
    assert "names GPU 7" in got[1][1].message
    assert [row.run_id for _, row, _ in got] == [s.run_id for s in specs]
    assert all(side["curves.csv"] for _, row, side in got if row.status == "ok")
    # Shared: the first worker runs #0 and dies on #1, a second one runs #2.
    assert len(launches) == expected_launches


def test_a_hung_run_times_out_and_the_next_gets_a_fresh_worker(tmp_path, launches, monkeypatch):
    monkeypatch.setattr(runner, "run_timeout", lambda spec: 0.2)  # less than Chainer's import
    got = list(runner.run_all([spec(n_units=5), spec(n_units=6)], tmp_path))
    assert [row.status for _, row, _ in got] == ["timeout", "timeout"]
    assert len(launches) == 2
    assert list(tmp_path.iterdir()) == []  # each worker's folder is cleaned up


def test_a_worker_whose_sweep_is_gone_runs_nothing(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    specs_path = tmp_path / "specs.json"
    specs_path.write_text(json.dumps([spec().to_dict()]))
    env = {**cli_env(), "SINEBENCH_RUNNER_PID": str(gone.pid)}
    proc = subprocess.run([sys.executable, "-m", "bench.worker", str(specs_path), str(tmp_path)], env=env,
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr  # bench.worker.ORPHANED
    assert not (tmp_path / spec().run_id).exists()
