"""The host's speed, read by a fixed probe, and a gate that times updates
only while the host runs at full speed.

Where the host bounds an update (batch 10 / n_units 5 on the CPU, and on a
GPU through the framework's calls), its time is the host's speed. On the
lent GPU machines (virtual machines) that speed is not constant: a first
fixed probe of Python and small NumPy calls took 0.66 to 0.76 ms most of
the time and 1.3 to 1.5 ms in phases of about ten seconds,
a quarter of the time, with nothing else running and no steal time counted
(2x H200 host, ``scripts/host_noise.py``); updates slowed with it (their
correlation with the probe: 0.87 on the CPU, 0.85 on a GPU). Pinning and
thread counts cannot reach it, and a repeat that lands in a slow phase reads
1.6-1.9x slower than one that does not: that was most of the repeats'
disagreement.

So the training loop asks the gate before its first timed update and at
each point where the processes of a run agree (every ``eval_every``
updates): the probe runs, outside the timed updates, and while it is slower
than the reference probe by more than the tolerance, under any of the
run's processes (rank 1 on a slow core slows rank 0 too: an all-reduce
waits for it), the loop waits and asks again until every process reads
fast twice in a row (hosts flap: one fast reading inside a slow phase ended
waits whose next updates were still slow), up to a cap per run. Waiting is
not training: it is counted apart (``wait_s``), as evaluations are, and the
row says how long and how often the host was slow. A run whose waiting is
used up while the host is still slow stops there (:class:`HostSlow`, the
row's status ``slow-host``) and is run again later by the sweep: a cap of
seconds cannot wait out a slow phase of minutes, and runs that timed on
through one read 1.15-2.05x slower than their configuration's fastest (a
2x H200 host, results/h200x2-warmup-2026-11-28).
The reference is the fifth-fastest probe seen (the fastest until five
are; the fastest of hundreds is an outlier, against which a 2-core machine
read slow at most checks): by this process, and, in a sweep,
by every run of its results folder (the file named by
``SINEBENCH_HOST_PROBE_FILE``), because a worker that starts in a slow phase
would otherwise take the slow speed for full speed and gate nothing (slow
phases of minutes did that on a 2x H200 host). It is kept per kind of run
(implementation, strategy, device set, rank: ``kind``), as the probe reads
slower in some processes than in others at the same host speed: against
the CPU runs' reference, a ChainerMN job's ranks read slow at half the
checks, and with a 10 % tolerance every such run was stopped. With one
reference for the job they still read slow at about 40 % of checks (both
ranks probe at once, and either one slow is slow) and a few runs stopped
(2x H200, results/h200x2-hostgate-2026-11-28); a reference per rank came
after, not yet measured. A sweep also names a file of the machine's own
(``SINEBENCH_HOST_PROBE_MACHINE_FILE``, kept per boot by :mod:`bench.hostmemory`),
read and written beside the folder's, its probes good for an hour, so that
a second sweep on one machine knows full speed from its first run: three
sweeps in a row on a 2x H200 host each began with 30-60 s at 1.7x the
probe's later time, and each learned that slow state as full speed
(results/h200x2-repro2-2026-11-28). On a quiet machine the probe
varies by a few per cent and the gate never waits. After the run, its
probes where timing went on (:attr:`HostGate.probe_ms`) say whether it
counts at all (:func:`counted`), and its own updates' spread whether
something the probes could not see disturbed it (:func:`undisturbed`). An
MPI job also keeps, at each of those points, its slowest rank's probe
(:attr:`HostGate.slowest_probe_ms`): the job runs at that rank's pace, and
the report divides the job's time by it.

The probe is the host-bound work itself: a few CPU updates of a private
model at the article's size (batch 10, n_units 5; sinebench's eager path,
~1.3 ms each), the median of them. A first probe of pure Python and small
NumPy calls (~0.7 ms, the fastest of three) followed those ten-second
phases but missed others: on a second 2x H200 host gated CPU runs slowed
1.6x for minutes with that probe never slow. An update's work reaches what
a tight loop does not (more code, more objects, more memory), and the
median of several ~1.3 ms updates should read a core shared with another
process as slow where the fastest of three short loops can find a free
time slice (reasoned, not measured: no host since has shown that slowdown).
``scripts/host_noise.py`` times both probes beside the updates; on three
more hosts they followed the updates alike (correlation 0.59-0.76), and the
updates the gate would time spread a little less under the update probe.

On some hosts the slowness is not the machine's but its cores': on two 2x
H200 guests (results/h200x2-corenoise-2026-11-28) some cores read slow at
every moment and none at all, 56 % of readings over all; a core fast now
was no faster than the rest two seconds later; processes probing at the
same moment on disjoint cores read 1.9 and 2.8 ms. There waiting buys
little, and a job of N ranks, slow while any rank is, waits most: on a
4x H200 host the gate stopped 12 ChainerMN runs, device-bound ones among
them (scripts/gpu_scale.sh runs with the gate off since).

What it still cannot see: a slowdown that only the run's own device work
feels (a GPU's clocks, a busy link), and the fast state drifting by less
than the tolerance (5-8 % over a minute on one host). Gated sweeps on three
2x H200 hosts had 8 of 12 host-bound configurations within 5 % over their
repeats (3 of 12 ungated; results/h200x2-gate2-2026-11-28); the row's
spread and the report's noise warning say where not.
"""
import functools
import os
import tempfile
import time

import numpy as np

# The slow phases were 1.7-2.3x; the probe's fast state varied by ~6 % around
# its median, and updates timed within 20 % of the fastest probe spread less
# than within 35 % (a 2x H200 host: results/h200x2-gate2-2026-11-28).
DEFAULT_TOLERANCE = 0.2
MAX_WAIT_S = 15.0  # per run
_PAUSE_S = 0.05  # between probes while waiting
_SETTLE = 2  # fast readings in a row that end a wait
_REPS = 5  # the probe's median of five updates, so one interrupt does not read as a slow host
_RANK = 5  # the reference: the fifth-fastest probe seen (the fastest until five are)
# A run counts only if its per-update spread is at most this, or this many
# times its configuration's steadiest run's (:func:`undisturbed`). Re-reading
# results/h200x2-repro-2026-11-28: most runs spread by 2-9 %, disturbed ones by
# up to 46 %; a floor of 0.10 or 0.15 gave ChainerMN's figure the same spread
# between sweeps (3-5 %), and 0.15 leaves out fewer runs.
DISTURBED_FLOOR, DISTURBED_FACTOR = 0.15, 2.0
_IMPLAUSIBLE = 4.0  # a folder's reference this much faster than a run's first probe is not believed
TOLERANCE_RANGE = (0.01, 10.0)  # tighter reads noise as slowness; looser never waits
REFERENCE_ENV = "SINEBENCH_HOST_PROBE_FILE"  # where a sweep's runs share the fastest probes
MACHINE_ENV = "SINEBENCH_HOST_PROBE_MACHINE_FILE"  # where the sweeps on one machine share them
# How long the machine's probes stay its reference: long enough for the next
# sweeps, short enough that a rare fast moment of a busy laptop, or a host
# whose fast state drifted, stops judging its runs within the hour.
MACHINE_MAX_AGE_S = 3600.0
PROBE = "cpu-update-b10-n5"  # what probe_ms times; a reference of another probe means nothing to it
REFERENCE_FILE = f"host_probe_{PROBE}.txt"  # its name in a results folder
POLICY = ("updates are timed only while a probe of host speed (CPU updates of a fixed model) is within {tol:.0%} "
          "of the fifth-fastest probe seen (waits between agreement points, up to {cap:g} s a run, not timed; a run "
          "still on a slow host after that stops untimed, status slow-host, and is run again)")


def probe_ms() -> float:
    """The median time of a few CPU updates of a fixed private model at the
    article's size (one update first, untimed)."""
    updater = _probe_updater()
    times = []
    for _ in range(_REPS + 1):
        t0 = time.perf_counter()
        updater.update()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:])) * 1e3


@functools.cache
def _probe_updater():
    """The probe's updater, made once per process: its own model, windows
    and random streams (seeded), so the run it gates is not touched."""
    from sinelstm.config import TrainConfig  # here: sinelstm.config imports this module
    from sinelstm.devices import parse_device_set
    from sinelstm.recipes import RECIPES
    from sinelstm.strategy import make_strategy
    cfg = TrainConfig(n_units=5, batchsize=10, recipe=RECIPES["article"])
    state = np.random.get_state()  # Chainer's initializers draw from it before the model's own seed
    try:
        return make_strategy("single-process", parse_device_set("cpu"), "sinebench").make_updater(cfg)
    finally:
        np.random.set_state(state)


# kind -> the _RANK fastest probes this process knows, fastest first (its
# own and those the shared files held): kept across the runs of a shared
# worker, so later runs start with what earlier ones learned.
_BEST = {}
# kind -> the _RANK fastest of those this process measured itself: what it
# writes back. Writing _BEST would copy one file's probes into the other (an
# old folder's into this boot's machine file, stamped now, so that they
# judged this machine for another hour, and each resumed folder renewed them).
_OWN = {}


def reference_paths(kind: str = "") -> list:
    """The shared files of ``kind``'s reference, each with how long its
    probes stay valid (None: for ever): the sweep's file and the machine's,
    with the kind in their names ([]: no sweep named one)."""
    files = ((os.environ.get(REFERENCE_ENV), None), (os.environ.get(MACHINE_ENV), MACHINE_MAX_AGE_S))
    return [(_with_kind(path, kind), age) for path, age in files if path]


def _with_kind(path: str, kind: str) -> str:
    if not kind:
        return path
    stem, dot, ext = path.rpartition(".")
    safe = "".join(ch if ch.isalnum() or ch in "+-_" else "_" for ch in kind)
    return f"{stem}.{safe}.{ext}" if dot and "/" not in ext else f"{path}.{safe}"


def _entries(path: str, max_age_s: float | None = None) -> dict:
    """A shared file's probes, ms -> when recorded (seconds since the
    epoch; None where the line does not say, as in a folder's file), those
    older than ``max_age_s`` left out ({}: none, or unreadable)."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                words = line.split()
                if words:
                    out[round(float(words[0]), 6)] = float(words[1]) if len(words) > 1 else None
    except (TypeError, OSError, ValueError, IndexError):
        return {}
    now = time.time()
    return {ms: t for ms, t in out.items()
            if 0 < ms < float("inf") and (max_age_s is None or t is None or now - t <= max_age_s)}


def read_ms(path: str, max_age_s: float | None = None) -> list:
    """The fastest probes recorded in one shared file, fastest first."""
    return _fastest(_entries(path, max_age_s))


def _shared_ms(kind: str = "") -> list:
    """The fastest probes of every shared file of ``kind``, fastest first."""
    return _fastest(*(read_ms(path, age) for path, age in reference_paths(kind)))


def _fastest(*groups) -> list:
    """The _RANK fastest of the probes in ``groups``, fastest first, each
    once (rounded as the shared file keeps them: a probe read back from it
    is the same probe, not a second one)."""
    return sorted({round(float(v), 6) for g in groups for v in g})[:_RANK]


def _record_shared(values: list, kind: str = ""):
    """Merge ``values`` into each shared file's fastest probes, the file
    written whole (a temporary file renamed), so a reader never sees half.
    The machine's file says when each probe was recorded (a probe read back
    from it keeps its time), so that it can age out."""
    now = time.time()
    for path, age in reference_paths(kind):
        before = _entries(path, age)
        merged = _fastest(before, values)
        if merged and merged != sorted(before):
            when = {ms: before.get(ms) or now for ms in merged} if age is not None else dict.fromkeys(merged)
            _write_ms(path, when)


def _write_ms(path: str, when: dict):
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".host_probe.")
        with os.fdopen(fd, "w") as f:
            f.writelines(f"{ms:.6f}\n" if t is None else f"{ms:.6f} {t:.0f}\n" for ms, t in when.items())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError:  # the reference is an aid: a run goes on without it
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


class HostSlow(RuntimeError):
    """The host stayed slower than its full speed for longer than a run may
    wait: the run stops untimed (status ``slow-host``), and the sweep tries
    it again later instead of counting a timing of the slow phase."""

    def __init__(self, waited_s: float, best_ms: float, tolerance: float):
        super().__init__(f"the host stayed more than {tolerance:.0%} slower than its reference probe "
                         f"({best_ms:.3f} ms) past the {waited_s:g} s a run may wait; not timed")


class HostGate:
    """Asked at the loop's agreement points: :meth:`wait` returns once the
    host is at full speed, or raises :class:`HostSlow` where the run's
    waiting is used up first. The checks' own probes count in ``wait_s``
    (outside every reported time) but not against the cap: only the waiting
    after a slow reading does."""

    def __init__(self, tolerance: float | None = DEFAULT_TOLERANCE, max_wait_s: float | None = None,
                 kind: str = ""):
        self.tolerance, self.kind = tolerance, kind
        self.max_wait_s = MAX_WAIT_S if max_wait_s is None else max_wait_s
        self.wait_s, self.checks, self.slow_checks = 0.0, 0, 0
        self.paused_s = 0.0  # of wait_s, the waiting after a slow reading: what the cap limits (not the probes)
        self.last_ms, self.passed_ms = None, []  # the latest probe; those at which timing went on
        self.slowest_ms = []  # at those points, the slowest process's probe (this one's in a one-process run)
        self._shared = _shared_ms(kind) if self.on else None  # weighed at the first probe

    @property
    def best_ms(self) -> float:
        """The reference: the _RANK-th fastest probe seen (the fastest while
        fewer are known). The fastest alone is an outlier of hundreds of
        probes: on a 2-core CI-kind machine it was 0.981 ms where the runs
        timed at 1.14-1.31, and 9 of 20 runs of the README's main job
        stopped as slow-host, all 11 others waited."""
        seen = _BEST.get(self.kind, [])
        if not seen:
            return float("inf")
        return seen[_RANK - 1] if len(seen) >= _RANK else seen[0]

    def _remember(self, values):
        _BEST[self.kind] = _fastest(_BEST.get(self.kind, []), values)

    @property
    def on(self) -> bool:
        return self.tolerance is not None

    def slow(self) -> bool:
        """One probe: is the host slower than its best by more than the tolerance?"""
        p = self.last_ms = probe_ms()
        if self._shared is not None:  # the folder's references, unless implausibly fast (damaged, foreign)
            self._remember(v for v in self._shared if v >= p / _IMPLAUSIBLE)
            self._shared = None
        self._remember([p])
        _OWN[self.kind] = _fastest(_OWN.get(self.kind, []), [p])
        return p > self.best_ms * (1 + self.tolerance)

    def wait(self, any_rank=lambda slow: slow, slowest=lambda ms: ms) -> float:
        """Wait while the host is slow under any process of the run
        (``any_rank`` makes that one decision on every rank; ``slowest``
        gives every rank the largest of their probes). Returns the seconds
        waited."""
        if not self.on:
            return 0.0
        t0 = time.perf_counter()
        self.checks += 1
        slow = self.slow()
        # Every process asks ``any_rank`` the same number of times and gets
        # the same answers: whether the host is slow under one of them (for
        # the record, also once the cap is used up), then, round by round,
        # whether to wait: while one is slow and has waiting time left.
        # A wait ends once the host has read fast _SETTLE times in a row
        # (under every process): on hosts that flap, one fast reading in a
        # slow phase would end it while the next updates are still slow.
        self.slow_checks += any_rank(slow)
        fast_in_a_row = 0 if slow else _SETTLE
        t1 = time.perf_counter()
        while any_rank(fast_in_a_row < _SETTLE and self.paused_s + (time.perf_counter() - t1) < self.max_wait_s):
            time.sleep(_PAUSE_S)
            fast_in_a_row = 0 if self.slow() else fast_in_a_row + 1
        self.paused_s += time.perf_counter() - t1
        waited = time.perf_counter() - t0
        self.wait_s += waited
        # The cap is used up and the host is not yet back under some
        # process: the updates after this would be timed on a slow host.
        # Every process reaches this point together and raises together.
        if any_rank(fast_in_a_row < _SETTLE):
            raise HostSlow(self.max_wait_s, self.best_ms, self.tolerance)
        self.passed_ms.append(self.last_ms)
        self.slowest_ms.append(slowest(self.last_ms))
        return waited

    def save(self):
        """At the end of a run: the fastest probes this process took, for later runs."""
        if self.on and _OWN.get(self.kind):
            _record_shared(_OWN[self.kind], self.kind)

    @property
    def probe_ms(self) -> float | None:
        """The host's speed while this run was timed: the median of the
        probes at which timing went on (None: gate off, or never asked)."""
        return float(np.median(self.passed_ms)) if self.on and self.passed_ms else None

    @property
    def slowest_probe_ms(self) -> float | None:
        """The job's host speed while timed: at each point where timing
        went on, the slowest of its processes' probes; the median of those.
        An MPI job runs at its slowest rank's pace (every update ends in an
        all-reduce), while :attr:`probe_ms` is this rank's own reading,
        judged against this rank's reference. One process: :attr:`probe_ms`."""
        return float(np.median(self.slowest_ms)) if self.on and self.slowest_ms else None

    @property
    def slow_share(self) -> float | None:
        """The share of checks that found the host slow, here or (the run
        waited) under another rank; None: gate off."""
        return self.slow_checks / self.checks if self.on and self.checks else None


def counted(probes_ms, tolerance: float | None, spreads=None) -> list:
    """Which runs of one configuration count: those whose host speed while
    timed (:attr:`HostGate.probe_ms`; an MPI job's: its slowest rank's,
    :attr:`HostGate.slowest_probe_ms`) was within ``tolerance`` of the
    fastest of them, and that were not disturbed (:func:`undisturbed`). The
    gate judges each run against the fastest probe seen so far; a sweep
    that starts in a slow phase learns full speed only later, and its first
    runs, timed on a slow host, would count (2x H200: CPU runs at 1.7x their
    later time, results/h200x2-hostgate-2026-11-28). Judged again against
    what the whole folder saw, they do not. A run without a probe passes the
    probe test; with the gate off (``tolerance`` None) every run counts."""
    values = [_number(p) for p in probes_ms]
    if spreads is not None and len(spreads) != len(values):
        raise ValueError(f"{len(spreads)} spreads for {len(values)} runs")
    known = [p for p in values if p is not None]
    tol = _number(tolerance)
    if tol is None:
        return [True] * len(values)
    best = min(known) if known else None
    fast = [p is None or p <= best * (1 + tol) for p in values]
    calm = undisturbed(spreads) if spreads is not None else [True] * len(values)
    return [f and c for f, c in zip(fast, calm)]


def undisturbed(spreads) -> list:
    """Which runs of one configuration were not disturbed while timed, by
    their own per-update times: a run's spread (p75 / p25 - 1) at most
    :data:`DISTURBED_FACTOR` times its configuration's steadiest run's, or
    :data:`DISTURBED_FLOOR`, whichever is larger.

    The probe reads the host between stretches of timed updates; what
    happens within one it cannot see. On the lent hosts interruptions only
    ever slow an update, and where they land in a run they widen its upper
    quartile: ChainerMN at batch 10 / ``n_units`` 5 on 2x H200
    (results/h200x2-repro-2026-11-28), most runs spread by 0.03-0.09, a few
    by 0.12-0.14, and 16 of 43 by 0.15-0.46 (most above 0.2) with the probe
    within tolerance; those moved the configuration's median by up to 10 %
    from sweep to sweep. The bound is a cut in that continuum, not a gap
    between two clean groups. The spread says nothing of the run's level,
    so a run steadily slower (a drift of the host's fast state) still
    counts. The bound follows the configuration's own steadiest run, as some
    configurations spread by nature (a bimodal eager path, evaluations
    nearby); a run alone, or without quartiles, counts."""
    values = [_number(s, zero=True) for s in spreads]
    known = [s for s in values if s is not None]
    if not known:
        return [True] * len(values)
    bound = max(DISTURBED_FLOOR, DISTURBED_FACTOR * min(known))
    return [s is None or s <= bound for s in values]


def spread(p25, p75) -> float | None:
    """A run's per-update spread, p75 / p25 - 1 (None where unknown)."""
    lo, hi = _number(p25), _number(p75)
    return hi / lo - 1 if lo is not None and hi is not None else None


def _number(value, zero: bool = False) -> float | None:
    """A positive (or, with ``zero``, non-negative) finite float, or None
    (missing, NaN, pandas' NA, text)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if (0 <= x if zero else 0 < x) and x < float("inf") else None
