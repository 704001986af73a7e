"""What the hardware can do at most, in FP32 FLOP/s: the bound no fitted
cost-model rate may exceed.

A GPU's peak is its SM count x FP32 lanes per SM x 2 (an FMA is two FLOPs)
x its boost clock, from the device's properties at sweep time. A folder
recorded before peaks were is given one from the card's name and SM count
(KNOWN_CLOCK_MHZ). The CPU's is an estimate: usable physical cores x clock
x FP32 FLOPs per cycle and core that its widest FMA unit allows (two FMA
ports assumed, as on server cores); it is an upper bound, not a promise.
Physical, because the hyperthreads of one core share its FMA units: on a
machine with two threads a core, counting logical cores doubled the peak.
Where the kernel does not say which logical cores share a physical one,
each counts as one.
"""
from pathlib import Path

CPU_SYS = Path("/sys/devices/system/cpu")

# FP32 lanes per SM by compute capability (CUDA C Programming Guide,
# "Arithmetic instructions" throughput table).
FP32_PER_SM = {(6, 0): 64, (6, 1): 128, (7, 0): 64, (7, 5): 64, (8, 0): 64, (8, 6): 128, (8, 7): 128,
               (8, 9): 128, (9, 0): 128, (10, 0): 128, (12, 0): 128}
# Boost clocks of cards seen in published sweeps, for folders without one.
KNOWN_CLOCK_MHZ = {"H200": ((9, 0), 1980), "H100": ((9, 0), 1980), "A100": ((8, 0), 1410)}


def gpu_peak_flops(sms: int, capability: tuple, clock_mhz: float) -> float | None:
    lanes = FP32_PER_SM.get(tuple(capability))
    if not (lanes and sms and clock_mhz):
        return None
    return sms * lanes * 2 * clock_mhz * 1e6


def gpu_peak_from_name(name: str, sms: int | None) -> float | None:
    """For a folder recorded before peaks: a known card's clock and capability."""
    for key, (capability, clock) in KNOWN_CLOCK_MHZ.items():
        if key in (name or "") and sms:
            return gpu_peak_flops(sms, capability, clock)
    return None


def cpu_flops_per_cycle(flags: set) -> int:
    """FP32 FLOPs per cycle and core: 2 FMA ports x lanes x 2."""
    if "avx512f" in flags:
        return 64
    if "fma" in flags and "avx2" in flags:
        return 32
    return 8


def cpu_info() -> tuple:
    """(flags, max MHz) of this machine's CPU, from Linux's files."""
    flags, mhz = set(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("cpu MHz") and mhz is None:
                mhz = float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    try:
        mhz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e3
    except (OSError, ValueError):
        pass
    return flags, mhz


def physical_cores(cpus, root: Path = CPU_SYS) -> int | None:
    """How many physical cores the logical CPUs ``cpus`` are on: their
    distinct sibling lists in sysfs (the logical CPUs of one core; a core id
    alone repeats across dies on some machines); None where the kernel
    does not say."""
    cores = set()
    for cpu in cpus:
        top = root / f"cpu{cpu}" / "topology"
        for name in ("core_cpus_list", "thread_siblings_list"):
            try:
                cores.add((top / name).read_text().strip())
                break
            except OSError:
                continue
        else:
            return None
    return len(cores) or None


def cpu_peak(cpus: list) -> dict:
    """The FP32 peak of the logical CPUs ``cpus``, with its basis and how
    many physical cores they are."""
    flags, mhz = cpu_info()
    per = cpu_flops_per_cycle(flags)
    physical = physical_cores(cpus)
    cores = physical or len(cpus)
    peak = cores * mhz * 1e6 * per if cores and mhz else None
    kind = "physical cores" if physical else "cores"
    return {"physical_cores": physical, "peak_fp32_flops": peak,
            "basis": f"{cores} {kind} x {mhz or 0:.0f} MHz x {per} FP32 FLOPs/cycle"}


def peaks(env: dict) -> dict:
    """Peak FLOP/s per device kind from an env.json record:
    {"cpu": per machine, "gpu": per GPU}; None where unknown."""
    cpu = (env.get("cpu") or {}).get("peak_fp32_flops")
    gpu = None
    for d in (env.get("gpu") or {}).get("devices", []):
        gpu = d.get("peak_fp32_flops") or gpu_peak_from_name(d.get("name", ""), d.get("multiprocessors"))
        if gpu:
            break
    return {"cpu": cpu, "gpu": gpu}
