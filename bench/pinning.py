"""Holding a run still: which cores its process may use, and how many threads
its BLAS and OpenMP start.

Where the host CPU bounds an update (small batches on a GPU, any CPU run),
the scheduler moving the process between cores or sockets, or a BLAS that
starts one spinning thread per core of a 2-socket machine, moves the time by
more than the differences the report is about (issue 14). So, unless the
sweep says ``--no-pin``:

* each run's process is pinned (``os.sched_setaffinity``) to ``threads``
  cores: for a GPU, cores of that GPU's NUMA node where the kernel says which
  (``/sys/bus/pci/devices/<bus id>/local_cpulist``), else the first cores of
  the first NUMA node; the ranks of one MPI job take disjoint cores where
  there are enough;
* BLAS and OpenMP run ``threads`` threads: the environment variables the
  libraries read at start (set by the sweep for the worker) and
  ``threadpoolctl`` for the BLAS actually loaded;
* ``threads`` defaults to the usable cores of one NUMA node (one socket:
  memory stays local, no cross-socket spinning), shared out among the
  ranks of an MPI job.

The sweep runs one run at a time, so a core set never has two runs on it.
Nothing here may fail a run: a machine that hides its topology, or refuses
an affinity, gets the run unpinned, and the row says so (``cpus`` empty).
The worker records the threads its BLAS reported and the cores it ran on in
every row (``threads``, ``cpus``).
"""
import os
from dataclasses import dataclass
from pathlib import Path

from sinelstm import gcpause, hostspeed

NODES = Path("/sys/devices/system/node")
PCI = Path("/sys/bus/pci/devices")
# What the libraries read when they load: OpenMP, OpenBLAS, MKL, BLIS, Apple's.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
ENV_PIN, ENV_THREADS, ENV_AUTO = "SINEBENCH_PIN", "SINEBENCH_THREADS", "SINEBENCH_THREADS_AUTO"
HASH_SEED = "0"  # PYTHONHASHSEED of every worker: dict and set order the same in every run


@dataclass(frozen=True)
class Control:
    """What the sweep was asked to hold still."""

    pin: bool = True
    threads: int | None = None  # None: one NUMA node's cores when pinned, else the libraries' default
    host_gate: float | None = hostspeed.DEFAULT_TOLERANCE  # sinelstm.hostspeed; None: off
    probe_file: str | None = None  # the gate's shared reference (the results folder's), set by the sweep
    machine_probe_file: str | None = None  # and the machine's, kept across sweeps (bench.hostmemory)
    warmup_rounds: int = 0  # runs of every configuration before the counted ones, not kept
    settle: bool = False  # before the first run, wait until the machine has been up hostload.FRESH_S

    def resolved_threads(self) -> int | None:
        if self.threads is not None:
            return self.threads
        return len(node_order(usable_cpus())[0]) if self.pin else None


def parse_cpulist(text: str) -> list:
    """'0-3,8,10-11' -> [0, 1, 2, 3, 8, 10, 11]; [] for anything else."""
    cpus = []
    try:
        for part in text.strip().split(","):
            if not part:
                continue
            lo, _, hi = part.partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        return []
    return cpus


def format_cpulist(cpus) -> str:
    """[0, 1, 2, 3, 8] -> '0-3,8'."""
    out, cpus = [], sorted(set(cpus))
    i = 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(out)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def usable_cpus() -> list:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def node_order(usable: list) -> list:
    """The usable cores grouped by NUMA node, nodes in order; one group when
    the kernel does not say."""
    allowed = set(usable)
    groups = []
    for node in sorted(NODES.glob("node[0-9]*"), key=lambda p: int(p.name[4:])):
        cpus = [c for c in parse_cpulist(_read(node / "cpulist")) if c in allowed]
        if cpus:
            groups.append(cpus)
    seen = {c for g in groups for c in g}
    rest = [c for c in usable if c not in seen]
    return groups + [rest] if rest or not groups else groups


def gpu_local_cpus(gpu_id: int) -> list:
    """The cores of the GPU's NUMA node, or [] when unknown."""
    try:
        import cupy

        bus = str(cupy.cuda.Device(gpu_id).pci_bus_id).lower()
    except Exception:  # no CuPy, no driver, an old CuPy
        return []
    return parse_cpulist(_read(PCI / bus / "local_cpulist"))


def candidates(gpu_id: int | None, usable: list) -> list:
    """Usable cores in order of preference: the GPU's node first, then by node."""
    ordered = [c for g in node_order(usable) for c in g]
    local = set(gpu_local_cpus(gpu_id)) if gpu_id is not None else set()
    return [c for c in ordered if c in local] + [c for c in ordered if c not in local]


def core_set(gpus: list, rank: int, ranks: int, threads: int, usable: list) -> list:
    """The cores of rank ``rank`` of ``ranks``: ``threads`` of its candidates,
    disjoint from lower ranks' where enough are free. ``gpus`` holds each
    rank's GPU id (None for a CPU); every rank computes every lower rank's
    set the same way, so they agree without talking."""
    taken = set()
    mine = []
    for k in range(rank + 1):
        pref = candidates(gpus[k] if k < len(gpus) else None, usable)
        free = [c for c in pref if c not in taken]
        mine = (free + [c for c in pref if c in taken])[:max(1, threads)]
        taken.update(mine)
    return mine


def hold_still(device_set, rank: int, ranks: int) -> tuple:
    """Pin this process and set its BLAS threads as the sweep asked (through
    the environment); returns (threads, cpus) for the row."""
    threads = int(os.environ[ENV_THREADS]) if os.environ.get(ENV_THREADS, "").isdigit() else None
    if threads and ranks > 1 and os.environ.get(ENV_AUTO) == "1":
        threads = max(1, threads // ranks)  # one node's cores shared by the job's ranks, not each rank's
    cpus = ""
    if os.environ.get(ENV_PIN) == "1" and threads:
        usable = launcher_cpus() if ranks > 1 else _ORIGINAL
        gpus = device_set.gpu_ids if device_set.is_gpu else [None] * device_set.n_devices
        if ranks == 1:
            gpus = gpus[:1]
        chosen = core_set(gpus, rank, ranks, threads, usable)
        try:
            os.sched_setaffinity(0, chosen)
            cpus = format_cpulist(chosen)
        except (OSError, AttributeError):
            cpus = ""
    return blas_threads(threads), cpus


def launcher_cpus() -> list:
    """The cores an MPI rank may choose from: its launcher's (mpiexec binds
    each rank to one core by default, which is not the machine's choice)."""
    try:
        parent = sorted(os.sched_getaffinity(os.getppid()))
    except (OSError, AttributeError):
        parent = []
    return parent if len(parent) > len(_ORIGINAL) else _ORIGINAL


def blas_threads(threads: int | None) -> int | None:
    """Limit the loaded BLAS/OpenMP pools to ``threads`` (when given) and
    return what they report (the most of them); None when none is loaded."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return threads
    if threads:
        threadpool_limits(limits=threads)
    counts = [p.get("num_threads") for p in threadpool_info() if p.get("num_threads")]
    return max(counts) if counts else threads


def worker_env(env: dict, control: Control) -> dict:
    """The sweep's environment for a worker: the hash seed, and the thread
    counts the libraries read when they load."""
    env = dict(env)
    env["PYTHONHASHSEED"] = HASH_SEED
    threads = control.resolved_threads()
    env[ENV_PIN] = "1" if control.pin else "0"
    env[ENV_AUTO] = "1" if control.threads is None else "0"
    for var, path in ((hostspeed.REFERENCE_ENV, control.probe_file),
                      (hostspeed.MACHINE_ENV, control.machine_probe_file)):
        if path:
            env[var] = path
        else:  # not this sweep's: a reference the caller's environment names would judge its runs
            env.pop(var, None)
    if threads:
        env[ENV_THREADS] = str(threads)
        for var in THREAD_VARS:
            env[var] = str(threads)
    return env


def describe(control: Control) -> dict:
    """What env.json records of the control asked for."""
    threads = control.resolved_threads()
    return {"pinned": control.pin, "threads": threads if threads else "library default",
            "python_hash_seed": HASH_SEED,
            "gc": gcpause.POLICY,
            "host_gate": (hostspeed.POLICY.format(tol=control.host_gate, cap=hostspeed.MAX_WAIT_S)
                          if control.host_gate is not None else "off: updates timed whatever the host's speed"),
            "host_gate_tolerance": control.host_gate,
            "host_gate_machine_file": control.machine_probe_file,
            "runs_at_a_time": 1,
            "warmup_rounds": (f"{control.warmup_rounds}: each configuration ran that often first, results not kept"
                              if control.warmup_rounds else "0"),
            "settle": control.settle,
            "core_sets": ("each run's process pinned to 'threads' cores (a GPU's NUMA node where known; "
                          "disjoint per MPI rank where enough cores)" if control.pin else "not pinned")}


_ORIGINAL = usable_cpus()  # before any run of this worker pinned it
