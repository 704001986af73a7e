"""Runs benchmark runs one after another in this process (or as one MPI
rank of it) and writes each one's results into a folder for the sweep to
collect:

    python -m bench.worker SPECS_JSON OUT_DIR

SPECS_JSON holds a list of runs; run ``r`` writes ``OUT_DIR/<r.run_id>/``:
``side.json`` (curve, closed-loop and breakdown rows), then ``result.json``
(the runs.csv row), which marks the run done. A failure is written as
``error-rank<k>.json`` and ends the process, so that the next run starts in a
clean one; under MPI the failing rank aborts the job, so that the other ranks
do not hang in a collective. A worker whose sweep is gone (killed) exits at
once, from a watchdog thread: nobody would commit its run, and a rank left
spinning in a collective would hold a core forever.
"""
import json
import os
import sys
import threading
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path

import sinelstm  # noqa: F401
from sinelstm.devices import DeviceSpecError, parse_device_set
from sinelstm.exactness import gradient_error
from sinelstm.flops import count_flops
from sinelstm.quality import closed_loop_fast
from sinelstm.names import REACHED, is_torch, one_process_per_device
from sinelstm.precision import PrecisionError
from sinelstm.profile import profile_phases
from sinelstm.strategy import make_strategy
from sinelstm.timing import summarize_ms
from sinelstm.hostspeed import HostSlow
from sinelstm.train import Diverged, train

from bench import samples, transports
from bench.fsio import atomic_write
from bench.pinning import hold_still
from bench.schema import ClosedLoopPoint, CurvePoint, PhaseTime, RunRow, RunSpec


def gpu_name(device_set) -> str:
    if not device_set.is_gpu:
        return ""
    import cupy

    name = cupy.cuda.runtime.getDeviceProperties(device_set.gpu_ids[0])["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


WATCH_S = 1.0  # how often a worker checks that its sweep is alive
ORPHANED = 3  # exit code of a worker whose sweep is gone


def classify(exc: BaseException) -> str:
    if isinstance(exc, Diverged):
        return "diverged"
    if isinstance(exc, HostSlow):
        return "slow-host"
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return "oom"
    if isinstance(exc, (DeviceSpecError, ImportError, PrecisionError, transports.TransportError)):
        return "unavailable"
    return "error"


def local_rank() -> int:
    """This process's rank among the ranks of its host (0 outside MPI)."""
    for var in ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def run(spec: RunSpec, out: Path, held_to: dict | None = None):
    """Train ``spec`` and write its results to ``out``; ``held_to`` gets the
    threads and cores the run was held to as soon as they are known, so
    that a run that fails after it (slow-host, above all) still says them."""
    # An MPI rank checks only the GPU it uses (DeviceSet.rank_device): the
    # set's other GPUs may belong to other hosts.
    device_set = parse_device_set(spec.devices, check=not one_process_per_device(spec.strategy))
    transports.check(spec.transport)  # the precision: train() checks it
    ranks = spec.n_devices if one_process_per_device(spec.strategy) else 1
    held = hold_still(device_set, local_rank() if ranks > 1 else 0, ranks)
    if held_to is not None:
        held_to.update(threads=held[0], cpus=held[1])
    strategy = make_strategy(spec.strategy, device_set, spec.train.impl)
    result = train(spec.train, strategy)
    breakdown = profile_phases(spec.train, strategy) if spec.profile else None
    exact = first_gradient_error(spec, device_set, strategy)
    if strategy.reports:
        write_results(spec, device_set, result, breakdown, out, held, hosts=strategy.hosts, grad_error=exact)


# Above this, an update in float64 takes seconds on the CPU: the eager path
# did 9.3e11 FLOPs in 5.3 s in float32 on a 64-core host (batch 4096 /
# n_units 1024), and a 2-core machine is ten times slower.
CPU_EXACTNESS_FLOPS = 1e11


def first_gradient_error(spec: RunSpec, device_set, strategy) -> float | None:
    """How exact the run's arithmetic is (sinelstm.exactness), once per
    configuration (repeat 0) and on one device: the same for every repeat,
    and a second updater's memory beside a finished run's is affordable
    there. Not for the PyTorch reference (its own model and update), nor on
    the CPU above CPU_EXACTNESS_FLOPS per update, where an update in float64
    would take many seconds of the run's time limit."""
    if spec.repeat or device_set.n_devices > 1 or is_torch(spec.train.impl):
        return None
    cfg = spec.train
    if not device_set.is_gpu and count_flops(cfg.n_units, cfg.batchsize, cfg.seqlen, cfg.impl) > CPU_EXACTNESS_FLOPS:
        return None
    try:
        return gradient_error(cfg, strategy, with_eager=False).impl
    except Exception as exc:  # noqa: BLE001 - a side measurement (e.g. out of memory beside the run's own)
        print(f"sinebench: {spec.run_id}: first gradient not compared with float64 "
              f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", file=sys.stderr)
        return None


def _six(value) -> float:
    return float(f"{float(value):.6g}")


def write_results(spec: RunSpec, device_set, result, breakdown, out: Path, held: tuple = (None, ""),
                  hosts: str | None = None, grad_error: float | None = None):
    """``held``: the threads and cores the run was held to; ``hosts``: the
    hosts of the run's ranks ('a+b'), for its ``host`` column."""
    stats = summarize_ms(result.step_ms)
    loop = closed_loop_fast(result.model, spec.train.data)
    row = RunRow.ok(
        spec, updates=result.updates, ms_per_update_median=stats["median"], ms_per_update_p25=stats["p25"],
        ms_per_update_p75=stats["p75"], samples_per_s=spec.train.batchsize / (stats["median"] / 1e3),
        wall_s=result.wall_s, train_loss=result.train_loss, val_mse=result.val_mse,
        closed_loop_rmse_50=loop.rmse_50, closed_loop_rmse_all=loop.rmse_all,
        time_to_target_s=result.time_to_target_s, gpu_name=gpu_name(device_set),
        quality_status=result.quality_status, time_to_quality_s=result.time_to_quality_s,
        updates_to_quality=result.updates_to_quality, eval_s=result.eval_s, path=result.path,
        host_wait_s=result.host_wait_s, host_slow=result.host_slow, host_probe_ms=result.host_probe_ms,
        host_probe_slowest_ms=result.host_probe_slowest_ms, grad_error=grad_error,
    )
    row = replace(row, threads=held[0], cpus=held[1])
    if hosts:
        row = replace(row, host=hosts)
    rid = spec.run_id
    side = {"curves.csv": [CurvePoint(rid, **point) for point in result.curve]}
    if spec.repeat == 0 or result.quality_status == REACHED:  # the evidence a model generates the sine
        # float32 values: six significant digits keep all they hold worth plotting, at half the size.
        side["closed_loop.csv"] = [ClosedLoopPoint(rid, t, _six(y), _six(p))
                                   for t, (y, p) in enumerate(zip(loop.truth, loop.prediction))]
    if breakdown is not None:
        side["breakdown.csv"] = [PhaseTime(rid, k, v) for k, v in breakdown.items()]
    # Side rows and samples first, the row last: result.json is what marks
    # the run done, and it appears whole (the sweep polls for it).
    atomic_write(out / samples.WORKER_FILE, samples.encode(result.step_ms))
    atomic_write(out / "side.json", json.dumps({k: [asdict(r) for r in rows] for k, rows in side.items()}))
    atomic_write(out / "result.json", json.dumps(asdict(row)))


def runner_alive() -> bool:
    """False once the sweep that started this worker is gone (killed)."""
    pid = os.environ.get("SINEBENCH_RUNNER_PID")
    if pid:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
    return True


def orphaned():
    """Exit at once, with code 3: no atexit handlers (MPI_Finalize would wait
    for the other ranks), and not 0, so that ``mpiexec`` ends the whole job
    (after a rank's clean exit it would wait for the others, stopped ones too)."""
    os._exit(ORPHANED)


def watch_runner():
    """Exit this process as soon as the sweep is gone, whatever the main
    thread is doing (NumPy and MPI calls release the GIL)."""
    def watch():
        while runner_alive():
            time.sleep(WATCH_S)
        orphaned()

    threading.Thread(target=watch, name="runner-watchdog", daemon=True).start()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not runner_alive():
        orphaned()
    watch_runner()
    specs = [RunSpec.from_dict(d) for d in json.loads(Path(argv[0]).read_text())]
    batch = Path(argv[1])
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")))
    for spec in specs:
        out = batch / spec.run_id
        out.mkdir(parents=True, exist_ok=True)
        run_or_fail(spec, out, rank)


def run_or_fail(spec: RunSpec, out: Path, rank: int):
    mpi = one_process_per_device(spec.strategy)
    held = {}
    try:
        run(spec, out, held)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a row
        traceback.print_exc()
        status = classify(exc)
        # The traceback's last line, the exception's type and message; where
        # the status already says what happened (slow-host, diverged: see
        # classify), the message alone.
        message = (str(exc) if isinstance(exc, (HostSlow, Diverged)) and str(exc) else
                   traceback.format_exception_only(exc)[-1].strip())
        row = replace(RunRow.failure(spec, status, f"rank {rank}: {message}" if mpi else message), **held)
        try:
            atomic_write(out / f"error-rank{rank}.json", json.dumps(asdict(row)))
        except OSError:  # a full disk: the sweep reads the log instead
            traceback.print_exc()
        if mpi:
            try:
                from mpi4py import MPI

                MPI.COMM_WORLD.Abort(1)
            except ImportError:
                pass
        sys.exit(1)


if __name__ == "__main__":
    main()
