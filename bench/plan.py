"""What a sweep is about to do, said before it does it: the device sets it
found (and why no GPU is among them), and for ``--dry-run`` every run with
an estimate of the time they take. A new user learns at the first line that
CuPy is missing, not from the machine table at the bottom of the report."""
import math

from sinelstm.hostspeed import MAX_WAIT_S

from bench.runner import launch_key
from bench.schema import RunSpec

# Beyond a run's timed budget: evaluations, the closed loop, the worker's
# share of starting Python and Chainer (measured on a laptop's CPU).
RUN_OVERHEAD_S = 2.0
WORKER_START_S = 6.0


def gpu_absence() -> str | None:
    """Why no GPU can run here, in words; None when one can."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (uv sync --extra cuda13, or cuda12)"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy without a driver or a device
        return f"CuPy finds no CUDA driver or device ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
    return None if n else "CuPy sees no CUDA device"


def devices_line(specs: list, asked: bool) -> str:
    """The sweep's first line."""
    line = f"device sets: {', '.join(specs)}"
    if any(s != "cpu" and not s.startswith("cpu+") for s in specs):
        return line
    why = gpu_absence()
    if asked:
        return line + " (as asked with --devices)" + (f"; no GPU here: {why}" if why else "")
    return line + (f"; no GPU: {why}" if why else "")


def run_seconds(spec: RunSpec) -> float:
    """An upper estimate of one run: its timed budget (the profile run adds
    half of it on the first repeat) plus evaluation and closed loop. A run
    that stops at the quality target takes less."""
    budget = spec.train.budget
    timed = budget.seconds if budget.seconds else math.nan
    return timed * (1 + (budget.PROFILE_SHARE if spec.profile else 0)) + RUN_OVERHEAD_S


def estimate_s(pending: list) -> float:
    from bench.grid import why_not

    pending = [s for s in pending if not why_not(s)]
    workers = sum(1 for i, s in enumerate(pending) if i == 0 or launch_key(s) != launch_key(pending[i - 1]))
    return sum(run_seconds(s) for s in pending) + workers * WORKER_START_S


def fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unknown (no --max-seconds: runs end after their updates)"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def dry_run(specs: list, done: set) -> list:
    """The lines ``sweep --dry-run`` prints: every run, then the totals."""
    from bench.grid import why_not

    pending = [s for s in specs if s.run_id not in done]
    lines = [f"{'done' if s.run_id in done else 'to run':<7} {s.label}"
             + (f"  (cannot run: {why}; recorded as unavailable)" if (why := why_not(s)) else "") for s in specs]
    gated = any(s.train.budget.host_gate is not None for s in pending)
    lines.append(f"{len(pending)} runs to do, {len(specs) - len(pending)} already recorded; estimated at most "
                 f"{fmt_duration(estimate_s(pending))} (runs that reach the quality target stop earlier"
                 + (f"; a run may wait up to {MAX_WAIT_S:g} s more while the host is slow, --host-gate)" if gated
                    else ")"))
    return lines
