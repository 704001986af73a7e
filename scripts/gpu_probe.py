"""Quick timing of one update per implementation on one device (no sweep):
python scripts/gpu_probe.py [DEVICE_SET, e.g. 0 or cpu]; prints median ms and a cProfile top list."""
import cProfile
import pstats
import sys

import numpy as np

import sinelstm  # noqa: F401
import chainer

from sinelstm.config import TrainConfig
from sinelstm.devices import parse_device_set
from sinelstm.recipes import RECIPES
from sinelstm.strategy import SingleProcess
from sinelstm.timing import make_update_timer

spec = sys.argv[1] if len(sys.argv) > 1 else "0"
strategy = SingleProcess(parse_device_set(spec))
device = strategy.devices[0]
with chainer.using_config("type_check", False):
    for impl in ("sinebench", "article"):
        for batch, units in ((10, 5), (4096, 1024)):
            u = strategy.make_updater(TrainConfig(batchsize=batch, n_units=units, impl=impl, recipe=RECIPES["article"]))
            for _ in range(5):
                u.update()
            u.synchronize()
            timer = make_update_timer(device)
            n = 200 if units < 100 else 30
            for _ in range(n):
                timer.start()
                u.update()
                timer.stop()
            ms = timer.durations_ms()
            print(f"{impl:10s} {device} b{batch} n{units}: median {np.median(ms):.2f} ms "
                  f"IQR {np.percentile(ms, 25):.2f}-{np.percentile(ms, 75):.2f}", flush=True)
    u = strategy.make_updater(TrainConfig(n_units=5, recipe=RECIPES["article"]))
    for _ in range(10):
        u.update()
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(200):
        u.update()
    u.synchronize()
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(15)
