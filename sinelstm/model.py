"""Linear -> LSTM -> Linear, predicting the next value of a scalar series."""
import numpy as np

import sinelstm  # noqa: F401  (NumPy 2 shim before chainer)
import chainer
import chainer.functions as F
import chainer.links as L

from sinelstm.fused import sine_lstm_sequence


class SineLSTM(chainer.Chain):
    """The article's model: ``Linear(1, n) -> LSTM(n, n) -> Linear(n, 1)``.

    ``forward`` takes one time step (stateful, as in the article).
    ``forward_sequence`` unrolls a whole window from a zero state with the
    time-independent layers applied to all steps at once: the same function,
    with about a third of the framework calls per step.
    """

    def __init__(self, n_units: int = 5, seed: int = 0):
        super().__init__()
        with self.init_scope():
            self.l1 = L.Linear(1, n_units)
            self.l2 = L.LSTM(n_units, n_units)
            self.l3 = L.Linear(n_units, 1)
        self.n_units = n_units
        _reinit_weights(self, seed)

    def reset_state(self):
        self.l2.reset_state()

    def forward(self, x):
        """One step: ``x`` of shape (batch, 1) -> prediction (batch, 1)."""
        return self.l3(self.l2(self.l1(x)))

    def forward_sequence(self, xs, fused: bool = True):
        """A window from a zero state: ``xs`` (seqlen, batch) -> (seqlen, batch).

        ``fused`` runs input projection and recurrence as one node
        (:mod:`sinelstm.fused`); ``fused=False`` unrolls them with Chainer's
        own functions, the reference it is tested against."""
        seqlen, batch = xs.shape
        n = self.n_units
        lstm = self.l2
        if fused:
            hs = sine_lstm_sequence(xs, self.l1.W, self.l1.b, lstm.upward.W, lstm.upward.b, lstm.lateral.W)
            y = self.l3(F.reshape(hs, (seqlen * batch, n)))
            return F.reshape(y, (seqlen, batch))
        # l1 and the LSTM's input projection do not depend on the state:
        # one matrix product each for all steps.
        gates_in = lstm.upward(self.l1(F.reshape(xs, (seqlen * batch, 1))))
        gates_in = F.split_axis(F.reshape(gates_in, (seqlen, batch, 4 * n)), seqlen, axis=0)
        c, h, hs = None, None, []
        for t in range(seqlen):
            g = F.reshape(gates_in[t], (batch, 4 * n))
            if h is None:
                c = lstm.xp.zeros((batch, n), dtype=g.dtype)
            else:
                g = g + lstm.lateral(h)
            c, h = F.lstm(c, g)
            hs.append(h)
        y = self.l3(F.concat(hs, axis=0))
        return F.reshape(y, (seqlen, batch))


def _reinit_weights(model: chainer.Link, seed: int):
    """Draw every weight matrix from LeCun normal with a private generator, so
    that the same seed gives the same model whatever the global RNG state.
    Biases keep Chainer's constant initial values (LSTM forget bias 1)."""
    rng = np.random.default_rng(seed)
    for name, param in sorted(model.namedparams()):
        if name.endswith("/W"):
            fan_in = param.array.shape[1]
            w = rng.standard_normal(param.array.shape) / np.sqrt(fan_in)
            param.array[...] = w.astype(param.array.dtype)


def sequence_loss(ys, ts):
    """The article's loss: per-step mean squared error, summed over the window.

    ``ys`` and ``ts`` are (seqlen, batch)."""
    seqlen = ys.shape[0]
    return F.mean_squared_error(ys, ts) * seqlen
