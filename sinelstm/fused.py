"""The model's input projection and LSTM recurrence as one FunctionNode.

Chainer pays tens of microseconds of Python for every function it records,
and the unrolled window records about a dozen per step. Here the whole
window is one node forward and one backward, written with raw array
operations: per step one matrix product and one fused elementwise kernel
(CuPy) or a few NumPy operations (CPU).

It also uses the model's shape: the LSTM's input is ``l1(x)`` for a scalar
``x``, so ``upward(l1(x)) = x * (W_up @ w1) + (W_up @ b1 + b_up)`` is rank
one, and its gradients reduce to two vectors. The input projection then costs
O(T*B*4n) instead of O(T*B*4n*n); only the recurrent product stays O(n^2).
The function and its gradients are the same as the plain unrolled model's
(``tests/test_fused.py`` checks both).

Gate layout and nonlinearities follow ``chainer.functions.lstm``: the 4n
pre-activations are (n, 4)-interleaved as (a, i, f, o), ``a`` through tanh,
the others through ``sigmoid(x) = tanh(x/2)/2 + 1/2``.
"""
import numpy as np

import sinelstm  # noqa: F401
import chainer
from chainer import backend

_FWD = _BWD = None


def _kernels():
    global _FWD, _BWD
    if _FWD is None:
        import cupy

        preamble = "template <typename T> __device__ T sig(T x) { return tanh(x * (T)0.5) * (T)0.5 + (T)0.5; }"
        _FWD = cupy.ElementwiseKernel(
            "raw T gx, raw T hw, raw T c_prev, bool first", "raw T act, T c, T h",
            """
            const int k = 4 * i;
            T a = tanh(gx[k] + (first ? (T)0 : hw[k]));
            T in = sig(gx[k + 1] + (first ? (T)0 : hw[k + 1]));
            T f = sig(gx[k + 2] + (first ? (T)0 : hw[k + 2]));
            T o = sig(gx[k + 3] + (first ? (T)0 : hw[k + 3]));
            T cp = first ? (T)0 : c_prev[i];
            c = a * in + f * cp;
            h = o * tanh(c);
            act[k] = a; act[k + 1] = in; act[k + 2] = f; act[k + 3] = o;
            """, "sinelstm_fwd_step", preamble=preamble)
        _BWD = cupy.ElementwiseKernel(
            "raw T act, T c, raw T c_prev, T gh, raw T dh_next, bool first, bool last", "raw T dg, T dc",
            """
            const int k = 4 * i;
            T a = act[k], in = act[k + 1], f = act[k + 2], o = act[k + 3];
            T tc = tanh(c);
            T dh = gh + (last ? (T)0 : dh_next[i]);
            T dct = dh * o * (1 - tc * tc) + (last ? (T)0 : dc);
            T cp = first ? (T)0 : c_prev[i];
            dg[k] = dct * in * (1 - a * a);
            dg[k + 1] = dct * a * in * (1 - in);
            dg[k + 2] = dct * cp * f * (1 - f);
            dg[k + 3] = dh * tc * o * (1 - o);
            dc = dct * f;
            """, "sinelstm_bwd_step")
    return _FWD, _BWD


def _sig(x):
    half = x.dtype.type(0.5)
    return np.tanh(x * half) * half + half


class SineLSTMSequence(chainer.function_node.FunctionNode):
    """Inputs: x (T, B), l1's W (n, 1) and b (n), the LSTM's upward W (4n, n)
    and b (4n), lateral W (4n, n). Output: hidden states (T, B, n) from a
    zero state. No double backprop."""

    def forward(self, inputs):
        x, w1, b1, w_up, b_up, w_lat = inputs
        xp = backend.get_array_module(x)
        T, B = x.shape
        n = w_lat.shape[1]
        u = w_up.dot(w1[:, 0])  # (4n,)
        v = w_up.dot(b1) + b_up  # (4n,)
        gx = x[:, :, None] * u + v  # (T, B, 4n) input pre-activations
        act = xp.empty((T, B, 4 * n), x.dtype)
        cs = xp.empty((T, B, n), x.dtype)
        hs = xp.empty((T, B, n), x.dtype)
        w_lat_t = w_lat.T
        if xp is np:
            for t in range(T):
                pre = gx[t] if t == 0 else gx[t] + hs[t - 1].dot(w_lat_t)
                g = pre.reshape(B, n, 4)
                a, i, f, o = np.tanh(g[..., 0]), _sig(g[..., 1]), _sig(g[..., 2]), _sig(g[..., 3])
                cs[t] = a * i if t == 0 else a * i + f * cs[t - 1]
                hs[t] = o * np.tanh(cs[t])
                act[t] = np.stack([a, i, f, o], axis=-1).reshape(B, 4 * n)
        else:
            fwd, _ = _kernels()
            for t in range(T):
                hw = hs[t - 1].dot(w_lat_t) if t else gx[t]  # (unused at t = 0)
                fwd(gx[t], hw, cs[t - 1] if t else cs[t], t == 0, act[t], cs[t], hs[t])
        self._saved = (x, w1, b1, w_up, w_lat, act, cs, hs)
        return hs,

    def backward(self, indexes, grad_outputs):
        grads = _backward_arrays(self._saved, grad_outputs[0].array)
        # Plain arrays wrapped as variables: the gradient is not itself
        # differentiable (no double backprop), which training never needs.
        return tuple(None if grads[i] is None else chainer.Variable(grads[i]) for i in indexes)


def _backward_arrays(saved, ghs):
    x, w1, b1, w_up, w_lat, act, cs, hs = saved
    xp = backend.get_array_module(x)
    T, B = x.shape
    n = w_lat.shape[1]
    dg = xp.empty((T, B, 4 * n), x.dtype)
    if xp is np:
        dh_next = np.zeros((B, n), x.dtype)
        dc = np.zeros((B, n), x.dtype)
        for t in reversed(range(T)):
            g = act[t].reshape(B, n, 4)
            a, i, f, o = g[..., 0], g[..., 1], g[..., 2], g[..., 3]
            tc = np.tanh(cs[t])
            dh = ghs[t] + dh_next
            dc = dh * o * (1 - tc * tc) + dc
            cp = cs[t - 1] if t else np.zeros_like(dc)
            dg[t] = np.stack([dc * i * (1 - a * a), dc * a * i * (1 - i), dc * cp * f * (1 - f),
                              dh * tc * o * (1 - o)], axis=-1).reshape(B, 4 * n)
            dc = dc * f
            if t:
                dh_next = dg[t].dot(w_lat)
    else:
        _, bwd = _kernels()
        dc = xp.empty((B, n), x.dtype)
        dh_next = dc  # not read on the last step
        for t in reversed(range(T)):
            bwd(act[t], cs[t], cs[t - 1] if t else cs[t], ghs[t], dh_next, t == 0, t == T - 1, dg[t], dc)
            if t:
                dh_next = dg[t].dot(w_lat)
    g_lat = dg[1:].reshape(-1, 4 * n).T.dot(hs[:-1].reshape(-1, n))
    # Input projection: gx = x * u + v, so du = dg^T x and dv = dg^T 1.
    x1 = xp.stack([x.reshape(-1), xp.ones(T * B, x.dtype)], axis=1)
    duv = dg.reshape(-1, 4 * n).T.dot(x1)  # (4n, 2)
    du, dv = duv[:, 0], xp.ascontiguousarray(duv[:, 1])
    g_up = xp.outer(du, w1[:, 0]) + xp.outer(dv, b1)
    g_w1 = w_up.T.dot(du)[:, None]
    g_b1 = w_up.T.dot(dv)
    return None, g_w1, g_b1, g_up, dv, g_lat


def sine_lstm_sequence(x, w1, b1, w_up, b_up, w_lat):
    (hs,) = SineLSTMSequence().apply((x, w1, b1, w_up, b_up, w_lat))
    return hs
