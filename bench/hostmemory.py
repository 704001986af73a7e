"""Where the machine remembers how fast its host runs, from one sweep to the
next: the host-speed gate's fastest probes (:mod:`sinelstm.hostspeed`),
kept per machine and boot beside each results folder's own.

A sweep's gate learns full speed from the probes it sees. A sweep that
starts in a slow phase learns the slow speed as full speed and times at it:
three sweeps in a row on one 2x H200 host each began with 30-60 s at 1.7x
the probe's later time, and the first of them called its CPU figure stable
at 2.57 ms, 75-83 % above what the next two reported
(results/h200x2-repro2-2026-11-28). The machine's memory lets every sweep
after the first on a machine judge its start against what that machine has
already shown it can do.

It is kept under the user's cache folder (``SINEBENCH_CACHE_DIR``, else
``$XDG_CACHE_HOME/sinebench``, else ``~/.cache/sinebench``), in a folder per
host name and boot, so a reboot, another machine sharing the home folder,
or a new virtual machine of the same name starts afresh; and per
pinning and thread count, as those change what a probe reads. A probe in it
judges runs for an hour (:data:`sinelstm.hostspeed.MACHINE_MAX_AGE_S`), then
ages out; deleting the folder forgets it at once. Nothing here may fail a
sweep: where the folder cannot be made, the gate keeps to the results
folder's reference alone.
"""
import os
import platform
from pathlib import Path

from sinelstm import hostspeed

CACHE_ENV = "SINEBENCH_CACHE_DIR"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def cache_dir() -> Path | None:
    """Absolute (the workers run from the project's folder); None where the
    user has no home to find it under."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).absolute()
    try:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except RuntimeError:  # no HOME and no passwd entry
        return None
    return (Path(base) / "sinebench").absolute()


def machine_key() -> str:
    """The host name and this boot's id (the boot time where the kernel has
    no id), so a reference never outlives the machine state it measured."""
    try:
        boot = BOOT_ID.read_text().strip()[:8]
    except OSError:
        boot = _boot_time()
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in platform.node() or "host")
    return f"{safe}-{boot}"


def _boot_time() -> str:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return line.split()[1]
    except OSError:
        pass
    return "unknown-boot"


def reference_file(pinned: bool, threads: int | None) -> str | None:
    """The machine's file for a sweep pinned (or not) with ``threads``
    threads; None where it cannot be made."""
    base = cache_dir()
    if base is None:
        return None
    folder = base / machine_key()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    how = f"{'pinned' if pinned else 'unpinned'}-threads{threads or 'default'}"
    return str(folder / hostspeed.REFERENCE_FILE.replace(".txt", f".{how}.txt"))


def known(path: str | None) -> dict | None:
    """What the machine's file already holds, per kind of run: its fastest
    probes in ms, for env.json ({}: nothing yet; None: no memory kept)."""
    if not path:
        return None
    base = Path(path)
    stem = base.name[:-len(".txt")]
    out = {}
    for f in sorted(base.parent.glob(f"{stem}.*.txt")):
        values = hostspeed.read_ms(str(f), hostspeed.MACHINE_MAX_AGE_S)
        if values:
            out[f.name[len(stem) + 1:-len(".txt")]] = values
    return out
