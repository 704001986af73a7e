"""How a replica turns window offsets into a loss: the two implementations.

``article``   the article's approach (its faults fixed): every step builds a
              Python list of (x, next x) scalars on the host, converts it and
              sends it to the device, then runs the stateful model one step.
``sinebench`` the series lives on the device; one gather builds the whole
              window there, and :meth:`SineLSTM.forward_sequence` batches the
              time-independent layers over all steps.

Both compute the same loss (the per-step MSE summed over the window's steps
after its burn-in) from the same offsets, so they train the same model. The
burn-in steps run the model, so that the state is warm, but are not scored.
"""
import numpy as np

import sinelstm  # noqa: F401
import chainer.functions as F
from chainer.dataset import concat_examples

from sinelstm.iterator import window_indices
from sinelstm.model import sequence_loss


class SinebenchImpl:
    name = "sinebench"

    def __init__(self, series: np.ndarray, device, seqlen: int, burn_in: int = 0):
        self.series = device.send(series)  # resident for the whole run
        self.device = device
        self.seqlen = seqlen
        self.burn_in = burn_in

    def load(self, offsets: np.ndarray):
        idx = window_indices(self.device.send(offsets), self.seqlen, self.device.xp)
        window = self.series[idx]  # (seqlen + 1, batch), gathered on the device
        return window[:-1], window[1:]

    def loss(self, model, batch):
        xs, ts = batch
        ys = model.forward_sequence(xs)
        return sequence_loss(ys[self.burn_in:], ts[self.burn_in:]) if self.burn_in else sequence_loss(ys, ts)


class ArticleImpl:
    name = "article"

    def __init__(self, series: np.ndarray, device, seqlen: int, burn_in: int = 0):
        self.series = series  # stays on the host, as in the article
        self.device = device
        self.seqlen = seqlen
        self.burn_in = burn_in

    def load(self, offsets: np.ndarray):
        # One list of (x[o+i], x[o+i+1]) pairs per step, converted per step.
        steps = []
        for i in range(self.seqlen):
            pairs = [(self.series[o + i], self.series[o + i + 1]) for o in offsets.tolist()]
            steps.append(concat_examples(pairs, self.device))
        return steps

    def loss(self, model, batch):
        model.reset_state()  # each window starts from a zero state (fault 3 fixed)
        loss = 0
        for i, (x, t) in enumerate(batch):
            y = model(x.reshape((-1, 1)))
            if i >= self.burn_in:
                loss += F.mean_squared_error(y, t.reshape((-1, 1)))
        return loss


IMPLS = {impl.name: impl for impl in (SinebenchImpl, ArticleImpl)}


def make_impl(name: str, series: np.ndarray, device, seqlen: int, burn_in: int = 0):
    try:
        cls = IMPLS[name]
    except KeyError:
        raise ValueError(f"unknown implementation {name!r}; choose from {', '.join(IMPLS)}") from None
    return cls(series, device, seqlen, burn_in)
