"""Print, per configuration, how far its repeats' medians disagree in each
results folder given (slowest over fastest, minus 1), with the repeats, the
95 % interval of the median (from stored samples) and why the repeats
stopped; scripts/gpu_trust.sh's table.

    python3 scripts/trust_spread.py results/X/before results/X/after
    python3 scripts/trust_spread.py --across results/X/s1 results/X/s2 results/X/s3

``--across``: the folders are independent sweeps of the same
configurations; per configuration, the figure each one reports (the median
over its counted repeats, as the report does) and how far those disagree
(slowest over fastest, minus 1): what a reader who runs the sweep again
sees move. Beside it, the same of the report's ms per update over the host
probe (``per_probe`` of :func:`bench.analysis.aggregate`): where the host
bounds the time, its drift cancels there; where the device does, the ratio
takes the probe's noise on instead. For an MPI job the probe is its
slowest rank's at each check; where the rows have that, a third figure
(``/rank0``) gives the same over rank 0's own probe. Below them, each
sweep's host probe while timed (the median over its counted runs of one
kind, :func:`bench.trust.host_speed`).
"""
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import analysis, facts, intervals, samples, trust  # noqa: E402
from bench.store import ResultStore  # noqa: E402
from sinelstm.names import series_label  # noqa: E402

KEYS = ["impl", "devices", "strategy", "batchsize", "n_units"]


def rows(folder: Path) -> dict:
    runs = ResultStore(folder).load()["runs"]
    finished = runs[runs["status"] == "ok"]
    counts = analysis.counted(finished).to_numpy()  # analysis.ok_runs's rule, once for both
    ok = finished[counts]
    uncounted = finished[~counts].groupby(KEYS).size().to_dict()
    got = samples.read_all(folder, list(ok["run_id"]))
    out = {}
    stopped = runs[runs["status"] == "slow-host"].groupby(KEYS).size().to_dict()
    for (im, d, s, b, n), g in ok.groupby(KEYS):
        ms = g["ms_per_update_median"]
        rep = intervals.Repeats.of(ms.tolist(), [got.get(r) for r in g["run_id"]])
        ci = intervals.median_interval(rep, f"{im}|{d}|{s}|{b}|{n}")
        reasons = sorted({str(r) for r in g["stop_reason"].dropna() if str(r)})
        threads = sorted({int(t) for t in g["threads"].dropna()})
        out[f"{series_label(d, s, im)} b{b}/n{n}"] = (
            f"{ms.max() / ms.min() - 1:7.1%} {len(g):3d} {ms.median():9.3f} "
            + (f"  ±{ci.rel_halfwidth:5.1%}" if ci else "      -")
            + f"  {','.join(reasons) or '-':<8} {','.join(map(str, threads)) or '-':<4} "
            + (str(g['cpus'].dropna().iloc[0]) if g["cpus"].notna().any() else "-")
            + (f"  waited {g['host_wait_s'].sum():.1f} s, slow at {g['host_slow'].mean():.0%} of checks"
               if "host_slow" in g and g["host_slow"].notna().any() else "")
            + (f"; {stopped[(im, d, s, b, n)]} stopped slow-host" if (im, d, s, b, n) in stopped else "")
            + (f"; {uncounted[(im, d, s, b, n)]} not counted" if (im, d, s, b, n) in uncounted else ""))
    return out


def across(folders):
    reported, probes, rank0 = {}, {}, {}
    names = [Path(f).name for f in folders]
    if len(set(names)) < len(names):  # s1/ of two calls: say which
        names = [str(f) for f in folders]
    for f, name in zip(folders, names):
        data = ResultStore(Path(f)).load()
        sw = facts.sweep(data)  # the report's aggregate and counted runs, each once
        probes[name] = trust.host_speed(sw.ok)
        for key, r in _configs(sw.agg):
            reported.setdefault(key, {})[name] = (r["ms"], r["repeats"], _ratio(r))
        # The same over each run's own probe (an MPI job: rank 0's), without
        # the slowest rank's: only MPI jobs' figures differ.
        for key, r in _configs(analysis.aggregate(data["runs"].drop(columns=["host_probe_slowest_ms"]))):
            rank0.setdefault(key, {})[name] = _ratio(r)
    differs = {k for k, got in rank0.items() if got != {n: v[2] for n, v in reported[k].items()}}
    extra = f" {'/rank0':>7}" if differs else ""
    print(f"{'configuration':<72} {'spread':>7} {'/probe':>7}{extra}  reported median ms "
          f"(counted repeats) [median of ms / probe] per sweep")
    for config in sorted(reported):
        got = reported[config]
        by_rank0 = (" " + _spread(list(rank0[config].values()), len(folders)) if config in differs
                    else " " * len(extra))
        print(f"{config:<72} {_spread([v[0] for v in got.values()], len(folders))} "
              f"{_spread([v[2] for v in got.values()], len(folders))}{by_rank0}  " + "  ".join(
                  f"{name} {got[name][0]:.3f} ({got[name][1]})"
                  + (f" [{got[name][2]:.3f}]" if got[name][2] is not None else "")
                  if name in got else f"{name} (not run)" for name in names))
    print(f"{'host probe while timed, ms (median of counted runs of one kind)':<72} {'':>15}{' ' * len(extra)}  "
          + "  ".join(
        f"{name} {probes[name].median_ms:.3f} ({probes[name].whose})" if probes[name] else f"{name} -"
        for name in names))


def _configs(agg):
    """(name, row) per configuration: every key the report groups by."""
    for r in agg.to_dict("records"):
        yield (f"{series_label(r['devices'], r['strategy'], r['impl'])} b{r['batchsize']}/n{r['n_units']} "
               + " ".join(str(r[k]) for k in ("recipe", "seqlen", *analysis.AXES))), r


def _ratio(r):
    return r["per_probe"] if pd.notna(r["per_probe"]) else None  # NaN: no probe


def _spread(values, wanted: int) -> str:
    """Slowest over fastest, minus 1, once every sweep has a value."""
    known = [v for v in values if v is not None]
    return f"{max(known) / min(known) - 1:7.1%}" if len(known) == wanted and known else "      -"


def main(folders):
    if folders and folders[0] == "--across":
        return across(folders[1:])
    print(f"{'configuration':<44} {'folder':<14} {'spread':>7} {'n':>3} {'median ms':>9}  {'95% CI':>6}  "
          f"{'stop':<8} {'thr':<4} cpus")
    tables = {Path(f).name: rows(Path(f)) for f in folders}
    for config in sorted({c for t in tables.values() for c in t}):
        for name, table in tables.items():
            print(f"{config:<44} {name:<14} {table.get(config, '      (not run)')}")


if __name__ == "__main__":
    main(sys.argv[1:])
