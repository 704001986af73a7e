"""The report's uncertainty in English: intervals beside speedups, which
differences the data support, and the warning that a machine was noisy.
Computes nothing (that is :mod:`bench.trust` and :mod:`bench.intervals`)."""
from bench import hostload, intervals, trust
from bench.sentences import at, fmt_ms, fmt_x
from sinelstm import hostspeed

ADVICE = ("to measure smaller differences, stop other work on the machine, keep pinning and the host-speed "
          "gate on (the defaults; --no-pin, --host-gate off turn them off) and let noisy configurations run more "
          "rounds (--repeats auto)")


def interval(c: intervals.Comparison | None, slower: bool = False) -> str:
    """' (95 % interval 1.3×–1.7×)', or '' without one; ``slower``: of the
    inverse ratio, for a sentence that says how many times slower. A tight
    interval restates the point with its ends: ' (1.88×; 95 % interval
    1.88×–1.89×)'."""
    parts = interval_parts(c, slower)
    if parts is None:
        return ""
    point, ends = parts
    return f" ({point}; {ends})" if point else f" ({ends})"


# An interval narrower than this (high / low - 1) is written with more
# digits where two already tell its ends apart: across a rounding boundary
# two digits read as a wide interval around the wrong point (1.947 to
# 1.952 read '1.9×–2×', the point '1.9×').
_TIGHT = 0.05


def interval_parts(c: intervals.Comparison | None, slower: bool = False) -> tuple | None:
    """(the point to write instead of the sentence's own, or None; '95 %
    interval LOW–HIGH'), or None without an interval."""
    if c is None or c.interval is None:
        return None
    low, high = (1 / c.interval.high, 1 / c.interval.low) if slower else (c.interval.low, c.interval.high)
    if fmt_x(low) != fmt_x(high) and high > low * (1 + _TIGHT):
        return None, f"95 % interval {fmt_x(low)}–{fmt_x(high)}"
    # Tight: write the point with its ends, with as many significant digits
    # as it takes for the ends to differ (at most four), so that the point
    # never reads outside them.
    point = 1 / c.interval.value if slower else c.interval.value
    for digits in (3, 4):
        if _digits(low, digits) != _digits(high, digits):
            break
    lo, pt, hi = (f"{_digits(x, digits)}×" for x in (low, point, high))
    return pt, f"95 % interval {lo}–{hi}"


def _digits(x: float, digits: int) -> str:
    """``x`` to ``digits`` significant digits, trailing zeros kept (0.530);
    whole numbers from ``digits`` digits on (1,520), never an exponent."""
    return f"{x:,.0f}" if abs(x) >= 10 ** (digits - 1) else f"{x:#.{digits}g}".rstrip(".")


def verdict_word(c: intervals.Comparison | None, faster: str, slower: str) -> str:
    """How a comparison reads: ``faster``/``slower`` only where the data
    support it, else 'no clear winner'."""
    if c is not None and c.clear is False:
        return "no clear winner"
    return faster if (c.speedup if c is not None else 1) > 1 else slower


def coverage(ev: trust.Evidence) -> str | None:
    """What the intervals rest on; None where no run counted (nothing to
    say: the failure and slow-host lines say why)."""
    if not ev.runs:
        return None
    if ev.coverage == "all":
        return ("Intervals are 95 % bootstrap intervals over the repeats and the per-update times within each "
                "(stored in samples/); a winner is named only where the interval excludes 1.0× and a "
                "Mann–Whitney test on the per-update times agrees.")
    if ev.coverage == "some":
        return (f"Only {ev.runs_with_samples} of {ev.runs} finished runs have stored per-update times; the "
                f"others count by their median, so their intervals show repeat-to-repeat noise only.")
    return ("This folder has no per-update times (it predates samples/): the intervals here come from the "
            "repeat medians alone, so they show repeat-to-repeat noise only, and configurations with one "
            "repeat have none.")


def tally(t: trust.Tally, other: str, base: str) -> str | None:
    if not t.judged:
        return None
    out = (f"Judged by the intervals: {other} is clearly faster than {base} in {t.other_wins} configurations, "
           f"{base} in {t.base_wins}; too close to call (the interval includes 1.0×): {t.unclear}")
    return out + (f"; {t.unknown} have no interval (one repeat)." if t.unknown else ".")


def stop_reasons(counts) -> str | None:
    if counts is None or counts.empty or set(counts.index) <= {"fixed"}:
        return None
    words = {"stable": "stable within the target interval", "cap": "stopped at the repeat cap",
             "rounds": "out of rounds before the repeat cap (runs the host kept slow, or not counted)",
             "failed": "ended by a failed run", "fixed": "run a fixed number of times"}
    return "Repeats (--repeats auto): " + ", ".join(f"{n} configurations {words.get(k, k)}"
                                                    for k, n in counts.items()) + "."


def noise_warning(noisy: list, uncontrolled: dict | None = None, pinned=None, shown: int = 3) -> str | None:
    """The warning at the top of the report and the end of a sweep."""
    if not noisy:
        return None
    return (f"This machine was noisy: the repeats of {len(noisy)} configuration(s) disagree by more than the "
            f"differences they are compared on — " + noise_detail(noisy, uncontrolled, pinned, shown))


def noise_detail(noisy: list, uncontrolled: dict | None = None, pinned=None, shown: int = 3) -> str:
    """Which configurations, by how much, and what to do."""
    parts = [f"{e.label} at {at(e.batch, e.units)} ({fmt_ms(e.ms_min)}–{fmt_ms(e.ms_max)}, {e.spread:.0%} apart, "
             f"against a {e.difference:.0%} difference in {e.against})" for e in noisy[:shown]]
    more = f" and {len(noisy) - shown} more" if len(noisy) > shown else ""
    return (f"{'; '.join(parts)}{more}. Their speedups are within the noise; " + ADVICE
            + _conditions(uncontrolled, pinned) + ".")


def slow_host_warning(stopped: int, runs: int, tolerance: float | None) -> str | None:
    """The end of a sweep whose runs the host kept slow: they are not
    failures, so say what brings them back."""
    if not stopped:
        return None
    by = f"more than {tolerance:.0%} " if isinstance(tolerance, (int, float)) else ""
    return (f"{stopped} of {runs} runs stopped untimed as slow-host: the host stayed {by}slower than its reference "
            f"probe past the {hostspeed.MAX_WAIT_S:g} s a run may wait (other programs running, a busy virtual "
            f"machine). Rerun the same command when the machine is quieter: the finished runs are kept, and every "
            f"run without a finished row runs again; or sweep into a new folder with --host-gate off to time every "
            f"run at whatever speed the host has (the times then vary with it).")


def noise_headline(noisy: list) -> str | None:
    """The page's first line about noise; :func:`noise_warning` is the detail."""
    if not noisy:
        return None
    return (f"Noisy machine: the repeats of {len(noisy)} configuration(s) disagree by more than the differences "
            f"they are compared on, so those speedups are within the noise.")


def _conditions(uncontrolled: dict | None, pinned) -> str:
    bits = []
    if pinned is False:
        bits.append("this sweep ran unpinned")
    up = hostload.fresh((uncontrolled or {}).get("load_before"))
    if up is not None:
        bits.append(f"the machine had booted {up:.0f} s before the sweep, and {hostload.FRESH_SLOWER}, "
                    "which --settle waits out")
    for when in ("before", "after"):
        load = (uncontrolled or {}).get(f"load_{when}") or {}
        if load.get("loadavg_1_5_15min"):
            busy = ", ".join(f"{p['command']} ({p['cpu']:.1f} cores)" for p in load.get("busy_processes") or [])
            bits.append(f"load average {load['loadavg_1_5_15min'][0]:g} {when} the sweep"
                        + (f", busy: {busy}" if busy else ""))
    return f" ({'; '.join(bits)})" if bits else ""


def host_speed(h) -> str | None:
    """The host's speed while timed (:func:`bench.trust.host_speed`)."""
    if h is None:
        return None
    runs = f"{h.runs} counted {h.whose} run{'s were' if h.runs != 1 else ' was'}"
    return (f"While the {runs} timed, the gate's probe of host speed ({trust.PROBE_WORDS}) read "
            f"{h.median_ms:.3f} ms at the median ({h.low_ms:.3f}–{h.high_ms:.3f}). Host-bound times follow it, and "
            f"the intervals here cover only this sweep's repeats: where the host's speed drifts between sweeps, so "
            f"do those times. Set two sweeps' figures at the smallest sizes side by side with this reading, or by "
            f"their time over the probe (All configurations).")


def host_waits(w) -> str | None:
    """What the host-speed gate did (:func:`bench.trust.host_waits`)."""
    if w is None:
        return None
    many = w.stopped != 1
    after = (f" {w.stopped} other run{'s' if many else ''} met a host still slow after the {w.cap:g} s a run may "
             f"wait: {'they' if many else 'it'} stopped untimed and {'are' if many else 'is'} not counted "
             f"(status slow-host)." if w.stopped else "")
    if w.uncounted:
        many = w.uncounted != 1
        after += (f" {w.uncounted} finished run{'s' if many else ''} {'were' if many else 'was'} timed while the "
                  f"host was more than {w.tolerance:.0%} slower than at {'their' if many else 'its'} "
                  f"configuration's fastest run, which the gate learned only later: not counted.")
    if w.disturbed:
        many = w.disturbed != 1
        after += (f" {w.disturbed} finished run{'s' if many else ''} {'were' if many else 'was'} disturbed while "
                  f"timed: {'their' if many else 'its'} per-update spread (75th percentile over 25th, minus 1) was "
                  f"above both {hostspeed.DISTURBED_FLOOR:.0%} and {hostspeed.DISTURBED_FACTOR:g}x the steadiest "
                  f"run's of {'their' if many else 'its'} configuration, the mark of interruptions inside the run "
                  f"that the host probe between stretches of updates cannot see: not counted.")
    if not w.slow_runs:
        return (f"The host-speed gate never found the host slow in the {w.runs} finished "
                f"run{'s' if w.runs != 1 else ''} it checked.{after}")
    capped = (f"; {w.capped} reached the {w.cap:g} s cap, so their timings include slow phases" if w.capped
              else "")
    return (f"The host-speed gate found the host slow in {w.slow_runs} of {w.runs} finished runs: they waited "
            f"{w.wait_s:.1f} s in all (at most {w.max_wait_s:.1f} s in one run){capped}.{after}")
