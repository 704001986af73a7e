"""Where host-bound timings' spread comes from: probes of host speed timed
beside sinebench's updates, for a while, on pinned cores.

If a probe slows down together with the updates, the spread is the host's
speed changing (frequency, a neighbour on the core), not sinebench, and the
probe can gate it (sinelstm.hostspeed). Two probes: the gate's (CPU updates
of a fixed model, the median of five) and its first one (pure Python and
small NumPy calls, the fastest of three). Prints per-round figures and each
probe's correlation with the updates; writes a CSV.

    python scripts/host_noise.py --seconds 60 --cores 3 --devices cpu,0 --csv noise.csv
    python scripts/host_noise.py --cores 0-31 --threads 32   # as a sweep's pinned worker runs
"""
import argparse
import csv
import os
import time

import numpy as np

from sinelstm.hostspeed import DEFAULT_TOLERANCE, probe_ms  # the gate's own probe: CPU updates of a fixed model


def loop_probe_ms() -> float:
    """The gate's first probe, for comparison: ~0.7 ms of pure Python and
    small NumPy calls, the fastest of three."""
    best = float("inf")
    a = np.ones(8, np.float32)
    scale, shift = np.float32(1.0001), np.float32(0.5)
    for _ in range(3):
        t0 = time.perf_counter()
        d = {}
        for i in range(400):
            a = a * scale + shift
            d[i & 15] = d.get(i & 15, 0) + i
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


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
    ap.add_argument("--cores", default="3", help="CPU list to pin to, e.g. 3 or 0-31")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads")
    ap.add_argument("--devices", default="cpu")
    ap.add_argument("--updates", type=int, default=20)
    ap.add_argument("--csv", default="host_noise.csv")
    args = ap.parse_args()
    from bench.pinning import parse_cpulist
    cores = parse_cpulist(args.cores)
    os.sched_setaffinity(0, cores)
    from threadpoolctl import threadpool_limits
    threadpool_limits(args.threads)
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

    probes = {"probe": probe_ms, "loop_probe": loop_probe_ms}
    rows = []
    t_start = time.perf_counter()
    with chainer.using_config("type_check", False):
        while time.perf_counter() - t_start < args.seconds:
            st0 = steal_ticks()
            row = {"t": time.perf_counter() - t_start, "mhz": mhz(cores[0])}
            row.update({f"{name}_ms": probe() for name, probe in probes.items()})
            for spec, up in ups.items():
                row[f"update_ms_{spec}"] = time_updates(up) * 1e3
            row.update({f"{name}_after_ms": probe() for name, probe in probes.items()})
            row["steal_ticks"] = steal_ticks() - st0
            row["load1"] = float(open("/proc/loadavg").read().split()[0])
            rows.append(row)
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    steal = sum(r["steal_ticks"] for r in rows)
    print(f"{len(rows)} rounds on cores {args.cores} ({args.threads} BLAS threads); steal ticks {steal}; "
          f"MHz {min(r['mhz'] for r in rows):.0f}-{max(r['mhz'] for r in rows):.0f}")
    for spec in ups:
        u = np.array([r[f"update_ms_{spec}"] for r in rows])
        print(f"  {spec}: update ms min {u.min():.3f} median {np.median(u):.3f} max {u.max():.3f} "
              f"(max/min {u.max() / u.min():.2f})")
    for name in probes:
        # a round's probe: before and after its updates, the slower (the gate would have waited for either)
        p = np.array([max(r[f"{name}_ms"], r[f"{name}_after_ms"]) for r in rows])
        fast = p <= p.min() * (1 + DEFAULT_TOLERANCE)
        print(f"{name}: ms min {p.min():.3f} median {np.median(p):.3f} max {p.max():.3f} "
              f"(max/min {p.max() / p.min():.2f}); rounds the gate would time: {fast.sum()}/{len(p)}")
        for spec in ups:
            u = np.array([r[f"update_ms_{spec}"] for r in rows])
            uf = u[fast]
            print(f"  {spec}: corr with {name} {np.corrcoef(p, u)[0, 1]:.3f}; updates in those rounds "
                  f"{uf.min():.3f}-{uf.max():.3f} ms, median {np.median(uf):.3f}, "
                  f"90th/10th percentile {np.percentile(uf, 90) / np.percentile(uf, 10):.3f}")

if __name__ == "__main__":
    main()
