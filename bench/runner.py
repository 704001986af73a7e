"""The sweep: runs go to worker subprocesses, with a timeout each, one row each.

Consecutive runs that launch the same way (in this process, or as an MPI job
of n ranks) share one worker, because starting Python, Chainer, CuPy and a
CUDA context costs seconds per process, more than a short run itself. A crash,
an out-of-memory error or a hang costs one row, not the sweep: the worker is
killed and the runs after it go on in a fresh one. ``isolate=True`` gives every
run a process of its own. Rows are committed as each run ends, and a rerun
skips what finished: a failed run is tried again, by every sweep until one
attempt is ok, and within a sweep ``retries`` more times if its failure may
pass (:data:`bench.schema.TRANSIENT`), after the other runs.

Each worker's folder under ``.work/`` names its session (the worker's pid):
a sweep that starts after one that was killed ends that sweep's orphaned
workers and MPI ranks before it measures anything (:mod:`bench.procs`).
"""
import contextlib
import itertools
import json
import shutil
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from sinelstm.names import one_process_per_device

from bench import interrupt, pinning, procs, samples
from bench.grid import why_not
from bench.launch import PROJECT_ROOT, python_command, worker_env
from bench.schema import TRANSIENT, RunRow, RunSpec, clean_text
from bench.store import ResultStore

POLL_S = 0.1
EXIT_GRACE_S = 30.0  # for a worker to exit after its last row (MPI teardown)
SESSION = "session"  # file in a worker's folder: its session id


def launcher(spec: RunSpec) -> int:
    """How a run's process starts: 0 for plain Python, else its MPI rank count."""
    return spec.n_devices if one_process_per_device(spec.strategy) else 0


def launch_key(spec: RunSpec) -> tuple:
    """What a worker process is fixed to when it starts: its launcher, and
    the environment of its precision and NCCL transport (CuPy and NCCL read
    theirs once per process). Runs share a worker only if these agree."""
    return launcher(spec), spec.train.precision, spec.transport


def worker_command(ranks: int, specs_path: Path, out: Path) -> list:
    return python_command("bench.worker", specs_path, out, ranks=ranks)


def run_timeout(spec: RunSpec) -> float:
    return spec.train.budget.timeout_s()


def log_message(path: Path) -> str:
    """What a dead worker's output says: the first paragraph of an MPI
    banner (the banner's last lines are dashes or boilerplate), else the
    last line (a traceback's ends with the exception)."""
    try:
        lines = [clean_text(ln) for ln in path.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    rule = [i for i, ln in enumerate(lines) if ln.startswith("-----")]
    if rule:
        paragraph = list(itertools.takewhile(bool, itertools.dropwhile(lambda ln: not ln, lines[rule[0] + 1:])))
        if paragraph and not paragraph[0].startswith("-----"):
            return " ".join(paragraph)
    text = [ln for ln in lines if ln and not ln.startswith("-----")]
    return text[-1] if text else ""


def _read_row(path: Path) -> RunRow | None:
    try:
        return RunRow(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):  # absent, or cut short by a full disk
        return None


def _collect(out: Path) -> tuple | None:
    """(row, side rows) once the worker has marked the run done, else None;
    the run's per-update samples ride in ``side`` under :data:`bench.samples.WORKER_FILE`."""
    row = _read_row(out / "result.json")
    if row is None:
        return None
    try:
        side = json.loads((out / "side.json").read_text())
    except (OSError, ValueError):
        return None
    try:
        side[samples.WORKER_FILE] = samples.decode((out / samples.WORKER_FILE).read_bytes())
    except (OSError, ValueError, EOFError):
        pass  # a worker of an older tree, or a damaged file: the row stands without
    return row, side


def _failure(spec: RunSpec, out: Path, code: int | None, log: Path) -> tuple:
    # The rank that failed first wrote its own message; later ones only saw it go.
    for path in sorted(out.glob("error-rank*.json"), key=lambda p: p.stat().st_mtime):
        row = _read_row(path)
        if row is not None:
            return row, {}
    said = log_message(log) or "no output"
    sig = procs.signal_name(code)
    if sig:
        return RunRow.failure(spec, "killed", f"worker killed by {sig}: {said}"), {}
    return RunRow.failure(spec, "error", f"worker exited with code {code}: {said}"), {}


def _kill(proc: subprocess.Popen, batch: Path):
    procs.kill_session(proc.pid, mentioning=str(batch))
    proc.wait()


def end_orphans(work: Path) -> int:
    """End the workers of a dead sweep on this folder and clear their
    folders; returns how many processes were ended."""
    ended = 0
    for batch in work.glob("*/"):
        try:
            ended += procs.kill_session(int((batch / SESSION).read_text()), mentioning=str(batch))
        except (OSError, ValueError):
            pass
        shutil.rmtree(batch, ignore_errors=True)
    return ended


def run_in_one_process(specs: list, work: Path, control=None):
    """Start one worker for ``specs`` (all of one :func:`launch_key`) and yield
    (spec, row, side) as each run ends. Stops early after a failure: the
    caller starts a fresh worker for the runs left."""
    batch = work / uuid.uuid4().hex[:12]  # a killed sweep's worker never shares a folder
    batch.mkdir(parents=True)
    specs_path = batch / "specs.json"
    specs_path.write_text(json.dumps([s.to_dict() for s in specs]))
    log = batch / "log.txt"
    proc = None
    try:
        with open(log, "w") as log_file:
            proc = subprocess.Popen(worker_command(launcher(specs[0]), specs_path, batch), stdout=log_file,
                                    stderr=subprocess.STDOUT, env=_env(specs[0], control), cwd=PROJECT_ROOT,
                                    start_new_session=True)
        (batch / SESSION).write_text(str(proc.pid))
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
                _kill(proc, batch)
                yield spec, RunRow.failure(spec, "timeout", f"no result after {run_timeout(spec):.0f} s"), {}
            else:
                yield spec, *_failure(spec, out, proc.returncode, log)
            return
        try:
            proc.wait(timeout=EXIT_GRACE_S)
        except subprocess.TimeoutExpired:  # every row is in; a hang at exit costs nothing
            pass
    finally:
        if proc is not None:
            _kill(proc, batch)
        shutil.rmtree(batch, ignore_errors=True)


def _env(spec: RunSpec, control) -> dict:
    """The worker's environment: its precision and transport, and how it
    holds itself still (``control``, a :class:`bench.pinning.Control`)."""
    env = worker_env(*launch_key(spec)[1:])
    return pinning.worker_env(env, control) if control is not None else env


def run_all(specs: list, work: Path, isolate: bool = False, control=None):
    """Yield (spec, row, side) for every spec, in order; a run that cannot
    run at all (:func:`bench.grid.why_not`) gets its row without a worker."""
    runnable = []
    for spec in specs:
        why = why_not(spec)
        if why:
            yield spec, RunRow.failure(spec, "unavailable", why), {}
        else:
            runnable.append(spec)
    groups = ([[s] for s in runnable] if isolate else
              [list(g) for _, g in itertools.groupby(runnable, key=launch_key)])
    for group in groups:
        while group:
            ended = 0
            for result in run_in_one_process(group, work, control):
                ended += 1
                yield result
            group = group[ended:]


@contextlib.contextmanager
def worker_folder(folder: Path, say=print):
    """The results folder's ``.work/`` for the runs of one sweep (or of its
    warm-up): a dead sweep's workers are ended first, and the folder is
    cleared after, whatever happens."""
    work = folder / ".work"
    ended = end_orphans(work)
    if ended:
        say(f"ended {ended} leftover worker process(es) of an earlier sweep on {folder}")
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sweep(specs: list, store: ResultStore, progress: bool = True, isolate: bool = False, retries: int = 1,
          say=print, invocation: str = "", control=None, decide=None, transient=TRANSIENT) -> dict:
    """Run every spec without an ok row in ``store`` (opened for writing);
    returns status counts of the last attempt of each run run now. Each row
    names ``invocation`` (see :mod:`bench.invocations`). ``control`` (a
    :class:`bench.pinning.Control`) sets the workers' environment;
    ``decide(row, samples) -> row`` fills a row's stop_reason before it is
    committed (:mod:`bench.adaptive`). ``transient``: the statuses tried
    again within this sweep."""
    done, attempts = store.completed_ids(), store.attempts()
    unique = list({s.run_id: s for s in specs}.values())
    pending = [s for s in unique if s.run_id not in done]
    counts, last, committed = {"skipped": len(unique) - len(pending)}, {}, 0
    with worker_folder(store.folder, say) as work:
        # No bar at all when nothing is left: an empty "0run" bar says nothing.
        with tqdm(total=len(pending), unit="run", disable=not (progress and pending), dynamic_ncols=True) as bar:
            for round_ in range(retries + 1):
                if round_:
                    pending = [s for s in pending if last[s.run_id] in transient]
                    bar.total += len(pending)
                for spec, row, side in run_all(pending, work, isolate, control):
                    attempts[spec.run_id] += 1
                    row = replace(row, attempt=attempts[spec.run_id], invocation=invocation)
                    ms = side.pop(samples.WORKER_FILE, None)
                    row = decide(row, ms) if decide is not None else row
                    with interrupt.deferred():
                        store.append_run(row, side, ms)
                    last[spec.run_id] = row.status
                    committed += 1
                    if row.status != "ok":
                        bar.write(f"{spec.label}: {row.status} (attempt {row.attempt}): {row.message}")
                    bar.set_postfix_str(spec.label, refresh=False)
                    bar.update()
    for status in last.values():
        counts[status] = counts.get(status, 0) + 1
    counts["retried"] = committed - len(last)
    return counts
