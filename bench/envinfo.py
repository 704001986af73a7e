"""What is recorded about the machine beside every sweep (env.json)."""
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import peaks, pinning

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, cwd=PROJECT_ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _blas_threads():
    try:
        from threadpoolctl import threadpool_info

        return [{"api": p.get("internal_api"), "threads": p.get("num_threads")} for p in threadpool_info()]
    except ImportError:
        return os.environ.get("OMP_NUM_THREADS", "unset (library default)")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _gpus() -> dict:
    try:
        import cupy

        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no CuPy, no driver
        return {"count": 0, "note": f"{type(exc).__name__}: {exc}"[:200]}
    rt = cupy.cuda.runtime
    gpus = []
    for i in range(n):
        props = rt.getDeviceProperties(i)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        sms, capability, mhz = props["multiProcessorCount"], (props["major"], props["minor"]), _clock_mhz(props, i)
        gpus.append({"id": i, "name": name, "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
                     "multiprocessors": sms, "compute_capability": f"{capability[0]}.{capability[1]}",
                     "clock_mhz": mhz, "peak_fp32_flops": peaks.gpu_peak_flops(sms, capability, mhz)})
    peer = {f"{a}->{b}": bool(rt.deviceCanAccessPeer(a, b)) for a in range(n) for b in range(n) if a != b}
    return {
        "count": n, "devices": gpus, "peer_access": peer,
        "driver_version": rt.driverGetVersion(), "runtime_version": rt.runtimeGetVersion(),
        "cupy": cupy.__version__,
        "nccl": _nccl_version(),
        "topology": _run(["nvidia-smi", "topo", "-m"]) if shutil.which("nvidia-smi") else "",
        "driver": _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]).splitlines()[:1],
    }


def _clock_mhz(props: dict, device: int) -> float | None:
    """Boost clock: CUDA 13 dropped clockRate from the properties, but not
    from the device attributes (cudaDevAttrClockRate = 13, in kHz)."""
    if props.get("clockRate"):
        return props["clockRate"] / 1e3
    try:
        import cupy

        return cupy.cuda.runtime.deviceGetAttribute(13, device) / 1e3
    except Exception:
        return None


def _nccl_version():
    try:
        from cupy.cuda import nccl

        return nccl.get_version()
    except Exception:
        return None


def _mpi() -> str | None:
    # In a process of its own: loading Open MPI's library installs its own
    # SIGHUP handler over Python's, and the sweep must stop cleanly on SIGHUP.
    code = ("import mpi4py; mpi4py.rc.initialize = mpi4py.rc.finalize = False\n"
            "from mpi4py import MPI; print(MPI.Get_library_version())")
    version = _run([sys.executable, "-c", code]).replace("\x00", "").strip()
    return version.splitlines()[0] if version else None


def collect(argv: list | None = None) -> dict:
    import numpy

    import sinelstm  # noqa: F401
    import chainer

    cpus = pinning.usable_cpus()
    return {
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        # A wrapper script (scripts/gpu_run.sh) names itself here.
        "command": os.environ.get("SINEBENCH_COMMAND") or shlex.join(argv if argv is not None else sys.argv),
        "host": platform.node(),
        "os": platform.platform(),
        "cpu": {"model": _cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": len(cpus),
                "blas_threads": _blas_threads(), **peaks.cpu_peak(cpus)},
        "ram_gib": _ram_gib(),
        "gpu": _gpus(),
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__,
                     "chainer": chainer.__version__, "pandas": _version("pandas"),
                     "mpi4py": _version("mpi4py"), "mpi": _mpi()},
        "git_commit": _commit(),
        # Where the code that ran was imported from: an A/B of two trees
        # (scripts/gpu_gradparts.sh, TREE=) shows here which one ran.
        "source": str(Path(sinelstm.__file__).resolve().parent.parent),
    }


def _commit() -> str:
    # A tree copied to another machine has no .git, or a stale one: the
    # wrapper that copied it says which commit it is.
    said = os.environ.get("SINEBENCH_GIT_COMMIT")
    if said:
        return said
    commit = _run(["git", "rev-parse", "HEAD"])
    if len(commit) != 40:
        return "unknown"
    dirty = bool(_run(["git", "status", "--porcelain", "--untracked-files=no"]))
    return commit + ("-dirty" if dirty else "")


# The parts of env.json that its readers index into or compute with, by
# kind ({}: an object, [x]: a list of x, "*": every key, a tuple: those
# types): a file of valid JSON but another shape (a hand edit, another
# tool's) is damaged, and must not crash them.
_NUMBER = (int, float)
_RECORD = {"cpu": {}, "gpu": {"devices": [{}]}, "versions": {}, "control": {"host_gate_tolerance": _NUMBER},
           "uncontrolled": {}, "repeats": {}, "busbw": {}}
_SHAPE = {**_RECORD, "invocations": {"*": _RECORD}}


def _shape_problem(value, shape, where: str) -> str | None:
    kind = type(value).__name__
    kind = ("an " if kind[0] in "aeiou" else "a ") + kind
    if isinstance(shape, tuple):
        return None if isinstance(value, shape) and not isinstance(value, bool) else f"{where} is {kind}"
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"{where} is {kind}, not a list"
        return next(filter(None, (_shape_problem(v, shape[0], f"{where}[{i}]") for i, v in enumerate(value))), None)
    if not isinstance(value, dict):
        return f"{where or 'the file'} is {kind}, not an object"
    for key, sub in shape.items():
        for k, v in (value.items() if key == "*" else [(key, value.get(key))]):
            if v is not None and (problem := _shape_problem(v, sub, f"{where}.{k}" if where else k)):
                return problem
    return None


def read(folder) -> tuple:
    """(a folder's env.json, None), or ({}, what is wrong with it): not a
    regular file (a folder, a pipe that would block the reader), not
    UTF-8 JSON (a cut-off write), or not of the shape its readers expect.
    An absent file is ({}, None)."""
    path = Path(folder) / "env.json"
    if not path.exists():
        return {}, None
    if not path.is_file():
        return {}, "not a regular file"
    try:
        env = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return {}, f"unreadable: {type(exc).__name__}"
    problem = _shape_problem(env, _SHAPE, "")
    return ({}, problem) if problem else (env, None)


def load(folder, warn=lambda message: None) -> dict:
    """A folder's env.json (:func:`read`), or {} with a warning if it is
    damaged: the report then leaves the machine out."""
    env, problem = read(folder)
    if problem:
        warn(f"env.json is damaged ({problem}); the report leaves the machine out")
    return env
