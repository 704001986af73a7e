"""The report's uncertainty: each configuration's repeats (medians and stored
per-update samples), the interval of every speedup the report shows, and the
configurations whose noise is larger than the differences they are used for.

Pure functions of the results tables and the samples folder, like
:mod:`bench.facts`; the sentences are :mod:`bench.trust_sentences`. Any
comparison is (base, other) at one size, each side a (devices, strategy,
impl) of one window length, so a later axis (a precision, a transport)
plugs in as one more pair.
"""
from dataclasses import dataclass

import pandas as pd

from bench import intervals, samples as per_update
from bench.analysis import KEYS, counted, gate_tolerance, job_probe
from bench.facts import SINEBENCH, Sweep, multi_sets, one_gpu
from bench.schema import SLOW_HOST
from sinelstm import hostspeed
from sinelstm.devices import parse_device_set
from sinelstm.names import ARTICLE_IMPL, SINGLE_DEVICE, device_label, one_process_per_device

SIDE = ["impl", "seqlen", "devices", "strategy"]


@dataclass(frozen=True)
class Evidence:
    """Every finished configuration's repeats, keyed by SIDE + (batchsize, n_units)."""

    reps: dict
    runs_with_samples: int
    runs: int

    @property
    def coverage(self) -> str:
        """'all', 'some' or 'none' of the finished runs have stored samples."""
        if self.runs and self.runs_with_samples == self.runs:
            return "all"
        return "some" if self.runs_with_samples else "none"

    def of(self, side: tuple, size: tuple) -> intervals.Repeats | None:
        return self.reps.get((*side, *size))


def evidence(ok: pd.DataFrame, folder=None) -> Evidence:
    """``ok``: finished runs at one precision, transport and scaling
    (``Sweep.base_ok``, so that a tf32 or socket run never pools with the
    fp32 one of the same device set); ``folder``: where their samples are
    (None: none)."""
    got = per_update.read_all(folder, list(ok["run_id"])) if folder is not None and len(ok) else {}
    reps = {}
    for key, g in ok.groupby(SIDE + ["batchsize", "n_units"]) if len(ok) else ():
        reps[key] = intervals.Repeats.of(g["ms_per_update_median"].tolist(), [got.get(r) for r in g["run_id"]])
    return Evidence(reps, len(got), len(ok))


def name(side: tuple, size: tuple) -> str:
    return "|".join(map(str, (*side, *size)))


def comparison(ev: Evidence, base: tuple, other: tuple, size: tuple) -> intervals.Comparison | None:
    """``other`` against ``base`` at ``size``; None where one did not run."""
    a, b = ev.of(base, size), ev.of(other, size)
    if a is None or b is None:
        return None
    return intervals.compare(a, b, f"{name(base, size)}>{name(other, size)}")


def comparisons(ev: Evidence, main: pd.DataFrame, base: tuple, other: tuple) -> dict:
    """(batchsize, n_units) -> Comparison at every size both ran; ``base`` and
    ``other`` are (devices, strategy) of ``main``'s implementation and window."""
    if main.empty:
        return {}
    impl, seqlen = main["impl"].iloc[0], int(main["seqlen"].iloc[0])
    sizes = sorted(set(zip(main["batchsize"], main["n_units"])))
    out = {}
    for size in sizes:
        c = comparison(ev, (impl, seqlen, *base), (impl, seqlen, *other), size)
        if c is not None:
            out[size] = c
    return out


def unclear_grid(comps: dict, grid: pd.DataFrame) -> pd.DataFrame:
    """True where the speedup's interval includes 1.0 (no clear winner), in
    ``grid``'s shape (a speedup map's); False where clear or unknown."""
    mask = pd.DataFrame(False, index=grid.index, columns=grid.columns)
    for (b, n), c in comps.items():
        if b in mask.index and n in mask.columns and c.clear is False:
            mask.loc[b, n] = True
    return mask


@dataclass(frozen=True)
class Tally:
    """How the cells of one comparison came out."""

    other_wins: int  # clearly faster
    base_wins: int
    unclear: int  # interval includes 1.0, or the test did not reject
    unknown: int  # no interval (one repeat without samples)

    @property
    def judged(self) -> int:
        return self.other_wins + self.base_wins + self.unclear


def tally(comps: dict) -> Tally:
    clear = [c for c in comps.values() if c.clear]
    return Tally(sum(c.speedup > 1 for c in clear), sum(c.speedup < 1 for c in clear),
                 sum(c.clear is False for c in comps.values()), sum(c.clear is None for c in comps.values()))


def gpu_vs_cpu(ev: Evidence, main: pd.DataFrame, gpu: str) -> dict:
    return comparisons(ev, main, ("cpu", SINGLE_DEVICE), (gpu, SINGLE_DEVICE))


def multi_vs_first(ev: Evidence, main: pd.DataFrame) -> dict:
    """(devices, strategy) -> comparisons of each multi-device set against its first device alone."""
    out = {}
    for devices, strategy in multi_sets(main):
        first = parse_device_set(devices, check=False).first_spec
        out[(devices, strategy)] = comparisons(ev, main, (first, SINGLE_DEVICE), (devices, strategy))
    return out


def impl_vs_impl(ev: Evidence, agg: pd.DataFrame, base: str = ARTICLE_IMPL, other: str = SINEBENCH) -> dict:
    """(devices, strategy, seqlen, batchsize, n_units) -> ``other``'s speedup
    over ``base`` at every configuration both implementations ran."""
    out = {}
    sides = {(d, s, int(t)) for d, s, t in zip(agg["devices"], agg["strategy"], agg["seqlen"])}
    sizes = {(int(b), int(n)) for b, n in zip(agg["batchsize"], agg["n_units"])}
    for d, s, t in sorted(sides):
        for size in sorted(sizes):
            c = comparison(ev, (base, t, d, s), (other, t, d, s), size)
            if c is not None:
                out[(d, s, t, *size)] = c
    return out


@dataclass(frozen=True)
class Noisy:
    """A configuration whose repeats disagree by more than a difference it is used for."""

    label: str
    batch: int
    units: int
    ms_min: float
    ms_max: float
    spread: float  # slowest over fastest repeat, minus 1
    against: str  # the comparison it is used in
    difference: float  # |speedup - 1| of that comparison


def _spreads(main: pd.DataFrame) -> dict:
    if main.empty or "ms_min" not in main:
        return {}
    rep = main[main["repeats"] > 1]
    return {(d, s, int(b), int(n)): (float(lo), float(hi))
            for d, s, b, n, lo, hi in zip(rep["devices"], rep["strategy"], rep["batchsize"], rep["n_units"],
                                          rep["ms_min"], rep["ms_max"])}


def comparison_pairs(main: pd.DataFrame) -> list:
    """The (base, other) pairs of (devices, strategy) the speedup maps show."""
    gpu = one_gpu(main)
    pairs = [(("cpu", SINGLE_DEVICE), (gpu, SINGLE_DEVICE))] if gpu else []
    return pairs + [((parse_device_set(d, check=False).first_spec, SINGLE_DEVICE), (d, s))
                    for d, s in multi_sets(main)]


def noisy(sw: Sweep, only=None) -> list:
    """Every configuration of the summary's implementation whose repeat
    spread exceeds the smallest difference it is compared on (a speedup
    map's cell), largest excess first; one entry per configuration.
    ``only``: a set of (devices, strategy, batchsize, n_units), the
    configurations to judge (those a sweep just ran; what they are compared
    with may be older)."""
    spreads = _spreads(sw.main)
    if only is not None:
        spreads = {k: v for k, v in spreads.items() if k in only}
    ms = sw.main.groupby(["devices", "strategy", "batchsize", "n_units"])["ms"].median()
    worst = {}
    for base, other in comparison_pairs(sw.main):
        against = f"{device_label(*other)} vs {device_label(*base)}"
        for (d, s, b, n), (lo, hi) in spreads.items():
            if (d, s) not in (base, other) or (*base, b, n) not in ms.index or (*other, b, n) not in ms.index:
                continue
            diff = abs(float(ms[(*base, b, n)]) / float(ms[(*other, b, n)]) - 1)
            entry = Noisy(device_label(d, s), b, n, lo, hi, hi / lo - 1, against, diff)
            old = worst.get((d, s, b, n))
            if entry.spread > diff and (old is None or diff < old.difference):
                worst[(d, s, b, n)] = entry
    return sorted(worst.values(), key=lambda e: -(e.spread - e.difference))


def max_spread(sw: Sweep) -> float | None:
    spreads = _spreads(sw.main)
    return max((hi / lo - 1 for lo, hi in spreads.values()), default=None)


def stop_reasons(runs: pd.DataFrame) -> pd.Series:
    """How the configurations' repeats ended (the last row of each configuration
    with a stop_reason): counts of fixed, stable, cap, failed."""
    if "stop_reason" not in runs or runs.empty:
        return pd.Series(dtype=int)
    decided = runs[runs["stop_reason"].fillna("").astype(str) != ""]
    keys = [k for k in KEYS if k in decided]
    if decided.empty:
        return decided["stop_reason"].value_counts()
    return decided.groupby(keys)["stop_reason"].last().value_counts()


@dataclass(frozen=True)
class HostWaits:
    runs: int  # finished runs the gate checked
    slow_runs: int  # of which it found the host slow at least once
    wait_s: float
    max_wait_s: float
    capped: int  # finished runs that waited as long as a run may (timed on: folders before slow-host)
    cap: float
    stopped: int = 0  # runs the host kept slow past the cap: stopped untimed (status slow-host)
    uncounted: int = 0  # finished runs timed while the host was slower than at their configuration's fastest
    tolerance: float | None = None
    disturbed: int = 0  # finished runs at full speed whose own updates spread too widely (hostspeed.undisturbed)


def host_waits(runs: pd.DataFrame) -> HostWaits | None:
    """The host-speed gate's record over a sweep's finished runs, and the
    runs it stopped (None: gate off, or a folder from before it)."""
    if "host_slow" not in runs or runs.empty:
        return None
    gated = runs[(runs["status"] == "ok") & runs["host_slow"].notna()]
    stopped = int((runs["status"] == SLOW_HOST).sum())
    if gated.empty and not stopped:
        return None
    wait = gated["host_wait_s"].fillna(0.0)
    slow = gated[gated["host_slow"] > 0]
    # Only runs from before slow-host timed on after their cap (a later run stops instead).
    before = gated["host_probe_ms"].isna() if "host_probe_ms" in gated else True
    fast, counts = counted(gated, disturbed=False), counted(gated)
    return HostWaits(len(gated), len(slow), float(wait[slow.index].sum()), float(wait.max()) if len(wait) else 0.0,
                     int(((wait >= hostspeed.MAX_WAIT_S) & before).sum()), hostspeed.MAX_WAIT_S, stopped,
                     int((~fast).sum()), gate_tolerance(gated), int((fast & ~counts).sum()))


# What the host-speed gate's probe times (sinelstm.hostspeed.probe_ms), in
# the words the report uses wherever it names the probe.
PROBE_WORDS = "CPU updates at batch 10, n_units 5"


@dataclass(frozen=True)
class HostSpeed:
    """The gate's probe over the counted runs: the host's speed while they
    were timed."""

    median_ms: float
    low_ms: float
    high_ms: float
    runs: int
    # the runs read: "CPU" (one-process CPU runs), "one-process", or MPI jobs': "MPI (slowest rank)", "MPI rank 0"
    # (older rows), "MPI" (both kinds of rows)
    whose: str


def mpi_probes(ok: pd.DataFrame) -> str | None:
    """Whose probe the counted MPI jobs ``ok`` carry: "slowest rank" (each
    check's slowest, :attr:`sinelstm.hostspeed.HostGate.slowest_probe_ms`),
    "rank 0" (rows from before that column), "both", or None (no probed
    job)."""
    if "host_probe_ms" not in ok or ok.empty:
        return None
    jobs = ok[ok["strategy"].map(one_process_per_device).astype(bool) & ok["host_probe_ms"].notna()]
    if jobs.empty:
        return None
    new = jobs["host_probe_slowest_ms"].notna() if "host_probe_slowest_ms" in jobs else pd.Series(False, jobs.index)
    return "slowest rank" if new.all() else "rank 0" if not new.any() else "both"


def host_speed(ok: pd.DataFrame) -> HostSpeed | None:
    """The probes (:attr:`sinelstm.hostspeed.HostGate.probe_ms`) of the
    counted runs ``ok``: of the one-process CPU runs where there are any,
    else of all one-process runs, else of the MPI jobs' (each check's
    slowest rank, or rank 0 in folders from before that column; each
    rank judged against its own reference). The probe reads differently in
    different processes at the same host speed: a GPU run's process read
    2.8 % slower than a CPU run's in one sweep (1.429 against 1.390 ms,
    results/h200x1-settle-2026-11-29/s5), and a ChainerMN rank slower still
    (:mod:`sinelstm.hostspeed`); one kind of run keeps sweeps of different
    mixes comparable. None: gate off, or a folder from before the probe
    column.

    A host-bound run's time follows this reading (a CPU run at batch 10 /
    ``n_units`` 5 is the probe's own work: the counted runs' medians over
    their probes were 0.97-1.04 on a 1x H200, results/h200x1-settle-2026-11-29),
    and the host's fast state drifts by more over minutes than one sweep's
    intervals (7-8 % between sweeps there, past boot): the reading is what
    lets a reader set two sweeps' host-bound figures side by side."""
    if "host_probe_ms" not in ok or ok.empty:
        return None
    probed = ok[ok["host_probe_ms"].notna()]
    if probed.empty:
        return None
    single = probed[~probed["strategy"].map(one_process_per_device).astype(bool)]
    cpu = single[single["devices"] == "cpu"]
    mpi = {"slowest rank": "MPI (slowest rank)", "rank 0": "MPI rank 0"}.get(mpi_probes(probed), "MPI")
    use, whose = next((g, w) for g, w in ((cpu, "CPU"), (single, "one-process"), (probed, mpi)) if len(g))
    p = job_probe(use)
    return HostSpeed(float(p.median()), float(p.min()), float(p.max()), len(p), whose)
