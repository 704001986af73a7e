"""``--repeats auto``: repeat each configuration until its median is known
to within a set width, round by round.

A round is one repeat of every configuration still unsettled; rounds
interleave configurations, so that a slow drift of the machine (heat, a
neighbour's job) spreads over all of them instead of landing on one. After
each run the configuration's median ms/update gets its 95 % interval
(:mod:`bench.intervals`, from the per-update samples of every repeat): once
at least :data:`MIN_REPEATS` repeats have it within ±target of the median,
and the counted repeats started at least ``min_span`` seconds apart, first to
last, the configuration is ``stable``; at ``max_repeats`` counted repeats it
stops at the ``cap`` (or at ``rounds``, where the rounds laid out ran out
first); a round whose run failed (after its retries) ends it
too, as ``failed``. A run the host kept slow past the gate's wait (status
``slow-host``, :mod:`sinelstm.hostspeed`) is not a failure of the
configuration and not a repeat: a later round replaces it, up to
:data:`ROUNDS_PER_REPEAT` rounds per counted repeat in all, because slow
phases of the lent hosts last minutes. Nor does a finished run timed while
the host was slower than at the configuration's fastest run by more than
the gate's tolerance (:meth:`Progress.counted`): the gate could not know
full speed before it had seen it; nor one whose own updates spread as
interruptions inside the run make them (:func:`sinelstm.hostspeed.undisturbed`).
The span is there because a slow phase of the host can hold a whole
quick configuration: on a 2x H200 host a sweep's first 30-60 s ran at 1.7x,
and its CPU configuration's four rounds all fell inside them, agreed to
±2.5 % and were called stable at 2.57 ms, 75-83 % above what the next two
sweeps reported (results/h200x2-repro2-2026-11-28). A round later the host
read fast, and those four would have stopped counting. A span is no proof
(a slow phase can last longer), only a bound on how briefly a figure can be
settled; the cap still ends a configuration whose repeats came faster.
The times are the rows' ``started_at``, which the worker stamps as it
writes the row, after the run: for runs of one configuration, of about one
length, the span between them is the same.
The decision is written on the row that settles it (``stop_reason``, with
``ci_halfwidth``), so the report can say which configurations are known to
±3 % and which only got the cap.

Repeat r trains from seed r, and runs that stop at the quality target have
different lengths: the interval is about the time per update, which
neither changes.

Resuming is reading: which configurations are settled, and how many rounds
each has had, come from the rows and samples already in the folder, so a
sweep killed at any point (``kill -9`` included) and started again goes on
with the same rounds, and the run ids of repeat r are the same as in a
fixed sweep of r + 1 repeats.
"""
import time
from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from typing import NamedTuple

from bench import analysis, intervals, samples as per_update
from bench.schema import SLOW_HOST, RunRow
from sinelstm import hostspeed

MIN_REPEATS = 3  # fewer cannot show a spread
DEFAULT_TARGET = 0.03
DEFAULT_MIN_SPAN_S = 60.0  # seconds from the first counted repeat's start to the last's: the slow starts lasted 30-60
DEFAULT_CAP = 10
ROUNDS_PER_REPEAT = 2  # rounds a sweep lays out per counted repeat: room to replace slow-host runs
FIXED, STABLE, CAP, FAILED = "fixed", "stable", "cap", "failed"
ROUNDS = "rounds"  # the rounds laid out ran out before the cap's counted repeats (a host slow for long)


class Timed(NamedTuple):
    """What a finished run tells about its configuration."""

    median: float  # ms per update
    samples: object  # its per-update times (bench.samples), or None
    probe: float | None  # the host's speed while timed (RunRow.job_probe_ms: an MPI job's slowest rank's)
    spread: float | None  # its updates' p75 / p25 - 1 (hostspeed.spread)
    started: float | None  # when it started, seconds since the epoch (None: not known)


def epoch_s(started_at) -> float | None:
    """A row's ``started_at`` (``2026-11-28T21:46:34+0000``) in seconds
    since the epoch; None for anything else."""
    try:
        return datetime.strptime(str(started_at), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None


def config_key(spec) -> str:
    """The configuration a run repeats: its spec with repeat 0."""
    first = replace(spec, repeat=0, profile=False, train=replace(spec.train, seed=spec.train.seed - spec.repeat))
    return first.run_id


class Progress:
    """What the folder knows about each configuration of ``specs`` (every
    round laid out for every configuration, as :func:`bench.grid.expand_grid`
    makes them: :data:`ROUNDS_PER_REPEAT` per counted repeat of the cap),
    kept up to date as rows are committed."""

    def __init__(self, folder, specs: list, rows, target: float | None = DEFAULT_TARGET,
                 cap: int | None = None, min_span_s: float = 0.0):
        self.target, self.cap = target, cap  # cap: counted (ok) repeats
        self.min_span_s = min_span_s
        self.key = {s.run_id: config_key(s) for s in specs}
        self.by_round = defaultdict(dict)  # round -> {config: spec}
        for s in specs:
            self.by_round[s.repeat][self.key[s.run_id]] = s
        self.rounds = max(self.by_round, default=-1) + 1  # laid out: cap, or more to replace slow-host runs
        ok = rows[(rows["status"] == "ok") & rows["run_id"].isin(self.key)] if len(rows) else rows
        got = per_update.read_all(folder, list(ok["run_id"])) if len(ok) else {}
        self.tolerance = {self.key[s.run_id]: s.train.budget.host_gate for s in specs}
        self.data = defaultdict(dict)  # config -> {run_id: Timed}
        probes = analysis.job_probe(ok) if len(ok) else []  # as analysis.counted judges them
        spreads = analysis.spreads(ok) or [None] * len(ok)
        starts = ok["started_at"] if "started_at" in ok else [None] * len(ok)
        for rid, median, probe, spread, started in (zip(ok["run_id"], ok["ms_per_update_median"], probes, spreads,
                                                        starts) if len(ok) else ()):
            self.data[self.key[rid]][rid] = Timed(float(median), got.get(rid), probe, spread, epoch_s(started))
        self.status = {}  # run_id -> status of its latest row
        for rid, status in (zip(rows["run_id"], rows["status"]) if len(rows) else ()):
            self.status[rid] = status

    def counted(self, config: str) -> list:
        """The configuration's finished runs that count: not those timed
        while the host was slower than at its fastest run by more than the
        gate's tolerance, nor those disturbed while timed
        (:func:`sinelstm.hostspeed.counted`), judged again as each run comes."""
        values = list(self.data[config].values())
        keep = hostspeed.counted([v.probe for v in values], self.tolerance.get(config), [v.spread for v in values])
        return [v for v, k in zip(values, keep) if k]

    def repeats(self, config: str) -> intervals.Repeats:
        values = self.counted(config)
        return intervals.Repeats.of([v.median for v in values], [v.samples for v in values])

    def interval(self, config: str):
        return intervals.median_interval(self.repeats(config), config)

    def _starts(self, config: str) -> list:
        return [v.started for v in self.counted(config) if v.started is not None]

    def span_s(self, config: str) -> float:
        """Seconds from the first counted repeat's start to the last's (0
        while fewer than two have a known start)."""
        starts = self._starts(config)
        return max(starts) - min(starts) if starts else 0.0

    def within_target(self, config: str) -> bool:
        """Enough counted repeats, and their median's interval within the target."""
        if self.target is None or len(self.counted(config)) < MIN_REPEATS:
            return False
        ci = self.interval(config)
        return ci is not None and ci.complete and ci.rel_halfwidth <= self.target

    def stable(self, config: str) -> bool:
        return self.within_target(config) and self.span_s(config) >= self.min_span_s

    def waiting(self, config: str) -> bool:
        """Within its target, only its span missing: another run now would
        land in the same stretch of the host's time as the others."""
        return self.within_target(config) and self.span_s(config) < self.min_span_s

    def span_wait_s(self, configs) -> float:
        """How long until the first of ``configs`` (each waiting) could
        reach its span with one more run; at most the span itself (a start
        time ahead of this clock, from another machine's rows, cannot hold
        the sweep longer)."""
        ready = [min(self._starts(c)) + self.min_span_s for c in configs if self._starts(c)]
        return min(max(0.0, min(ready, default=0.0) - time.time()), self.min_span_s)

    def full(self, config: str) -> bool:
        """As many counted repeats as the cap."""
        return self.cap is not None and len(self.counted(config)) >= self.cap

    def capped(self, config: str, upto: int) -> bool:
        """As many counted repeats as the cap, or every round laid out used."""
        return self.full(config) or upto >= self.rounds

    def settled(self, config: str, upto: int) -> bool:
        """No round from ``upto`` on is needed: stable, capped, or a round
        before it failed (a slow-host round is replaced, not a failure)."""
        if self.stable(config) or self.capped(config, upto):
            return True
        return any(self.status.get(self.by_round[r][config].run_id, "ok") not in ("ok", SLOW_HOST)
                   for r in range(upto) if config in self.by_round[r])

    def next_round(self, r: int) -> list:
        """The runs of round ``r``: one per configuration not yet settled."""
        return [spec for config, spec in self.by_round.get(r, {}).items() if not self.settled(config, r)]

    def decide(self, row: RunRow, ms) -> RunRow:
        """Record ``row`` (about to be committed) and fill its stop_reason."""
        config = self.key.get(row.run_id)
        if config is None:
            return row
        self.status[row.run_id] = row.status
        if row.status == "ok":
            self.data[config][row.run_id] = Timed(row.ms_per_update_median, ms, row.job_probe_ms,
                                                  hostspeed.spread(row.ms_per_update_p25, row.ms_per_update_p75),
                                                  epoch_s(row.started_at))
        ci = self.interval(config)
        half = round(ci.rel_halfwidth, 5) if ci is not None else None
        if self.target is None:
            reason = FIXED
        elif row.status not in ("ok", SLOW_HOST):
            reason = FAILED
        elif self.stable(config):
            reason = STABLE
        elif self.full(config):
            reason = CAP
        elif row.repeat + 1 >= self.rounds:
            reason = ROUNDS
        else:
            reason = ""
        return replace(row, stop_reason=reason, ci_halfwidth=half)


def run_rounds(progress: Progress, sweep_round, say=print) -> dict:
    """Run rounds until every configuration is settled; ``sweep_round(specs,
    decide)`` runs one round (:func:`bench.runner.sweep`) and returns its
    status counts. Returns the counts summed over rounds."""
    total = defaultdict(int)
    for r in range(progress.rounds):
        pending = progress.next_round(r)
        if not pending:
            break
        if all(progress.status.get(s.run_id) == "ok" for s in pending):
            total["skipped"] += len(pending)  # a resumed sweep: this round is done
            continue
        # Quick configurations reach their interval within seconds: rather
        # than run them again and again inside one phase of the host (and
        # use up the cap there), they sit out rounds while others run; in
        # the last round laid out, or with nothing else to run, the sweep
        # waits for them instead.
        sitting = [s for s in pending if progress.waiting(progress.key[s.run_id])
                   and progress.span_wait_s([progress.key[s.run_id]]) > 0]
        if sitting and (len(sitting) == len(pending) or r == progress.rounds - 1):
            wait = progress.span_wait_s([progress.key[s.run_id] for s in sitting]) + 1  # whole-second times
            say(f"waiting {wait:.0f} s, so that the repeats of {len(sitting)} configuration(s) within "
                f"±{progress.target:.0%} spread over {progress.min_span_s:g} s (--min-span)")
            time.sleep(wait)
            sitting = []
        pending = [s for s in pending if s not in sitting]
        say(f"round {r + 1}: {len(pending)} configuration(s) not yet within ±{progress.target:.0%}"
            + (f" over {progress.min_span_s:g} s" if progress.min_span_s else ""))
        for status, n in sweep_round(pending, progress.decide).items():
            total[status] += n
    return dict(total)


def plan_lines(progress: Progress) -> list:
    """``--dry-run`` with ``--repeats auto``: what is settled, what may come."""
    configs = list(progress.by_round.get(0, {}))
    rounds_left = 0
    unsettled = 0
    for config in configs:
        done = sum(1 for r in range(progress.rounds) if progress.by_round[r][config].run_id in progress.status)
        if not progress.settled(config, done):
            unsettled += 1
            rounds_left += min(progress.cap - len(progress.counted(config)), progress.rounds - done)
    return [f"--repeats auto: {len(configs)} configurations, {len(configs) - unsettled} settled; each of the "
            f"{unsettled} others gets rounds until its median's 95 % interval is within "
            f"±{progress.target:.0%} (at least {MIN_REPEATS} repeats"
            + (f", started over at least {progress.min_span_s:g} s" if progress.min_span_s else "")
            + f") or {progress.cap} repeats: "
            f"at most {rounds_left} more runs, and a run again for each the host keeps slow "
            f"(up to {progress.rounds} rounds in all)"]
