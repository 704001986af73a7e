"""How sure a median, and a speedup, is: a hierarchical bootstrap over the
per-update samples of every repeat, and asv's test before calling a winner.

A configuration's time is the median over repeats of each repeat's median ms
per update. Its noise has two levels: updates within a run, and runs (seeds,
the machine's mood) within a configuration; the second is the larger where
the host bounds the time. So one bootstrap draw resamples the *repeats* with
replacement, then each chosen repeat's *updates*, and takes the median of the
resampled repeats' medians (Davison & Hinkley's two-stage bootstrap). A
resample's median needs no resample: the median of n draws from a sorted
array is the array at the median of n uniform indices, and that index is
``floor(n * U)`` with ``U`` the median of n uniforms, ~ Beta(m, n + 1 - m);
so a draw costs O(1) however many updates a run timed, and a report over
hundreds of configurations stays quick. A repeat without stored samples
(a folder from before they were kept) counts by its median alone: the
interval then holds only the repeat-to-repeat part, and says so.

A speedup's interval is the percentile interval of the ratio of two
independent bootstraps. A winner is called only when that interval excludes
1.0 *and* a Mann–Whitney U test on the per-update samples rejects "same
distribution" (asv calls a difference only with both a test and the
intervals); where SciPy is missing (a bare GPU machine) the interval alone
decides. Everything is seeded from the configuration's name, so a report is
the same each time it is rendered.
"""
import zlib
from dataclasses import dataclass

import numpy as np

DRAWS = 2000
LEVEL = 0.95
MWU_ALPHA = 0.01  # asv's threshold is stricter than the interval's 5 %


@dataclass(frozen=True)
class Repeats:
    """One configuration's data: each repeat's median, and its sorted per-update
    samples where stored (None where not)."""

    medians: tuple
    samples: tuple  # per repeat: a sorted float array, or None

    @classmethod
    def of(cls, medians, samples=None) -> "Repeats":
        samples = list(samples) if samples is not None else [None] * len(medians)
        clean = tuple(None if s is None or len(s) == 0 else np.sort(np.asarray(s, float)) for s in samples)
        return cls(tuple(float(m) for m in medians), clean)

    @property
    def n(self) -> int:
        return len(self.medians)

    @property
    def complete(self) -> bool:
        """Every repeat's samples are stored: the interval has both levels."""
        return all(s is not None for s in self.samples)

    @property
    def median(self) -> float:
        return float(np.median(self.medians)) if self.medians else float("nan")

    def pooled(self) -> np.ndarray:
        return np.concatenate([s for s in self.samples if s is not None] or [np.zeros(0)])


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


def _resampled_median(sorted_x: np.ndarray, size, rng) -> np.ndarray:
    """Medians of ``size`` bootstrap resamples of ``sorted_x`` (the lower
    median for an even count), by the Beta order-statistic shortcut."""
    n = len(sorted_x)
    m = (n + 1) // 2
    idx = np.floor(n * rng.beta(m, n + 1 - m, size=size)).astype(int)
    return sorted_x[np.minimum(idx, n - 1)]


def bootstrap(rep: Repeats, name: str = "", draws: int = DRAWS) -> np.ndarray | None:
    """``draws`` bootstrap replicates of the median over repeats, or None with
    no repeat or a single repeat without samples (nothing to resample)."""
    if rep.n == 0 or (rep.n == 1 and rep.samples[0] is None):
        return None
    rng = np.random.default_rng(seed_of(name))
    chosen = rng.integers(0, rep.n, size=(draws, rep.n))
    per_slot = np.empty((draws, rep.n))
    for r in range(rep.n):
        mask = chosen == r
        if rep.samples[r] is None:
            per_slot[mask] = rep.medians[r]
        else:
            per_slot[mask] = _resampled_median(rep.samples[r], int(mask.sum()), rng)
    return np.median(per_slot, axis=1)


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float
    complete: bool  # from per-update samples of every repeat, not repeat medians alone

    @property
    def rel_halfwidth(self) -> float:
        """The interval's half-width over the value: 0.03 is ±3 %."""
        return (self.high - self.low) / 2 / self.value

    def includes(self, x: float) -> bool:
        return self.low <= x <= self.high


def _percentiles(boot: np.ndarray) -> tuple:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return float(low), float(high)


def median_interval(rep: Repeats, name: str = "") -> Interval | None:
    boot = bootstrap(rep, name)
    if boot is None:
        return None
    return Interval(rep.median, *_percentiles(boot), rep.complete)


def speedup_interval(base: Repeats, other: Repeats, name: str = "") -> Interval | None:
    """base ms / other ms (> 1: ``other`` is faster), with its interval."""
    a, b = bootstrap(base, name + "|base"), bootstrap(other, name + "|other")
    if a is None or b is None:
        return None
    return Interval(base.median / other.median, *_percentiles(a / b), base.complete and other.complete)


def mann_whitney_p(x: np.ndarray, y: np.ndarray) -> float | None:
    """Two-sided Mann–Whitney U p-value, or None without SciPy or samples."""
    if len(x) == 0 or len(y) == 0:
        return None
    try:
        from scipy.stats import mannwhitneyu  # lazily: GPU machines may lack SciPy
    except ImportError:
        return None
    return float(mannwhitneyu(x, y, alternative="two-sided").pvalue)


@dataclass(frozen=True)
class Comparison:
    """A speedup of ``other`` over ``base`` and whether the data support a winner."""

    interval: Interval | None
    p_value: float | None  # Mann–Whitney U on the pooled samples; None if not computed

    @property
    def speedup(self) -> float | None:
        return self.interval.value if self.interval else None

    @property
    def clear(self) -> bool | None:
        """True: one side is faster beyond the noise; False: no clear winner;
        None: no interval to judge by (one repeat, no samples)."""
        if self.interval is None:
            return None
        if self.interval.includes(1.0):
            return False
        return self.p_value is None or self.p_value < MWU_ALPHA


def compare(base: Repeats, other: Repeats, name: str = "") -> Comparison:
    interval = speedup_interval(base, other, name)
    p = mann_whitney_p(base.pooled(), other.pooled()) if interval is not None else None
    return Comparison(interval, p)
