"""What a sweep could not hold still, recorded in env.json before and after
it: the CPU's frequency scaling (governor, driver, turbo), and how busy the
machine was with other work (load average, the busiest other processes).

A reader of a noisy report can then tell "the machine was busy" from "the
configuration is noisy". Reads only ``/proc`` and ``/sys``; a machine that
hides them gets what could be read, never an error.
"""
import os
import time
from pathlib import Path

CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")
SAMPLE_S = 0.5  # how long to watch other processes' CPU time
BUSY = 0.10  # share of one core above which another process counts as busy
TOP = 5
# Three 1x H200 machines, each measured from its first minute: the CPU
# probe's fast state took 4-12 % longer for the first 2-4 minutes than after
# (results/h200x1-span2-2026-11-29, results/h200x1-boot-2026-11-29); a sweep
# started sooner says so.
FRESH_S = 300.0
FRESH_SLOWER = "freshly started machines ran 4-12 % slower in their first 2-4 minutes"
FRESH_UP = f"up {FRESH_S / 60:g} minutes"  # how the wait (--settle) and the warnings name FRESH_S


def _read(path) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def frequency_scaling() -> dict:
    """cpu0's scaling governor, driver and limits, and whether turbo is on;
    {} where the kernel does not expose them (most VMs)."""
    out = {}
    for key, name in (("governor", "scaling_governor"), ("driver", "scaling_driver"),
                      ("min_khz", "scaling_min_freq"), ("max_khz", "scaling_max_freq")):
        value = _read(CPUFREQ / name)
        if value is not None:
            out[key] = int(value) if value.isdigit() else value
    no_turbo = _read("/sys/devices/system/cpu/intel_pstate/no_turbo")
    boost = _read("/sys/devices/system/cpu/cpufreq/boost")
    if no_turbo is not None:
        out["turbo"] = no_turbo == "0"
    elif boost is not None:
        out["turbo"] = boost == "1"
    return out


def _cpu_ticks() -> dict:
    """pid -> (command, user + system ticks) of every readable process."""
    ticks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read(entry / "stat")
        if not stat or ")" not in stat:
            continue
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2:].split()
        try:
            ticks[int(entry.name)] = (comm, int(fields[11]) + int(fields[12]))
        except (IndexError, ValueError):
            continue
    return ticks


def _own_tree() -> set:
    """This process and its ancestors (the shell that started the sweep)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        stat = _read(f"/proc/{pid}/stat") or ""
        try:
            pid = int(stat[stat.rfind(")") + 2:].split()[1])
        except (IndexError, ValueError):
            break
    return pids


def busy_processes(seconds: float = SAMPLE_S) -> list:
    """Other processes that used more than :data:`BUSY` of a core while
    watched, busiest first: [{"pid", "command", "cpu"}] (cpu in cores)."""
    if not Path("/proc/self/stat").exists():
        return []
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    before = _cpu_ticks()
    time.sleep(seconds)
    after = _cpu_ticks()
    mine = _own_tree()
    busy = []
    for pid, (comm, t) in after.items():
        if pid in mine or pid not in before:
            continue
        share = (t - before[pid][1]) / hz / seconds
        if share > BUSY:
            busy.append({"pid": pid, "command": comm, "cpu": round(share, 2)})
    return sorted(busy, key=lambda p: -p["cpu"])[:TOP]


def snapshot() -> dict:
    """The load now: load averages and the busiest other processes."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadavg_1_5_15min": load,
            "busy_processes": busy_processes(), "uptime_s": uptime_s()}


def uptime_s() -> float | None:
    """Seconds since the machine booted (None where /proc does not say).
    Freshly started lent machines ran slower in their first minutes
    (:data:`FRESH_S`)."""
    text = _read("/proc/uptime")
    try:
        return round(float(text.split()[0]), 1) if text else None
    except (ValueError, IndexError):
        return None


def settle_wait_s(uptime: float | None) -> float:
    """How long until the machine has been up :data:`FRESH_S` (0 where it
    has, or where its uptime is unknown)."""
    return max(0.0, FRESH_S - uptime) if uptime is not None else 0.0


def fresh(snapshot: dict | None) -> float | None:
    """The machine's uptime, if it had booted less than :data:`FRESH_S`
    before ``snapshot`` was taken; else None."""
    up = (snapshot or {}).get("uptime_s")
    return up if isinstance(up, (int, float)) and up < FRESH_S else None


def uncontrolled(before: dict | None = None, after: dict | None = None) -> dict:
    """env.json's record of what was not held still."""
    out = {"frequency_scaling": frequency_scaling() or "not exposed by this machine"}
    if before is not None:
        out["load_before"] = before
    if after is not None:
        out["load_after"] = after
    return out
