"""Is a slow host slow everywhere, or on some cores at a time? (issue 14)

Two processes probing at the same moment on disjoint cores of one 2x H200
virtual machine read 1.9 and 2.8 ms (scripts/probe_pairs.py): the slowness
looked like a property of cores, not of the machine. This script moves one
process over every usable core in turn, for ``--seconds``, timing
``sinelstm.hostspeed.probe_ms`` on each (pinned to that core alone), and
writes every reading (``--out``, CSV: t, cpu, ms). It prints:

* per core: its median and its share of slow readings (over 1.2x the
  fastest reading of the whole run, the gate's default tolerance);
* whether cores are slow together: the share of sweeps over the cores with
  none, some, or all of them slow;
* whether the fastest cores now are fast a little later: for the quarter of
  cores fastest in one sweep, their share of slow readings 1, 5, 20 and
  50 sweeps on, against all cores' share (the question for choosing cores by
  speed before a run).

    python3 scripts/core_noise.py --seconds 60 --out core_noise.csv
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sinelstm import compat  # noqa: E402,F401  (NumPy 2 shim before Chainer)
from sinelstm import hostspeed  # noqa: E402

TOLERANCE = 0.2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--out", default="core_noise.csv")
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    hostspeed.probe_ms()
    rows, sweeps = [], []
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < args.seconds:
            sweep = []
            for c in cpus:
                os.sched_setaffinity(0, {c})
                ms = hostspeed.probe_ms()
                rows.append((time.perf_counter() - t0, c, ms))
                sweep.append(ms)
            sweeps.append(sweep)
    finally:
        os.sched_setaffinity(0, cpus)
    with open(args.out, "w") as f:
        f.write("t,cpu,ms\n")
        f.writelines(f"{t:.4f},{c},{ms:.5f}\n" for t, c, ms in rows)
    m = np.array(sweeps)  # sweep x core
    if not len(m):
        sys.exit("core_noise.py: no sweep over the cores finished; give more --seconds")
    best = m.min()
    slow = m > best * (1 + TOLERANCE)
    print(f"{len(cpus)} cores, {len(m)} sweeps of {args.seconds / max(1, len(m)):.2f} s; fastest reading "
          f"{best:.3f} ms; slow = over {best * (1 + TOLERANCE):.3f} ms")
    print("per core: cpu median slow-share")
    for i, c in enumerate(cpus):
        print(f"  {c:3d} {np.median(m[:, i]):.3f} {slow[:, i].mean():.2f}")
    share = slow.mean(axis=1)
    print(f"sweeps with no core slow {np.mean(share == 0):.2f}, some {np.mean((share > 0) & (share < 1)):.2f}, "
          f"all {np.mean(share == 1):.2f}; mean share of cores slow {share.mean():.2f}")
    quarter = max(1, len(cpus) // 4)
    for lag in (1, 5, 20, 50):
        if len(m) <= lag:
            continue
        picked = [slow[s + lag, np.argsort(m[s])[:quarter]].mean() for s in range(len(m) - lag)]
        print(f"fastest quarter of a sweep, {lag} sweeps on: slow {np.mean(picked):.2f} (all cores {slow.mean():.2f})")


if __name__ == "__main__":
    main()
