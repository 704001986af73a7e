"""The sweep: runs go to worker subprocesses, with a timeout each, one row each.

Consecutive runs that launch the same way (in this process, or as an MPI job
of n ranks) share one worker, because starting Python, Chainer, CuPy and a
CUDA context costs seconds per process, more than a short run itself. A crash,
an out-of-memory error or a hang costs one row, not the sweep: the worker is
killed and the runs after it go on in a fresh one. ``isolate=True`` gives every
run a process of its own. Rows are committed as each run ends, and a rerun
skips what is recorded.
"""
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from sinelstm.names import STRATEGIES

from bench.launch import PROJECT_ROOT, python_command, worker_env
from bench.schema import RunRow, RunSpec
from bench.store import ResultStore

POLL_S = 0.1
EXIT_GRACE_S = 30.0  # for a worker to exit after its last row (MPI teardown)


def launcher(spec: RunSpec) -> int:
    """How a run's process starts: 0 for plain Python, else its MPI rank count."""
    return spec.n_devices if spec.strategy == STRATEGIES[1] else 0


def worker_command(ranks: int, specs_path: Path, out: Path) -> list:
    return python_command("bench.worker", specs_path, out, ranks=ranks)


def run_timeout(spec: RunSpec) -> float:
    return spec.train.budget.timeout_s()


def _last_line(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()] if path.exists() else []
    return lines[-1] if lines else "no output"


def _collect(out: Path) -> tuple | None:
    """(row, side rows) once the worker has marked the run done, else None."""
    result = out / "result.json"
    if not result.exists():
        return None
    side = out / "side.json"
    return RunRow(**json.loads(result.read_text())), json.loads(side.read_text()) if side.exists() else {}


def _failure(spec: RunSpec, out: Path, code: int | None, log: Path) -> tuple:
    errors = sorted(out.glob("error-rank*.json"))
    if errors:
        return RunRow(**json.loads(errors[0].read_text())), {}
    return RunRow.failure(spec, "error", f"worker exited with code {code}: {_last_line(log)}"), {}


def _kill(proc: subprocess.Popen):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_in_one_process(specs: list, work: Path):
    """Start one worker for ``specs`` (all of one launcher) and yield
    (spec, row, side) as each run ends. Stops early after a failure: the
    caller starts a fresh worker for the runs left."""
    batch = work / uuid.uuid4().hex[:12]  # a killed sweep's worker never shares a folder
    batch.mkdir(parents=True)
    specs_path = batch / "specs.json"
    specs_path.write_text(json.dumps([s.to_dict() for s in specs]))
    log = batch / "log.txt"
    with open(log, "w") as log_file:
        proc = subprocess.Popen(worker_command(launcher(specs[0]), specs_path, batch), stdout=log_file,
                                stderr=subprocess.STDOUT, env=worker_env(), cwd=PROJECT_ROOT,
                                start_new_session=True)
        try:
            for spec in specs:
                out, deadline = batch / spec.run_id, time.monotonic() + run_timeout(spec)
                got = _collect(out)
                while got is None and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(POLL_S)
                    got = _collect(out)
                got = got or _collect(out)  # written just before the worker exited
                if got is not None:
                    yield spec, *got
                    continue
                if proc.poll() is None:  # still running past the deadline: hung
                    _kill(proc)
                    yield spec, RunRow.failure(spec, "timeout", f"no result after {run_timeout(spec):.0f} s"), {}
                else:
                    yield spec, *_failure(spec, out, proc.returncode, log)
                return
            try:
                proc.wait(timeout=EXIT_GRACE_S)
            except subprocess.TimeoutExpired:  # every row is in; a hang at exit costs nothing
                pass
        finally:
            _kill(proc)
            shutil.rmtree(batch, ignore_errors=True)


def run_all(specs: list, work: Path, isolate: bool = False):
    """Yield (spec, row, side) for every spec, in order."""
    groups = ([[s] for s in specs] if isolate else
              [list(g) for _, g in itertools.groupby(specs, key=launcher)])
    for group in groups:
        while group:
            ended = 0
            for result in run_in_one_process(group, work):
                ended += 1
                yield result
            group = group[ended:]


def sweep(specs: list, store: ResultStore, progress: bool = True, isolate: bool = False,
          invocation: str = "") -> dict:
    """Run every spec not yet recorded in ``store``; returns status counts.
    Each row names ``invocation`` (see :mod:`bench.invocations`)."""
    store.open_for_writing()
    done = store.completed_ids()
    pending = [s for s in specs if s.run_id not in done]
    work = store.folder / ".work"
    counts = {"skipped": len(specs) - len(pending)}
    # No bar at all when nothing is left: an empty "0run" bar says nothing.
    with tqdm(total=len(pending), unit="run", disable=not (progress and pending), dynamic_ncols=True) as bar:
        bar.set_postfix_str(pending[0].label if pending else "")
        for i, (spec, row, side) in enumerate(run_all(pending, work, isolate), 1):
            store.append_run(replace(row, invocation=invocation), side)
            counts[row.status] = counts.get(row.status, 0) + 1
            if row.status != "ok":
                bar.write(f"{spec.label}: {row.status}: {row.message}")
            bar.set_postfix_str(pending[i].label if i < len(pending) else "", refresh=False)
            bar.update()
    shutil.rmtree(work, ignore_errors=True)
    return counts
