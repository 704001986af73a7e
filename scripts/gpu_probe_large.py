"""Where one update's time goes at a large size on one GPU (no sweep):

    CUPY_TF32=0|1 [PROBE_IMPLS=sinebench,graph] [PROBE_NO_PRODUCTS=1] \
        python scripts/gpu_probe_large.py [BATCH ...]   (default 4096 1024)

For each batch at n_units 1024: the matrix products the fused node runs
(CuPy and, where installed, PyTorch on the same shapes: what cuBLAS can do),
the whole eager update timed by events (GPU pace) and by the host's clock
without a sync (how long Python takes to issue it), and the per-phase profile.
"""
import os
import sys
import time

import numpy as np

import sinelstm  # noqa: F401
import chainer
import cupy

from sinelstm.config import TrainConfig
from sinelstm.devices import parse_device_set
from sinelstm.profile import profile_phases
from sinelstm.recipes import RECIPES
from sinelstm.strategy import SingleProcess
from sinelstm.timing import make_update_timer

N, T = 1024, 10
TF32 = os.environ.get("CUPY_TF32") == "1"


def gpu_ms(fn, reps=20):
    for _ in range(3):
        fn()
    a, b = cupy.cuda.Event(), cupy.cuda.Event()
    a.record()
    for _ in range(reps):
        fn()
    b.record()
    b.synchronize()
    return cupy.cuda.get_elapsed_time(a, b) / reps


def products(B):
    rng = cupy.random.default_rng(0)
    h = rng.standard_normal((B, N), dtype=cupy.float32)
    w = rng.standard_normal((4 * N, N), dtype=cupy.float32)
    dg = rng.standard_normal((B, 4 * N), dtype=cupy.float32)
    dgs = rng.standard_normal(((T - 1) * B, 4 * N), dtype=cupy.float32)
    hs = rng.standard_normal(((T - 1) * B, N), dtype=cupy.float32)
    shapes = {
        "fwd h@W^T": (lambda: h.dot(w.T), 2 * B * N * 4 * N),
        "bwd dg@W": (lambda: dg.dot(w), 2 * B * N * 4 * N),
        "dW dg^T@h (9 steps)": (lambda: dgs.T.dot(hs), 2 * (T - 1) * B * N * 4 * N),
    }
    for name, (fn, flops) in shapes.items():
        ms = gpu_ms(fn)
        print(f"  cupy  {name:22s} B={B}: {ms:7.3f} ms  {flops / ms / 1e9:6.1f} TFLOP/s", flush=True)
    try:
        import torch
    except ImportError:
        return
    torch.backends.cuda.matmul.allow_tf32 = TF32
    th, tw, tdg = (torch.as_tensor(x, device="cuda") for x in (h, w, dg))
    tdgs, ths = torch.as_tensor(dgs, device="cuda"), torch.as_tensor(hs, device="cuda")
    for name, fn, flops in (("fwd", lambda: th @ tw.T, 2 * B * N * 4 * N),
                            ("dW", lambda: tdgs.T @ ths, 2 * (T - 1) * B * N * 4 * N)):
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(20):
            fn()
        e.record()
        e.synchronize()
        ms = s.elapsed_time(e) / 20
        print(f"  torch {name:22s} B={B}: {ms:7.3f} ms  {flops / ms / 1e9:6.1f} TFLOP/s", flush=True)


def update(B, impl):
    strategy = SingleProcess(parse_device_set("0"))
    cfg = TrainConfig(batchsize=B, n_units=N, recipe=RECIPES["article"], precision="tf32" if TF32 else "fp32",
                      impl=impl)
    u = strategy.make_updater(cfg)
    for _ in range(5):
        u.update()
    u.synchronize()
    timer = make_update_timer(strategy.devices[0])
    host = []
    for _ in range(30):
        t0 = time.perf_counter()
        timer.start()
        u.update()
        timer.stop()
        host.append(time.perf_counter() - t0)
    ms = timer.durations_ms()
    print(f"  {impl} {u.path} update B={B}: GPU pace median {np.median(ms):.3f} ms (IQR {np.percentile(ms, 25):.3f}-"
          f"{np.percentile(ms, 75):.3f}); host issue median {1e3 * np.median(host):.3f} ms", flush=True)
    del u
    prof = profile_phases(cfg, strategy, n_updates=10)
    print(f"  phases B={B}: {prof}", flush=True)


if __name__ == "__main__":
    print(f"== {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()} TF32={TF32}", flush=True)
    with chainer.using_config("type_check", False):
        for B in [int(b) for b in sys.argv[1:]] or [4096, 1024]:
            if not os.environ.get("PROBE_NO_PRODUCTS"):
                products(B)
            for impl in os.environ.get("PROBE_IMPLS", "sinebench").split(","):
                update(B, impl)
