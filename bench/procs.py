"""Finding and ending a worker's processes, MPI ranks included.

Every worker starts in a session of its own (``start_new_session``), so its
session id is its pid. Open MPI puts each rank in a process group of its own
but leaves it in that session: ending the session's members ends the job,
where ``killpg`` would leave the ranks running. Linux only (``/proc``).
"""
import os
import signal
from pathlib import Path


def session_members(sid: int, mentioning: str | None = None) -> list:
    """Pids of the processes in session ``sid`` (whose command line contains
    ``mentioning``, if given: a guard against a reused pid)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # Fields after the command name (which may hold spaces): state ppid pgrp session ...
            if int(stat.rsplit(")", 1)[1].split()[3]) != sid:
                continue
            if mentioning is not None and mentioning not in (entry / "cmdline").read_bytes().decode(errors="replace"):
                continue
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        pids.append(int(entry.name))
    return pids


def kill_session(sid: int, mentioning: str | None = None) -> int:
    """SIGKILL (which also ends a stopped process) every member; returns how many."""
    pids = session_members(sid, mentioning)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return len(pids)


def signal_name(returncode: int | None) -> str | None:
    """The signal that ended a worker: a negative return code from Python's
    subprocess, or 128+n from a shell or ``mpiexec``."""
    if returncode is None:
        return None
    number = -returncode if returncode < 0 else returncode - 128 if 128 < returncode < 128 + 65 else None
    if number is None:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
