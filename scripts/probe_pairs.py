"""Does the host-speed probe read slower when the ranks of one job probe at
once, and do hyperthread siblings explain it? (issue 14: ChainerMN ranks read
the probe >20 % slow for 15 s at a time on 4x H200, where one process does
not.)

Prints the CPU topology (each logical CPU's physical core and its siblings),
the core sets ``bench.pinning.core_set`` gives the ranks of a 2- and a 4-rank
job, then times ``sinelstm.hostspeed.probe_ms`` in several processes at once,
each pinned to a set of cores, started together (a barrier), ``--probes``
each:

  alone       one process on rank 0's set (the reference)
  ranksN      N processes on the N ranks' sets, as a sweep pins them
  siblings    2 processes, each on one logical CPU, the two of one core
  distinct    2 processes, each on one logical CPU, of two cores
  ranksN-phys N processes on sets of whole physical cores (no core shared)

    python3 scripts/probe_pairs.py [--probes 120]   # on the machine itself
"""
import argparse
import multiprocessing as mp
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import pinning  # noqa: E402

CPU = Path("/sys/devices/system/cpu")


def topology(usable):
    """logical CPU -> (socket, core id), from sysfs (one core per CPU where unknown)."""
    out = {}
    for c in usable:
        top = CPU / f"cpu{c}" / "topology"
        try:
            out[c] = (int((top / "physical_package_id").read_text()), int((top / "core_id").read_text()))
        except (OSError, ValueError):
            out[c] = (0, c)
    return out


def siblings(cpu):
    try:
        return pinning.parse_cpulist((CPU / f"cpu{cpu}" / "topology" / "thread_siblings_list").read_text())
    except OSError:
        return [cpu]


def physical_sets(usable, topo, ranks):
    """``ranks`` disjoint sets of whole physical cores, from the first NUMA node."""
    node = pinning.node_order(usable)[0]
    cores = {}
    for c in node:
        cores.setdefault(topo[c], []).append(c)
    groups = list(cores.values())
    per = len(groups) // ranks
    if per == 0:
        return None  # fewer physical cores than ranks
    return [sorted(c for g in groups[r * per:(r + 1) * per] for c in g) for r in range(ranks)]


def _child(cpus, probes, barrier, queue, index):
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"
    times = []
    try:
        os.sched_setaffinity(0, cpus)
        from sinelstm import compat  # noqa: F401  (NumPy 2 shim before Chainer)
        from sinelstm import hostspeed
        for _ in range(3):
            hostspeed.probe_ms()  # warm: imports, the probe's model
        barrier.wait(timeout=300)
        times = [hostspeed.probe_ms() for _ in range(probes)]
    finally:  # an answer whatever happened, so the parent never waits forever
        queue.put((index, times))


def run_case(name, sets, probes):
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(len(sets)), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(s, probes, barrier, queue, i)) for i, s in enumerate(sets)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=600) for _ in procs)  # a child that died hard: an error, not a hang
    for p in procs:
        p.join()
    for i, s in enumerate(sets):
        t = np.array(results[i])
        if not len(t):
            print(f"{name:12s} proc {i} cpus {pinning.format_cpulist(s):>14s}: failed", flush=True)
            continue
        print(f"{name:12s} proc {i} cpus {pinning.format_cpulist(s):>14s}: median {np.median(t):.3f} ms "
              f"p10 {np.percentile(t, 10):.3f} p90 {np.percentile(t, 90):.3f} min {t.min():.3f}", flush=True)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", type=int, default=120)
    args = ap.parse_args()
    usable = pinning.usable_cpus()
    topo = topology(usable)
    print("logical CPUs:", len(usable), "physical cores:", len(set(topo.values())),
          "sockets:", len({s for s, _ in topo.values()}))
    print("siblings of cpu0..3:", [siblings(c) for c in usable[:4]])
    print("NUMA nodes:", [pinning.format_cpulist(g) for g in pinning.node_order(usable)])
    node = pinning.node_order(usable)[0]
    cases = [("alone", [None])]
    for ranks in (2, 4):
        threads = max(1, len(node) // ranks)
        sets = [pinning.core_set([None] * ranks, r, ranks, threads, usable) for r in range(ranks)]
        print(f"ranks{ranks} sets as pinned:", [pinning.format_cpulist(s) for s in sets],
              "shared physical cores:", len({topo[c] for c in sets[0]} & {topo[c] for s in sets[1:] for c in s}))
        cases.append((f"ranks{ranks}", sets))
        cases.append((f"ranks{ranks}-phys", physical_sets(usable, topo, ranks)))
    cases[0] = ("alone", [cases[1][1][0]])
    first = node[0]
    sib = [c for c in siblings(first) if c != first]
    if sib:
        cases.append(("siblings", [[first], [sib[0]]]))
    other = next((c for c in node if topo[c] != topo[first]), None)
    if other is not None:
        cases.append(("distinct", [[first], [other]]))
    for name, sets in cases:
        if not sets or not all(sets):
            print(f"{name:12s} skipped: not enough cores", flush=True)
            continue
        run_case(name, sets, args.probes)


if __name__ == "__main__":
    main()
