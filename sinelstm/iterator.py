"""Random BPTT windows over the training series.

The article's iterator drew ``batchsize`` start offsets, then stepped them one
point at a time, wrapping around the end of the data and never resetting the
LSTM state (faults 3-5 in ``shared/seed/NOTES.md``). Here every update is one
window per offset: ``seqlen`` inputs ``x[o : o+seqlen]`` and their next
values ``x[o+1 : o+seqlen+1]``, read from a zero LSTM state; no window crosses
the end of the training data.
"""
import numpy as np

import sinelstm  # noqa: F401
import chainer


class WindowIterator(chainer.dataset.Iterator):
    """Yields one int64 array of ``batchsize`` window start offsets per update.

    Deterministic from ``seed`` and independent of NumPy's global RNG. One
    epoch is as many windows as there are distinct start offsets, and
    ``epoch`` is always ``floor(epoch_detail)``.
    """

    def __init__(self, n_train: int, batchsize: int, seqlen: int, seed: int = 0):
        if seqlen < 1 or batchsize < 1:
            raise ValueError("batchsize and seqlen must be positive")
        if n_train < seqlen + 1:
            raise ValueError(f"a window of {seqlen}+1 points does not fit in {n_train} training points")
        self.n_train = n_train
        self.batchsize = batchsize
        self.seqlen = seqlen
        self.seed = seed
        self.n_windows = n_train - seqlen  # offsets 0 .. n_train-seqlen-1
        self.reset()

    def reset(self):
        self._rng = np.random.default_rng(self.seed)
        self.iteration = 0
        self._previous_epoch = 0

    def __next__(self) -> np.ndarray:
        self._previous_epoch = self.epoch
        self.iteration += 1
        return self._rng.integers(0, self.n_windows, size=self.batchsize, dtype=np.int64)

    next = __next__

    @property
    def epoch_detail(self) -> float:
        return self.iteration * self.batchsize / self.n_windows

    @property
    def epoch(self) -> int:
        return int(self.epoch_detail)

    @property
    def is_new_epoch(self) -> bool:
        return self.iteration > 0 and self.epoch > self._previous_epoch

    def serialize(self, serializer):
        self.iteration = serializer("iteration", self.iteration)


def window_indices(offsets, seqlen: int, xp=np):
    """Indices (seqlen + 1, batch) into the series: row ``i`` is step ``i``
    of every window; rows 0..seqlen-1 are inputs, rows 1..seqlen targets."""
    steps = xp.arange(seqlen + 1, dtype=offsets.dtype)
    return steps[:, None] + offsets[None, :]
