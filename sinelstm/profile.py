"""Where an update's time goes: each phase timed on its own.

Every phase is bracketed by a device synchronization, which serializes work
that the timed loop overlaps; that is why this runs as a separate run after
the timed one, and why its total is an upper bound on the timed median.
"""
import time
from collections import defaultdict

import numpy as np

import sinelstm  # noqa: F401
import chainer

from sinelstm.updaters import PHASES, Step


def profile_phases(cfg, strategy, n_updates: int = 20, warmup: int = 1) -> dict | None:
    """Median milliseconds per phase over up to ``n_updates`` updates of a
    fresh updater (fewer, but at least one, once the budget's profile share
    has passed); the strategy's processes stop together. None for an updater
    without phases (a replayed CUDA graph)."""
    updater = strategy.make_updater(cfg)
    if not updater.phases():  # one captured graph: nothing to time apart
        return None
    max_seconds = cfg.budget.profile_seconds
    samples = defaultdict(list)
    t_begin = time.perf_counter()
    with chainer.using_config("type_check", False):
        for i in range(warmup + n_updates):
            step = Step()
            spent = defaultdict(float)
            for name, phase in updater.phases():
                updater.synchronize()
                t0 = time.perf_counter()
                phase(step)
                updater.synchronize()
                spent[name] += time.perf_counter() - t0
            if i >= warmup:
                for name in PHASES:
                    samples[name].append(spent[name] * 1e3)
            over = (max_seconds is not None and i >= warmup
                    and time.perf_counter() - t_begin > max_seconds)
            if strategy.agree(over):
                break
    return {name: float(np.median(samples[name])) for name in PHASES}
