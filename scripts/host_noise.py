"""Where host-bound timings' spread comes from: a fixed probe of host speed
timed beside sinebench's updates, for a while, on one pinned core.

If the probe (pure Python and small NumPy calls, the kind of work that
bounds an update at batch 10 / n_units 5) slows down together with the
updates, the spread is the host's speed changing (frequency, a neighbour on
the core), not sinebench. Prints per-round figures and their correlation;
writes a CSV.

    python scripts/host_noise.py --seconds 60 --core 3 --devices cpu,0 --csv noise.csv
"""
import argparse
import csv
import os
import time

import numpy as np

from sinelstm.hostspeed import probe_ms  # the gate's own probe


def steal_ticks() -> int:
    with open("/proc/stat") as f:
        return int(f.readline().split()[8])


def mhz(core: int) -> float:
    try:
        with open(f"/sys/devices/system/cpu/cpu{core}/cpufreq/scaling_cur_freq") as f:
            return int(f.read()) / 1000
    except OSError:
        pass
    cur = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("processor"):
                cur = int(line.split(":")[1])
            elif line.startswith("cpu MHz") and cur == core:
                return float(line.split(":")[1])
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--core", type=int, default=3)
    ap.add_argument("--devices", default="cpu")
    ap.add_argument("--updates", type=int, default=20)
    ap.add_argument("--csv", default="host_noise.csv")
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.core})
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    import sinelstm  # noqa: F401  (the NumPy 2 shim, before Chainer)
    import chainer
    from sinelstm.config import TrainConfig
    from sinelstm.devices import parse_device_set
    from sinelstm.recipes import RECIPES
    from sinelstm.strategy import make_strategy

    cfg = TrainConfig(n_units=5, batchsize=10, recipe=RECIPES["article"])
    ups = {}
    for spec in args.devices.split(","):
        ds = parse_device_set(spec)
        up = make_strategy("single-process", ds, "sinebench").make_updater(cfg)
        for _ in range(30):
            up.loss_value(up.update())
        ups[spec] = up

    def time_updates(up):
        out = []
        for _ in range(args.updates):
            up.synchronize()
            t0 = time.perf_counter()
            up.update()
            up.synchronize()
            out.append(time.perf_counter() - t0)
        return float(np.median(out))

    rows = []
    t_start = time.perf_counter()
    with chainer.using_config("type_check", False):
        while time.perf_counter() - t_start < args.seconds:
            st0 = steal_ticks()
            row = {"t": time.perf_counter() - t_start, "probe_ms": probe_ms(), "mhz": mhz(args.core)}
            for spec, up in ups.items():
                row[f"update_ms_{spec}"] = time_updates(up) * 1e3
            row["probe_after_ms"] = probe_ms()
            row["steal_ticks"] = steal_ticks() - st0
            row["load1"] = float(open("/proc/loadavg").read().split()[0])
            rows.append(row)
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    probe = np.array([(r["probe_ms"] + r["probe_after_ms"]) / 2 for r in rows])
    steal = sum(r["steal_ticks"] for r in rows)
    print(f"{len(rows)} rounds on core {args.core}; probe ms min {probe.min():.3f} median {np.median(probe):.3f} "
          f"max {probe.max():.3f} (max/min {probe.max() / probe.min():.2f}); steal ticks {steal}; "
          f"MHz {min(r['mhz'] for r in rows):.0f}-{max(r['mhz'] for r in rows):.0f}")
    for spec in ups:
        u = np.array([r[f"update_ms_{spec}"] for r in rows])
        r = np.corrcoef(probe, u)[0, 1]
        norm = u / probe
        print(f"  {spec}: update ms min {u.min():.3f} median {np.median(u):.3f} max {u.max():.3f} "
              f"(max/min {u.max() / u.min():.2f}); corr with probe {r:.3f}; update/probe max/min "
              f"{norm.max() / norm.min():.2f}")
        # the rounds where the probe was within 5 % of its best
        quiet = probe <= probe.min() * 1.05
        if quiet.any():
            uq = u[quiet]
            print(f"    quiet rounds ({quiet.sum()}/{len(u)}): update ms {uq.min():.3f}-{uq.max():.3f} "
                  f"median {np.median(uq):.3f}")


if __name__ == "__main__":
    main()
