"""Per-update clocks that do not add a host sync to the timed loop.

On a GPU, an event is recorded on the master device's stream before and after
each update and read only after the loop: the gap between them is when the
GPU reached each point, which is the update's pace whether the host or the
GPU is the bottleneck. On the CPU, Chainer runs synchronously and a
``perf_counter`` pair is exact.
"""
import time

import numpy as np


class CpuUpdateTimer:
    def __init__(self):
        self._spans = []

    def start(self):
        self._t0 = time.perf_counter()

    def stop(self):
        self._spans.append(time.perf_counter() - self._t0)

    def durations_ms(self) -> np.ndarray:
        return np.asarray(self._spans) * 1e3


class EventPairTimer:
    """A pair of device events around every update, read after the loop;
    subclasses say how to record an event and read the time between two."""

    def __init__(self):
        self._pairs = []

    def start(self):
        self._start = self._event()

    def stop(self):
        self._pairs.append((self._start, self._event()))

    def durations_ms(self) -> np.ndarray:
        if not self._pairs:
            return np.zeros(0)
        self._pairs[-1][1].synchronize()
        return np.array([self._elapsed_ms(a, b) for a, b in self._pairs])


class CudaUpdateTimer(EventPairTimer):
    def __init__(self, device):
        import cupy

        super().__init__()
        self._cupy = cupy
        self._device = device

    def _event(self):
        with self._device.device:
            ev = self._cupy.cuda.Event()
            ev.record()
        return ev

    def _elapsed_ms(self, a, b) -> float:
        return self._cupy.cuda.get_elapsed_time(a, b)


def make_update_timer(device):
    """A clock for an updater's device: a Chainer device, or one that brings
    its own (the PyTorch reference's, :class:`sinelstm.torch_ref.TorchDevice`)."""
    if hasattr(device, "update_timer"):
        return device.update_timer()
    return CpuUpdateTimer() if device.xp is np else CudaUpdateTimer(device)


def summarize_ms(ms: np.ndarray) -> dict:
    """Median and interquartile range of per-update times."""
    if len(ms) == 0:
        return {"median": float("nan"), "p25": float("nan"), "p75": float("nan")}
    p25, med, p75 = np.percentile(ms, [25, 50, 75])
    return {"median": float(med), "p25": float(p25), "p75": float(p75)}
