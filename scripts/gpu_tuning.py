"""What the captured cuBLAS path chose for its products, and what the choice
gives: builds the ``graph`` updater on GPU 0 at each batch, prints its
tuning and the replayed update's GPU time (median of 30, after warm-up).
Run it twice, with SINEBENCH_GEMM_TUNE=0 and 1, for the A/B.

    CUPY_TF32=0|1 python scripts/gpu_tuning.py [--n 1024] [--batches 4096,2048]
"""
import argparse

import sinelstm  # noqa: F401
import cupy

from sinelstm.config import TrainConfig
from sinelstm.cublas_capture import TUNE
from sinelstm.devices import parse_device_set
from sinelstm.precision import process_precision
from sinelstm.recipes import RECIPES
from sinelstm.strategy import make_strategy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batches", default="4096,2048")
    args = ap.parse_args()
    for batch in map(int, args.batches.split(",")):
        cfg = TrainConfig(n_units=args.n, batchsize=batch, recipe=RECIPES["article"], impl="graph")
        up = make_strategy("single-process", parse_device_set("0"), "graph").make_updater(cfg)
        for _ in range(5):
            up.update()
        up.synchronize()
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        times = []
        for _ in range(30):
            start.record()
            up.update()
            end.record()
            end.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, end))
        times.sort()
        print(f"{process_precision()} tune={int(TUNE)} B={batch} n={args.n}: {times[15]:.3f} ms per update "
              f"(IQR {times[7]:.3f}-{times[22]:.3f}); copy of W^T: {up._gpu.uses_wt}", flush=True)
        for what, choice in up._gpu.tuning.items():
            print(f"    {what}: {choice}")
        del up
        cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    main()
