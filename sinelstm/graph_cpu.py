"""The whole update on the CPU as three compiled loops (Numba).

The eager path pays NumPy's and Chainer's per-call cost — a few microseconds
for every array operation, dozens of them per time step — which at the
article's size (batch 10, n_units 5) is almost all of an update. Here the
window gather, the recurrence forward, backpropagation through it and the
optimizer step are plain loops over scalars, compiled once by Numba, reading
and writing the flat buffers of :mod:`sinelstm.flat`. They compute exactly
what :mod:`sinelstm.fused` does (same gate layout, same rank-one input
projection, same loss) one sequence at a time, on one thread: at sizes this
path is chosen for, threads would cost more than they save.

The same algorithm runs on the GPU in :mod:`sinelstm.graph_cuda`, one block
per sequence; the loops here are its reference on the CPU.
"""
import math

import numpy as np
from numba import njit

# Offsets of the parameters in the flat buffers, in the order of
# sinelstm.flat.LAYOUT: W1, B1, WUP, BUP, WLAT, W3, B3.


@njit(cache=True)
def _sig(x):
    return math.tanh(x * 0.5) * 0.5 + 0.5


@njit(cache=True, fastmath=True)
def forward(series, offsets, T, burn_in, inv_b, p, o, n, act, cs, hs, dy):
    """Every sequence's window from a zero state: gate activations, cells and
    hidden states into ``act`` (B, T, 4n), ``cs`` and ``hs`` (B, T, n); the
    loss's gradient per output into ``dy`` (B, T). Returns the loss."""
    G = 4 * n
    u = np.empty(G, p.dtype)
    v = np.empty(G, p.dtype)
    for r in range(G):  # upward(l1(x)) = x * u + v, rank one in x
        su = 0.0
        sv = 0.0
        for k in range(n):
            w = p[o[2] + r * n + k]
            su += w * p[o[0] + k]
            sv += w * p[o[1] + k]
        u[r] = su
        v[r] = sv + p[o[3] + r]
    wlat = p[o[4]:o[4] + G * n].reshape((G, n))
    loss = 0.0
    for b in range(offsets.shape[0]):
        start = offsets[b]
        for t in range(T):
            x = series[start + t]
            for r in range(G):
                s = x * u[r] + v[r]
                if t > 0:
                    for k in range(n):
                        s += wlat[r, k] * hs[b, t - 1, k]
                act[b, t, r] = math.tanh(s) if r % 4 == 0 else _sig(s)
            y = p[o[6]]
            for j in range(n):
                a, i, f, og = act[b, t, 4 * j], act[b, t, 4 * j + 1], act[b, t, 4 * j + 2], act[b, t, 4 * j + 3]
                c = a * i + (f * cs[b, t - 1, j] if t > 0 else 0.0)
                cs[b, t, j] = c
                hs[b, t, j] = og * math.tanh(c)
                y += p[o[5] + j] * hs[b, t, j]
            if t >= burn_in:
                e = y - series[start + t + 1]
                loss += e * e
                dy[b, t] = 2.0 * e * inv_b
            else:
                dy[b, t] = 0.0
    return loss * inv_b


@njit(cache=True, fastmath=True)
def backward(series, offsets, T, p, g, o, n, act, cs, hs, dy):
    """Backpropagation through every window into the flat gradient ``g``
    (overwritten): the same arithmetic as sinelstm.fused's backward."""
    G = 4 * n
    g[:] = 0.0
    du = np.zeros(G, p.dtype)
    dv = np.zeros(G, p.dtype)
    dg = np.empty(G, p.dtype)
    dhn = np.empty(n, p.dtype)
    dc = np.empty(n, p.dtype)
    wlat = p[o[4]:o[4] + G * n].reshape((G, n))
    gl = g[o[4]:o[4] + G * n].reshape((G, n))
    for b in range(offsets.shape[0]):
        start = offsets[b]
        dhn[:] = 0.0
        dc[:] = 0.0
        for t in range(T - 1, -1, -1):
            d_out = dy[b, t]
            g[o[6]] += d_out
            for j in range(n):
                h = hs[b, t, j]
                g[o[5] + j] += d_out * h
                a, i, f, og = act[b, t, 4 * j], act[b, t, 4 * j + 1], act[b, t, 4 * j + 2], act[b, t, 4 * j + 3]
                tc = math.tanh(cs[b, t, j])
                dh = d_out * p[o[5] + j] + dhn[j]
                dct = dh * og * (1.0 - tc * tc) + dc[j]
                cp = cs[b, t - 1, j] if t > 0 else 0.0
                dg[4 * j] = dct * i * (1.0 - a * a)
                dg[4 * j + 1] = dct * a * i * (1.0 - i)
                dg[4 * j + 2] = dct * cp * f * (1.0 - f)
                dg[4 * j + 3] = dh * tc * og * (1.0 - og)
                dc[j] = dct * f
            x = series[start + t]
            for r in range(G):
                du[r] += dg[r] * x
                dv[r] += dg[r]
            if t > 0:
                hp = hs[b, t - 1]
                for r in range(G):
                    d = dg[r]
                    for k in range(n):
                        gl[r, k] += d * hp[k]
                dhn[:] = 0.0
                for r in range(G):
                    d = dg[r]
                    for k in range(n):
                        dhn[k] += wlat[r, k] * d
    # The rank-one input projection: gx = x * (W_up w1) + (W_up b1 + b_up).
    for r in range(G):
        for k in range(n):
            g[o[2] + r * n + k] = du[r] * p[o[0] + k] + dv[r] * p[o[1] + k]
        g[o[3] + r] = dv[r]
    for k in range(n):
        s1 = 0.0
        s2 = 0.0
        for r in range(G):
            w = p[o[2] + r * n + k]
            s1 += w * du[r]
            s2 += w * dv[r]
        g[o[0] + k] = s1
        g[o[1] + k] = s2


@njit(cache=True)
def step(p, g, m, v, scale, clip, lr, t, beta1, beta2, eps, adam):
    """Scale the gradient (1/replicas), clip its norm as Chainer's
    GradientClipping does (``clip`` <= 0: off), then one Adam (bias-corrected
    with update count ``t``, as Chainer's AdamRule) or SGD step in place."""
    if scale != 1.0:
        for k in range(g.shape[0]):
            g[k] *= scale
    if clip > 0.0:
        sq = 0.0
        for k in range(g.shape[0]):
            sq += g[k] * g[k]
        rate = clip / math.sqrt(sq)
        if rate < 1.0:
            for k in range(g.shape[0]):
                g[k] *= rate
    if adam:
        alpha_t = lr * math.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t)
        for k in range(g.shape[0]):
            gk = g[k]
            m[k] += (1.0 - beta1) * (gk - m[k])
            v[k] += (1.0 - beta2) * (gk * gk - v[k])
            p[k] -= alpha_t * m[k] / (math.sqrt(v[k]) + eps)
    else:
        for k in range(g.shape[0]):
            p[k] -= lr * g[k]
