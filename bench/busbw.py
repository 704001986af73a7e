"""NCCL all-reduce latency and bus bandwidth, once per GPU count and
transport a sweep uses, recorded in env.json beside the runs they explain.

    mpiexec -n N python -m bench.busbw DEVICES OUT_JSON   # one rank per GPU of DEVICES, e.g. 0+1

Each rank drives its GPU of the device set (the k-th id is the GPU of each
node's k-th rank, as for training) and all-reduces float32 buffers with
CuPy's NCCL binding on a non-blocking stream of its own: a few warm-up calls
(NCCL sets up its connections on the first), then repeats of a batch of
calls bracketed by CUDA events, the stream synchronized before the events
are read, every repeat starting after an MPI barrier and counted at the
slowest rank's time (a collective ends when its last rank does). The median
over repeats is stated. Small messages (4 B to 8 KiB) give the latency,
large ones (64 and 256 MiB) the bandwidth, as nccl-tests define them:

    algbw = bytes / time        busbw = algbw * 2 (n - 1) / n

busbw is what each link carries in a ring all-reduce, so it is comparable
across GPU counts and with the link's own speed. The sweep runs this module
with ``NCCL_DEBUG=INFO`` and keeps the paths NCCL reports ("P2P/CUMEM",
"SHM/direct", "NET/Socket"), which show that a transport's switches took
effect (:mod:`bench.transports`).
"""
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

SMALL = (4, 64, 1024, 8192)  # bytes
LARGE = (64 << 20, 256 << 20)
WARMUP = 5
REPEATS = 11
CALLS = {"small": 20, "large": 2}  # all-reduces per timed repeat
TIMEOUT_S = 120  # a hung NCCL set-up costs the sweep this much, not more
PATH = re.compile(r" via (\S+)")


def bus_bandwidth(nbytes: int, seconds: float, n: int) -> float:
    """nccl-tests' bus bandwidth of an all-reduce, bytes per second."""
    return nbytes / seconds * 2 * (n - 1) / n


def summarize(n: int, timings: dict) -> dict:
    """From {bytes: median seconds per all-reduce}: latency (the smallest
    message's time), bus bandwidth (the largest message's), and each size."""
    sizes = [{"bytes": b, "us": t * 1e6, "algbw_GBps": b / t / 1e9, "busbw_GBps": bus_bandwidth(b, t, n) / 1e9}
             for b, t in sorted(timings.items())]
    small, large = min(timings), max(timings)
    return {"n_ranks": n, "latency_us": timings[small] * 1e6, "latency_bytes": small,
            "busbw_GBps": bus_bandwidth(large, timings[large], n) / 1e9, "busbw_bytes": large, "sizes": sizes}


def nccl_paths(log: str) -> list:
    """The distinct paths NCCL's INFO lines say its channels use."""
    return sorted(set(PATH.findall(log)))


# -- one rank --------------------------------------------------------------------
def _time_allreduce(comm, nccl_comm, stream, nbytes: int, calls: int) -> float:
    """Median seconds of one all-reduce of ``nbytes``, at the slowest rank."""
    import cupy
    from cupy.cuda import nccl
    from mpi4py import MPI

    buf = cupy.ones(max(1, nbytes // 4), dtype=cupy.float32)

    def call():
        nccl_comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, stream.ptr)

    for _ in range(WARMUP):
        call()
    stream.synchronize()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    for _ in range(REPEATS):
        comm.Barrier()
        start.record(stream)
        for _ in range(calls):
            call()
        end.record(stream)
        end.synchronize()
        mine = cupy.cuda.get_elapsed_time(start, end) / 1e3 / calls
        times.append(comm.allreduce(mine, op=MPI.MAX))
    return statistics.median(times)


def measure_rank(devices: str) -> dict | None:
    """This rank's part; rank 0 returns the summary, the others None."""
    import cupy
    from cupy.cuda import nccl
    from mpi4py import MPI

    from sinelstm.devices import parse_device_set

    comm = MPI.COMM_WORLD
    intra = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
    ds = parse_device_set(devices)
    if comm.size != ds.n_devices:
        raise RuntimeError(f"device set {devices!r} needs {ds.n_devices} MPI ranks, got {comm.size}")
    cupy.cuda.Device(ds.gpu_ids[intra]).use()
    uid = comm.bcast(nccl.get_unique_id() if comm.rank == 0 else None, root=0)
    nccl_comm = nccl.NcclCommunicator(comm.size, uid, comm.rank)
    stream = cupy.cuda.Stream(non_blocking=True)
    timings = {b: _time_allreduce(comm, nccl_comm, stream, b, CALLS["small"]) for b in SMALL}
    timings.update({b: _time_allreduce(comm, nccl_comm, stream, b, CALLS["large"]) for b in LARGE})
    return summarize(comm.size, timings) if comm.rank == 0 else None


def main(argv=None):
    devices, out = (sys.argv[1:] if argv is None else argv)[:2]
    result = measure_rank(devices)
    if result is not None:
        Path(out).write_text(json.dumps(result))


# -- the sweep's side --------------------------------------------------------------
def plan(specs) -> list:
    """(device set, transport) to measure: the first set of each GPU count
    and transport among the runs that talk through NCCL."""
    from bench import transports

    chosen = {}
    for s in specs:
        if transports.applies(s.devices, s.strategy):
            chosen.setdefault((s.n_devices, s.transport), (s.devices, s.transport))
    return list(chosen.values())


def measure(devices: str, transport: str, work: Path) -> dict:
    """One MPI job of this module in ``transport``'s environment."""
    from bench import procs
    from bench.launch import PROJECT_ROOT, MpiMissing, last_words, python_command, worker_env
    from sinelstm.devices import parse_device_set

    out = work / f"busbw-{devices.replace('+', '_')}-{transport}.json"
    env = {**worker_env(transport=transport), "NCCL_DEBUG": "INFO"}
    row = {"devices": devices, "transport": transport}
    try:
        cmd = python_command("bench.busbw", devices, out, ranks=parse_device_set(devices, check=False).n_devices)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=PROJECT_ROOT, start_new_session=True)
    except (MpiMissing, OSError) as exc:
        return {**row, "status": "failed", "why": str(exc)}
    try:
        log, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        procs.kill_session(proc.pid, mentioning=str(out))  # mpiexec and every rank, which hold the GPUs
        proc.kill()
        proc.communicate()
        return {**row, "status": "failed", "why": f"no result within {TIMEOUT_S} s"}
    try:
        result = json.loads(out.read_text())
    except (OSError, ValueError):
        return {**row, "status": "failed", "why": f"exit {proc.returncode}: {last_words(log)[:300]}"}
    finally:
        out.unlink(missing_ok=True)
    return {**row, "status": "ok", "nccl_paths": nccl_paths(log), **result}


def for_sweep(specs, say=print) -> dict:
    """What env.json records for a sweep of ``specs``: each (GPU count,
    transport)'s measurement, or why there is none."""
    import tempfile

    pairs = plan(specs)
    if not pairs:
        return {"status": "skipped", "why": "no run of this sweep talks through NCCL (chainermn on 2 GPUs or more)"}
    results = []
    with tempfile.TemporaryDirectory(prefix="sinebench-busbw-") as work:
        for devices, transport in pairs:
            res = measure(devices, transport, Path(work))
            if res["status"] != "ok":
                say(f"NCCL bandwidth on {devices} over {transport}: {res['why']}")
            results.append(res)
    return {"status": "measured", "results": results}


if __name__ == "__main__":
    main()
