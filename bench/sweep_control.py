"""``sinebench sweep``'s options for numbers a reader can trust, and what the
sweep does with them: how many repeats (a number, or ``auto``: until each
median is known to ±``--target-ci``), the threads and core pinning of the
workers (:mod:`bench.pinning`), the gate that times updates only at the
host's full speed (:mod:`sinelstm.hostspeed`), what env.json records of them
and of what could not be controlled (:mod:`bench.hostload`), and the warning
at the end of a sweep whose repeats disagree more than the differences they
measure.
Kept out of :mod:`bench.cli`, which only parses and checks."""
import math
import time
from dataclasses import dataclass, replace
from functools import wraps
from pathlib import Path

import click

from sinelstm import hostspeed

from bench import adaptive, hostload, hostmemory, pinning
from bench.grid import SWEEP
from bench.options import fail
from bench.schema import SLOW_HOST, TRANSIENT


@dataclass(frozen=True)
class Repetition:
    count: int  # runs per configuration (fixed), or the most (auto)
    target: float | None  # the median's 95 % interval half-width to reach; None: fixed count
    min_span_s: float = adaptive.DEFAULT_MIN_SPAN_S  # auto: the counted repeats' starts at least this far apart

    @property
    def auto(self) -> bool:
        return self.target is not None

    @property
    def rounds(self) -> int:
        """Repeats to lay out: with auto, room for rounds that replace runs
        the host kept slow (:mod:`bench.adaptive`)."""
        return self.count * adaptive.ROUNDS_PER_REPEAT if self.auto else self.count


def _repeats(text: str | None, target: float | None, cap: int | None, min_span: float | None) -> Repetition:
    if min_span is not None and not math.isfinite(min_span):  # nan passes FloatRange's bounds
        fail(f"--min-span must be a finite number of seconds, got {min_span}")
    if text is not None and text.strip().lower() == "auto" or (text is None and target is not None):
        cap = adaptive.DEFAULT_CAP if cap is None else cap
        if not 0 < (target if target is not None else adaptive.DEFAULT_TARGET) < 1:
            fail(f"--target-ci takes a fraction between 0 and 1 (0.03 is ±3 %), got {target}")
        return Repetition(cap, target if target is not None else adaptive.DEFAULT_TARGET,
                          adaptive.DEFAULT_MIN_SPAN_S if min_span is None else min_span)
    if target is not None:
        fail("--target-ci goes with --repeats auto (the number of repeats is then what it takes)")
    if min_span is not None:
        fail("--min-span goes with --repeats auto")
    if cap is not None:
        fail("--max-repeats goes with --repeats auto")
    try:
        count = int(text) if text is not None else SWEEP.repeats
    except ValueError:
        fail(f"--repeats takes a whole number or 'auto', got {text!r}")
    if count < 1:
        fail(f"--repeats must be positive, got {count}")
    return Repetition(count, None)


def control_options(fn):
    """Add the options; the command receives ``repetition`` and ``control``."""
    @click.option("--repeats", default=None, metavar="N|auto",
                  help=f"Runs of each configuration (repeat r trains from seed r) [default: {SWEEP.repeats}]; "
                       "'auto': rounds of every unsettled configuration until its median ms/update's 95 % "
                       "interval is within --target-ci, at least 3 and at most --max-repeats.")
    @click.option("--target-ci", default=None, type=float,
                  help=f"With --repeats auto: the interval's half-width as a fraction of the median "
                       f"[default: {adaptive.DEFAULT_TARGET}].")
    @click.option("--max-repeats", default=None, type=click.IntRange(min=1),
                  help=f"With --repeats auto: the cap on repeats of a configuration [default: {adaptive.DEFAULT_CAP}].")
    @click.option("--min-span", default=None, type=click.FloatRange(min=0, max=86400), metavar="SECONDS",
                  help="With --repeats auto: a configuration is stable only once its counted repeats started at "
                       "least this far apart, so that one slow phase of the host cannot hold them all "
                       f"[default: {adaptive.DEFAULT_MIN_SPAN_S:g}; 0: no span].")
    @click.option("--threads", default=None, type=click.IntRange(min=1),
                  help="BLAS/OpenMP threads of each run, recorded per run [default: the cores of one NUMA "
                       "node when pinned, else the libraries' own].")
    @click.option("--pin/--no-pin", default=True, show_default=True,
                  help="Pin each run's process to --threads cores (a GPU's NUMA node where known).")
    @click.option("--warmup-rounds", default=0, show_default=True, type=click.IntRange(min=0),
                  help="Rounds of one run of every configuration with runs left, before the counted ones, "
                       "results not kept (pyperf's warm-ups): on 2x H200 hosts a sweep's first runs were "
                       "the slowest of their configuration more often than chance.")
    @click.option("--settle/--no-settle", default=False, show_default=True,
                  help=f"Before anything is timed, wait until the machine has been {hostload.FRESH_UP}: "
                       f"{hostload.FRESH_SLOWER}.")
    @click.option("--host-gate", default=f"{hostspeed.DEFAULT_TOLERANCE:g}", show_default=True, metavar="FRACTION|off",
                  help="Time updates only while a probe of host speed (CPU updates of a fixed model) is within "
                       f"this fraction of the fifth-fastest probe seen; a run waits for it (not timed) up to "
                       f"{hostspeed.MAX_WAIT_S:g} s. 'off': time whatever the host's speed.")
    @wraps(fn)
    def wrapper(*args, repeats, target_ci, max_repeats, min_span, threads, pin, warmup_rounds, settle, host_gate,
                **kwargs):
        return fn(*args, repetition=_repeats(repeats, target_ci, max_repeats, min_span),
                  control=pinning.Control(pin=pin, threads=threads, host_gate=_gate(host_gate),
                                          warmup_rounds=warmup_rounds, settle=settle), **kwargs)
    return wrapper


def _gate(text: str) -> float | None:
    """``--host-gate``: off, or a number (its range is the library's to
    check, :class:`sinelstm.config.Budget`, with the sweep's other settings)."""
    if text.strip().lower() == "off":
        return None
    try:
        return float(text)
    except ValueError:
        fail(f"--host-gate takes a fraction (e.g. {hostspeed.DEFAULT_TOLERANCE:g}) or 'off', got {text!r}")


def with_references(control: pinning.Control, folder) -> pinning.Control:
    """The gate's shared references: the fastest the host has been seen to
    run by this folder's runs, and by this machine's sweeps since it booted
    (:mod:`bench.hostmemory`); none with the gate off."""
    if control.host_gate is None:
        return control
    return replace(control, probe_file=str(Path(folder) / hostspeed.REFERENCE_FILE),
                   machine_probe_file=hostmemory.reference_file(control.pin, control.resolved_threads()))


def record(machine: dict, control: pinning.Control, repetition: Repetition, boot_wait_s: float | None = None) -> dict:
    """env.json's record of this invocation: the machine, the control and
    repeats asked for, and what could not be controlled, with the load
    before the sweep and the host speed this machine's earlier sweeps saw
    (the gate's fastest probes per kind of run, in ms); with ``--settle``,
    how long the sweep waited for the machine (:func:`settle`)."""
    out = {**machine, "control": pinning.describe(control), "repeats": describe(repetition),
           "uncontrolled": hostload.uncontrolled(before=hostload.snapshot()),
           "host_probes_known_at_start": hostmemory.known(control.machine_probe_file)}
    return {**out, "boot_wait_s": boot_wait_s} if boot_wait_s is not None else out


def _wait(seconds: float):
    time.sleep(seconds)


def boot_wait(runs_left) -> tuple:
    """(seconds ``--settle`` waits here, why not where it cannot); 0 where
    ``runs_left()`` is false: a finished sweep does not wait for nothing."""
    if not runs_left():
        return 0.0, None
    up = hostload.uptime_s()
    if up is None:
        return 0.0, "this machine does not say when it booted (/proc/uptime): --settle cannot wait"
    return hostload.settle_wait_s(up), None


def settle(control: pinning.Control, runs_left, say) -> float | None:
    """``--settle``: wait until the machine has been up
    :data:`bench.hostload.FRESH_S`, saying so; the seconds waited (None
    without ``--settle``, or where the uptime is unknown). A wait, not
    warm-up runs: what slows a fresh machine is the machine, and runs would
    not hurry it."""
    if not control.settle:
        return None
    wait, why_not = boot_wait(runs_left)
    if why_not:
        say(why_not)
        return None
    if wait > 0:
        say(f"this machine booted {hostload.FRESH_S - wait:.0f} s ago: waiting {wait:.0f} s until it has been "
            f"{hostload.FRESH_UP} (--settle)")
        _wait(wait)
    return round(wait, 1)


def runs_left(store, specs: list, repetition: Repetition):
    """Whether any configuration has runs left to run here (for
    :func:`settle`; reading the folder takes a moment, so only when asked)."""
    return lambda: bool(unfinished(specs, progress_of(store, specs, repetition), repetition))


def start_warnings(record: dict) -> list:
    """What to say before the first run about the machine's state."""
    up = hostload.fresh((record.get("uncontrolled") or {}).get("load_before"))
    if up is None:
        return []
    return [f"this machine booted {up:.0f} s ago: {hostload.FRESH_SLOWER} (three 1x H200 machines, "
            f"results/h200x1-boot-2026-11-29); figures to compare with later sweeps are better started once it "
            f"has been {hostload.FRESH_UP} (--settle waits for that)"]


def describe(repetition: Repetition) -> dict:
    if not repetition.auto:
        return {"mode": "fixed", "count": repetition.count}
    return {"mode": "auto", "target_ci": repetition.target, "max_repeats": repetition.count,
            "min_span_s": repetition.min_span_s}


def _no_rows():
    import pandas as pd

    return pd.DataFrame(columns=["run_id", "status", "ms_per_update_median"])


def _rows(store):
    from bench.store import ResultsError

    try:
        return store.load()["runs"]
    except ResultsError:  # a new folder: no runs.csv yet
        return _no_rows()


def progress_of(store, specs: list, repetition: Repetition) -> adaptive.Progress:
    return adaptive.Progress(store.folder, specs, _rows(store), repetition.target, repetition.count,
                             repetition.min_span_s)


def run(specs: list, store, repetition: Repetition, control: pinning.Control, say, **sweep_kwargs) -> dict:
    """Run the sweep: every spec (fixed repeats), or round by round (auto)."""
    from bench.runner import sweep

    if control.probe_file is None:  # a caller that did not ask for the references: the folder's at least
        control = with_references(control, store.folder)

    progress = progress_of(store, specs, repetition)
    if control.warmup_rounds:
        warm_up(unfinished(specs, progress, repetition), store, control, sweep_kwargs.get("isolate", False))
    if not repetition.auto:
        return sweep(specs, store, say=say, control=control, decide=progress.decide, **sweep_kwargs)
    # A run the host kept slow is not retried within its round: a later round
    # replaces it (retries cost 15 s of waiting each, and 3 of 11 succeeded).
    transient = tuple(s for s in TRANSIENT if s != SLOW_HOST)
    return adaptive.run_rounds(progress, lambda pending, decide: sweep(
        pending, store, say=say, control=control, decide=decide, transient=transient, **sweep_kwargs),
        say=click.echo)


def unfinished(specs: list, progress: adaptive.Progress, repetition: Repetition) -> list:
    """One spec per configuration that has runs left to run and can run
    here: its first, without the profile (which follows the timed loop and
    warms nothing that is counted)."""
    from bench.grid import why_not

    first = {}
    for spec in sorted(specs, key=lambda s: s.repeat):
        config = progress.key[spec.run_id]
        if config in first or progress.status.get(spec.run_id) == "ok" or why_not(spec):
            continue
        if repetition.auto and progress.settled(config, spec.repeat):
            continue
        first[config] = replace(spec, profile=False)
    return list(first.values())


def warm_up(specs: list, store, control: pinning.Control, isolate: bool = False):
    """``--warmup-rounds``: run ``specs`` that many rounds first, as the
    counted runs will run (in the sweep's worker folder), and keep nothing
    of them but what they teach the host gate (its reference, the fastest
    probe seen, is the folder's)."""
    from bench.runner import run_all, worker_folder

    if not control.warmup_rounds or not specs:
        return
    with worker_folder(store.folder, click.echo) as work:
        click.echo(f"warm-up: {control.warmup_rounds} round(s) of {len(specs)} configuration(s), not kept")
        for _ in range(control.warmup_rounds):
            for _run in run_all(specs, work, isolate, control):
                pass


def total(counts: dict) -> int:
    """Runs a sweep covered (skipped ones included, retries not)."""
    return sum(n for status, n in counts.items() if status != "retried")


def dry_run(specs: list, out, done: set, repetition: Repetition, control: pinning.Control | None = None) -> list:
    """``--dry-run``'s lines: every run of a fixed sweep; with auto, the runs
    of the rounds every configuration gets, then what more may come; and the
    warm-up runs before them."""
    from bench import plan
    from bench.store import ResultStore

    rounds = control.warmup_rounds if control is not None else 0
    settle_asked = control is not None and control.settle
    progress = None
    if rounds or repetition.auto or settle_asked:  # reading the folder's samples takes a moment: only when needed
        if not out.is_dir():
            progress = adaptive.Progress(out, specs, _no_rows(), repetition.target, repetition.count,
                                      repetition.min_span_s)
        else:
            progress = progress_of(ResultStore(out), specs, repetition)
    warm = len(unfinished(specs, progress, repetition)) if rounds else 0
    wait, why_not = boot_wait(lambda: bool(unfinished(specs, progress, repetition))) if settle_asked else (0, None)
    lines = [why_not] if why_not else []
    lines += ([f"first a wait of {wait:.0f} s, until this machine has been {hostload.FRESH_UP} (--settle)"]
              if wait else [])
    lines += ([f"warm-up first: {rounds} round(s) of {warm} configuration(s), {rounds * warm} run(s) not kept"]
              if warm else [])
    if not repetition.auto:
        return lines + plan.dry_run(specs, done)
    first = [s for s in specs if s.repeat < adaptive.MIN_REPEATS]
    return lines + plan.dry_run(first, done) + adaptive.plan_lines(progress)


def finish(out, invocation: str, auto: bool = False) -> list:
    """After a sweep: record the load after it in env.json, and return the
    warnings to print when its repeats disagree more than its differences,
    and when the host kept runs slow past their wait (fixed repeats only:
    with ``auto`` a later round replaces such a run, :mod:`bench.adaptive`)."""
    from bench import facts, invocations, trust, trust_sentences
    from bench.store import ResultsError, ResultStore

    after = hostload.snapshot()
    env = invocations.read(out)
    record = (env.get("invocations") or {}).get(invocation, {})
    uncontrolled = {**(record.get("uncontrolled") or {}), "load_after": after}
    invocations.update(out, invocation, {"uncontrolled": uncontrolled})
    try:
        sw = facts.sweep(ResultStore(out).load())
    except ResultsError:
        return []
    # Of the folder's configurations, those this invocation ran: a second
    # sweep into a folder warns of its own, not again of the first's.
    # The warning judges the summary's implementation.
    mine = sw.runs[(sw.runs["impl"] == sw.impl) & (sw.runs["invocation"].astype(str) == invocation)]
    ran = set(mine[["devices", "strategy", "batchsize", "n_units"]].itertuples(index=False, name=None))
    control = record.get("control") or {}
    warning = trust_sentences.noise_warning(trust.noisy(sw, only=ran), uncontrolled, control.get("pinned"), shown=5)
    # By each run's latest attempt: a run that stopped, then finished on a retry, is no longer missing.
    ours = sw.runs[sw.runs["invocation"].astype(str) == invocation]
    stopped = None if auto else trust_sentences.slow_host_warning(
        int((ours["status"] == SLOW_HOST).sum()), len(ours), control.get("host_gate_tolerance"))
    return [w for w in (warning, stopped) if w]
