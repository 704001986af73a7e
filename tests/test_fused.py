"""The fused LSTM node computes the plain unrolled model's function and
gradients (CPU here; the GPU kernels in test_gpu.py)."""
import numpy as np
import pytest

import sinelstm  # noqa: F401
import chainer

from sinelstm.flops import count_flops
from sinelstm.model import SineLSTM, sequence_loss


def loss_and_grads(model, xs, ts, fused):
    model.cleargrads()
    loss = sequence_loss(model.forward_sequence(xs, fused=fused), ts)
    loss.backward()
    return float(loss.array), {name: np.zeros_like(p.array) if p.grad is None else p.grad.copy()
                               for name, p in model.namedparams()}


@pytest.mark.parametrize("n_units,batch,seqlen", [(5, 10, 10), (16, 3, 7), (4, 1, 1)])
def test_fused_matches_unrolled(n_units, batch, seqlen):
    rng = np.random.default_rng(n_units)
    model = SineLSTM(n_units, seed=3)
    for _, p in model.namedparams():  # nonzero biases exercise every term
        p.array[...] += rng.normal(0, 0.3, p.shape).astype(np.float32)
    xs = rng.uniform(-1, 1, (seqlen, batch)).astype(np.float32)
    ts = rng.uniform(-1, 1, (seqlen, batch)).astype(np.float32)
    loss_ref, g_ref = loss_and_grads(model, xs, ts, fused=False)
    loss, g = loss_and_grads(model, xs, ts, fused=True)
    assert loss == pytest.approx(loss_ref, rel=1e-5)
    for name in g_ref:
        np.testing.assert_allclose(g[name], g_ref[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_fused_count_is_smaller_where_input_projection_dominates():
    assert count_flops(1024, 4096, 10, "sinebench") < 0.55 * count_flops(1024, 4096, 10, "article")
