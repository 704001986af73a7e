"""The graph path's cuBLAS update (sinelstm.graph_gemm) on the CPU, as far as
its products go: every product's shape, leading dimensions, element offsets
and accumulation, in fp32, tf32 and 3xtf32 (split operands, their pairing,
the weights' gradient in parts, dh in parts).

Only a GPU runs the real thing, so CI would otherwise never see a wrong
offset. Here GemmGraphs' own setup, forward and backward run against fake
device memory (one NumPy heap; every operand must lie inside one buffer),
cuBLAS as column-major NumPy products (inputs rounded to TF32 where the
handle computes in TF32 and the call is not exact) and NumPy ports of the
step kernels, written from their CUDA source. The result is checked against
sinelstm.graph_cpu, the compiled CPU update, in float64: the recurrent
weights' gradient (forward chain, dh chain and weights' products), the
hidden states, the loss, and dv (the rank-one input projection's).
The CUDA kernels themselves are not run here (the ports stand in for them):
tests/test_cuda_sources.py compiles them, the GPU tests run them.
"""
import types

import numpy as np
import pytest

from sinelstm import graph_cpu, graph_gemm, precision
from sinelstm.cublas_capture import OP_N
from sinelstm.flat import LAYOUT


GARBAGE = 777.0  # what an empty buffer holds here


class Heap:
    """Fake device memory: buffers are views of one float32 array, apart by
    a gap, so that an operand reaching past its buffer is caught."""

    def __init__(self, size=1 << 22):
        self.mem = np.zeros(size, np.float32)
        self.base = self.mem.__array_interface__["data"][0]
        self.spans, self.top = [], 0

    def alloc(self, shape, fill=0.0):
        size = int(np.prod(shape))
        start = (self.top + 3) // 4 * 4
        self.top = start + size + 64
        assert self.top <= self.mem.size
        self.spans.append((start, start + size))
        a = self.mem[start:start + size].reshape(shape).view(Buffer)
        a[...] = fill
        return a

    def matrix(self, ptr, rows, cols, ld):
        """The column-major (rows, cols) matrix at ``ptr`` with leading dimension ``ld``."""
        e, rem = divmod(ptr - self.base, 4)
        assert rem == 0 and ld >= rows
        last = e + (rows - 1) + (cols - 1) * ld
        assert any(s <= e and last < t for s, t in self.spans), "an operand spans no one buffer"
        return np.lib.stride_tricks.as_strided(self.mem[e:], shape=(rows, cols), strides=(4, 4 * ld))

    def rest(self, a):
        """Memory from view ``a``'s first element to its buffer's end, as a
        kernel that gets ``a``'s pointer can reach it."""
        e = (a.__array_interface__["data"][0] - self.base) // 4
        stop = next(t for s, t in self.spans if s <= e < t)
        return self.mem[e:stop]


class Buffer(np.ndarray):
    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.__array_interface__["data"][0])


def tf32(x):
    bits = np.asarray(x, np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


def fake_blas(heap):
    class FakeBlas:
        """cublas_capture.Blas's calls as NumPy products (float64 sums)."""

        def __init__(self, stream):
            self.tf32 = precision.process_precision() != "fp32"

        def gemm(self, transa, transb, m, n, k, a, lda, b, ldb, c, ldc, exact=False, accumulate=False):
            A = heap.matrix(a, m, k, lda) if transa == OP_N else heap.matrix(a, k, m, lda).T
            B = heap.matrix(b, k, n, ldb) if transb == OP_N else heap.matrix(b, n, k, ldb).T
            C = heap.matrix(c, m, n, ldc)
            A, B = np.array(A), np.array(B)
            if self.tf32 and not exact:
                A, B = tf32(A), tf32(B)
            out = A.astype(np.float64) @ B.astype(np.float64)
            C[...] = (out + C if accumulate else out).astype(np.float32)

        def gemm_split_k(self, transa, transb, m, n, k, a, lda, b, ldb, c, ldc, splits):
            assert transa == transb == OP_N and k % splits == 0
            part = k // splits
            for s in range(splits):  # as one strided-batched call: A's columns, B's rows, C's parts
                self.gemm(OP_N, OP_N, m, n, part, a + 4 * s * part * lda, lda, b + 4 * s * part, ldb,
                          c + 4 * s * ldc * n, ldc)

    return FakeBlas


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def step_kernels(n, offs, heap):
    """NumPy ports of graph_gemm's kernels that the forward and backward call."""
    G, f32 = 4 * n, np.float32

    def flat(a):
        return np.asarray(a).reshape(-1)

    def forward_step(grid, block, args, stream=None):
        xin_t, uv, p, act_t, c_prev, c_t, h_t, hx_t, B, first, x3 = args
        xin_t, uv, p, act_t, c_prev, c_t, h_t, hx_t = map(flat, (xin_t, uv, p, act_t, c_prev, c_t, h_t, hx_t))
        B, first = int(B), int(first)
        i = np.arange(B * n)
        b, j = i // n, i % n
        pre = 0.0 if first else act_t[:G * B].reshape(B * n, 4)
        g = (xin_t[b][:, None] * uv[:G].reshape(n, 4)[j] + uv[G:].reshape(n, 4)[j]
             + p[offs["/l2/upward/b"]:offs["/l2/upward/b"] + G].reshape(n, 4)[j] + pre)
        a, ig, fg, o = np.tanh(g[:, 0]), sig(g[:, 1]), sig(g[:, 2]), sig(g[:, 3])
        c = a * ig if first else a * ig + fg * c_prev[i]
        c_t[i] = c
        h = (o * np.tanh(c)).astype(f32)
        h_t[i] = h
        act_t[:G * B].reshape(B * n, 4)[...] = np.stack([a, ig, fg, o], 1)
        if int(x3):
            big = tf32(h)
            rows = hx_t[:3 * n * B].reshape(B, 3 * n)
            rows[b, j], rows[b, n + j], rows[b, 2 * n + j] = big, tf32(h - big), big

    def output_loss(grid, block, args, stream=None):
        hs, tgt, p, dy, loss, db3, T, B, burn_in, inv_b = args
        T, B, burn_in, inv_b = int(T), int(B), int(burn_in), float(inv_b)
        hs, p, dy, loss, db3 = map(flat, (hs, p, dy, loss, db3))
        y = hs[:T * B * n].reshape(T * B, n).astype(np.float64) @ p[offs["/l3/W"]:offs["/l3/W"] + n] \
            + p[offs["/l3/b"]]
        e = y - np.asarray(tgt)[:T * B]
        scored = np.arange(T * B) // B >= burn_in
        d = np.where(scored, 2 * e * inv_b, 0.0)
        dy[:T * B] = d
        loss[0] += np.sum(np.where(scored, e * e, 0.0)) * inv_b
        db3[0] += d.sum()

    def backward_step(grid, block, args, stream=None):
        act_t, c_t, c_prev, dy_t, p, dhn, dc, dgx_t, B, first, last, splits, x3 = args
        act_t, c_t, c_prev, dy_t, p, dc, dgx_t = map(flat, (act_t, c_t, c_prev, dy_t, p, dc, dgx_t))
        dhn = heap.rest(dhn)  # the parts past the first: the kernel reads on from the pointer
        B, first, last, splits = int(B), int(first), int(last), int(splits)
        i = np.arange(B * n)
        b, j = i // n, i % n
        a, ig, fg, o = act_t[:G * B].reshape(B * n, 4).T.copy()
        tc = np.tanh(c_t[i])
        dhs = sum(dhn[s * B * n + i] for s in range(splits)) if not last else 0.0
        dh = dy_t[b] * p[offs["/l3/W"] + j] + dhs
        dct = dh * o * (1 - tc * tc) + (0.0 if last else dc[i])
        cp = 0.0 if first else c_prev[i]
        dg = np.stack([dct * ig * (1 - a * a), dct * a * ig * (1 - ig), dct * cp * fg * (1 - fg),
                       dh * tc * o * (1 - o)], 1).astype(f32)
        act_t[:G * B].reshape(B * n, 4)[...] = dg
        dc[i] = dct * fg
        if int(x3):
            big = tf32(dg)
            rows = dgx_t[:3 * G * B].reshape(B, 3 * n, 4)
            rows[b, j], rows[b, n + j], rows[b, 2 * n + j] = big, tf32(dg - big), big

    def split_w(grid, block, args, stream=None):
        p, wx, wy = map(flat, args)
        w = p[offs["/l2/lateral/W"]:offs["/l2/lateral/W"] + G * n]
        big = tf32(w)
        small = tf32(w - big)
        wx.reshape(G, 3 * n)[...] = np.concatenate([x.reshape(G, n) for x in (small, big, big)], 1)
        wy[...] = np.concatenate([small, big, big])

    return {"gemm_forward_step": forward_step, "gemm_output_loss": output_loss,
            "gemm_backward_step": backward_step, "gemm_split_w": split_w}


class TimedStream:
    """The capturing stream, as the dh split's timing uses it (``with s:``)."""

    def wait_event(self, event):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def timed_cuda(monkeypatch, split_ms: dict) -> dict:
    """CUDA events whose elapsed time is ``split_ms`` of the dh split the
    last product ran with (GemmGraphs._fastest_dh_split's timing)."""
    last = {}
    dh = graph_gemm.GemmGraphs._dh

    def recording_dh(self, t, splits, span=None, blas=None):
        last["splits"] = splits
        return dh(self, t, splits, span, blas)

    monkeypatch.setattr(graph_gemm.GemmGraphs, "_dh", recording_dh)
    event = lambda: types.SimpleNamespace(record=lambda stream: None, synchronize=lambda: None)  # noqa: E731
    return {"Event": event, "get_elapsed_time": lambda start, stop: split_ms[last["splits"]]}


def emulate(monkeypatch, mode, n=12, B=3, T=5, burn_in=1, grad_rows=None, x3_k=None, seed=0, dh_split="1",
            split_ms=None):
    """GemmGraphs' forward and backward in ``mode``, from its own setup;
    returns it, the flat parameters and the windows. ``split_ms`` ({parts:
    ms}): the dh split is timed ("auto"), each candidate taking that long."""
    monkeypatch.setenv("CUPY_TF32", "1" if mode == "tf32" else "0")
    monkeypatch.setenv("SINEBENCH_3XTF32", "1" if mode == "3xtf32" else "0")
    # FP32's split is timed on a GPU; fixed here unless split_ms times it
    monkeypatch.setattr(graph_gemm, "DH_SPLIT", dh_split if split_ms is None else "auto")
    if x3_k is not None:
        monkeypatch.setattr(graph_gemm, "X3_K", x3_k)
    if grad_rows is not None:
        monkeypatch.setattr(graph_gemm, "GRAD_CHUNK", str(grad_rows))
    heap = Heap()
    offs, size = {}, 0
    for name, shape in LAYOUT:
        offs[name] = size
        size += int(np.prod(shape(n)))
    rng = np.random.default_rng(seed)
    params = heap.alloc(size, rng.normal(0, 0.5, size).astype(np.float32))
    # Uninitialized memory holds garbage, as a GPU's does after earlier
    # updates: a first call that adds to its output (beta = 1) is caught.
    flat = types.SimpleNamespace(params=params, grads=heap.alloc(size, GARBAGE), start=lambda name: offs[name])
    monkeypatch.setattr(graph_gemm, "Blas", fake_blas(heap))
    monkeypatch.setattr(graph_gemm, "kernels", lambda units: step_kernels(units, offs, heap))
    fake_cupy = types.SimpleNamespace(
        float32=np.float32, empty=lambda shape, dtype: heap.alloc(shape, GARBAGE), zeros=lambda shape, dtype: heap.alloc(shape),
        ones=lambda shape, dtype: heap.alloc(shape, 1.0),
        cuda=types.SimpleNamespace(Stream=lambda non_blocking=True: types.SimpleNamespace(wait_event=lambda e: None),
                                   **(timed_cuda(monkeypatch, split_ms) if split_ms else {})))
    g = graph_gemm.GemmGraphs.__new__(graph_gemm.GemmGraphs)
    g.cupy, g.capture_stream, g.nccl = fake_cupy, TimedStream() if split_ms else None, None
    g.up = types.SimpleNamespace(n=n, batch=B, seqlen=T, burn_in=burn_in, flat=flat)
    g.loss = heap.alloc(1)
    g.setup()
    g._fork = lambda s: None  # one stream here: the side stream's work runs in order
    g._join = lambda: None
    series = rng.normal(0, 1, T + 40).astype(np.float32)
    starts = rng.integers(0, 40, B)
    t_b = np.arange(T)[:, None] + starts[None, :]  # time-major, as gemm_gather writes them
    g.x1[0] = series[t_b].reshape(-1)
    g.tgt[...] = series[t_b + 1].reshape(-1)
    stream = types.SimpleNamespace(wait_event=lambda event: None)
    g._forward(stream)
    g._backprop(stream, overlap=False)
    return g, offs, series, starts


def reference(g, offs, series, starts):
    """sinelstm.graph_cpu's forward and backward in float64."""
    up = g.up
    n, B, T = up.n, up.batch, up.seqlen
    p = np.asarray(up.flat.params, np.float64).copy()
    o = np.array([offs[name] for name, _ in LAYOUT], np.int64)
    act, cs, hs = np.zeros((B, T, 4 * n)), np.zeros((B, T, n)), np.zeros((B, T, n))
    dy, grads = np.zeros((B, T)), np.zeros_like(p)
    loss = graph_cpu.forward(series.astype(np.float64), starts.astype(np.int64), T, up.burn_in, 1.0 / B, p, o, n,
                             act, cs, hs, dy)
    graph_cpu.backward(series.astype(np.float64), starts.astype(np.int64), T, p, grads, o, n, act, cs, hs, dy)
    return loss, hs, grads


def errors(g, offs, series, starts) -> dict:
    """Largest relative difference from the reference, per quantity."""
    loss, hs, grads = reference(g, offs, series, starts)
    n, G = g.up.n, 4 * g.up.n
    lat = offs["/l2/lateral/W"]

    def rel(got, want):
        return float(np.max(np.abs(np.asarray(got, np.float64) - want)) / np.max(np.abs(want)))

    return {"loss": rel([g.loss[0]], [loss]),
            "hs": rel(np.asarray(g.hs).transpose(1, 0, 2), hs),
            "lateral": rel(np.asarray(g.up.flat.grads)[lat:lat + G * n], grads[lat:lat + G * n]),
            # dv: the flat gradient of b_up
            "dv": rel(np.asarray(g.small)[G:2 * G], grads[offs["/l2/upward/b"]:offs["/l2/upward/b"] + G])}


@pytest.mark.parametrize("grad_rows", [0, 2, 1000])  # one product after the loop; parts of 1 and of all steps
@pytest.mark.parametrize("mode", ["fp32", "3xtf32"])
def test_the_captured_products_compute_the_cpu_update(monkeypatch, mode, grad_rows):
    err = errors(*emulate(monkeypatch, mode, grad_rows=grad_rows))
    assert all(e < 2e-5 for e in err.values()), err  # float32 storage, float64 sums: FP32's rounding only


@pytest.mark.parametrize("dh_split", ["2", "4"])
def test_dh_in_parts_over_k_summed_by_the_step_kernel(monkeypatch, dh_split):
    g, *rest = emulate(monkeypatch, "fp32", dh_split=dh_split)
    assert g.dh_splits == int(dh_split) and g.dhn.shape[0] == int(dh_split)  # as many parts as run, no more
    assert g.plan == f"1 lane, dh in {dh_split} parts"
    err = errors(g, *rest)
    assert all(e < 2e-5 for e in err.values()), err


@pytest.mark.parametrize("fastest", [1, 2, 4])
def test_the_timed_dh_split_takes_the_fastest_and_keeps_only_its_parts(monkeypatch, fastest):
    """The timing path: each candidate runs into a buffer of the most parts;
    the update then keeps a buffer of the chosen parts only, and is right."""
    g, *rest = emulate(monkeypatch, "fp32", split_ms={s: 0.5 if s == fastest else 1.0 for s in (1, 2, 4)})
    assert g.dh_splits == fastest and g.dhn.shape[0] == fastest
    assert g.plan == f"1 lane, dh in {fastest} part{'s' if fastest > 1 else ''}"
    err = errors(g, *rest)
    assert all(e < 2e-5 for e in err.values()), err


def test_the_fastest_dh_split_must_beat_one_product_by_the_margin():
    pick = graph_gemm.pick_split
    assert pick({1: 0.200, 2: 0.204, 4: 0.192}) == 4
    assert pick({1: 0.384, 2: 0.362, 4: 0.365}) == 2
    assert pick({1: 0.200, 2: 0.199, 4: 0.197}) == 1  # within 2 %: the one product
    assert pick({1: 0.709, 2: 0.711, 4: 0.726}) == 1


def test_a_fixed_dh_split_that_cannot_run_here_is_refused(monkeypatch):
    """Parts that 4n does not split into aligned, parts outside FP32 or
    beside lanes, and a value that is no choice are refused with the
    variable's name; one product is always allowed."""
    with pytest.raises(ValueError, match="SINEBENCH_DH_SPLIT=4: n_units 6"):
        emulate(monkeypatch, "fp32", n=6, dh_split="4")  # 4n = 24: parts of 6, not a multiple of 4
    assert emulate(monkeypatch, "fp32", n=6, dh_split="2")[0].dh_splits == 2
    with pytest.raises(ValueError, match="SINEBENCH_DH_SPLIT=2: parts are for FP32"):
        emulate(monkeypatch, "3xtf32", dh_split="2")
    assert emulate(monkeypatch, "tf32", dh_split="1")[0].dh_splits == 1
    with pytest.raises(ValueError, match="SINEBENCH_DH_SPLIT='3'"):
        emulate(monkeypatch, "fp32", dh_split="3")
    monkeypatch.setattr(graph_gemm, "LANES", "2")
    with pytest.raises(ValueError, match="SINEBENCH_DH_SPLIT=4: 2 lanes run here"):
        emulate(monkeypatch, "fp32", dh_split="4")


@pytest.mark.parametrize("x3_k", [3, 8])  # big*big cut mid-step and mid-block, or at the blocks' edges
def test_3xtf32s_products_in_short_calls_and_an_odd_batch(monkeypatch, x3_k):
    err = errors(*emulate(monkeypatch, "3xtf32", n=8, B=5, T=4, grad_rows=7, x3_k=x3_k))
    assert all(e < 2e-5 for e in err.values()), err


@pytest.mark.parametrize("k, cap", [(8, 3), (8, 8), (8, 100), (4096, 512), (1024, 1024)])
def test_x3_ranges_cover_k_with_the_small_pairs_first_and_at_most_cap_of_big_big_a_call(k, cap):
    ranges = graph_gemm.x3_ranges(k, cap)
    assert ranges[0][0] == 0 and ranges[-1][1] == 3 * k
    assert all(a1 == b0 for (_, a1), (b0, _) in zip(ranges, ranges[1:]))  # contiguous, in order
    assert ranges[0][1] - 2 * k <= cap and all(k1 - k0 <= cap for k0, k1 in ranges[1:])
    assert len(ranges) == -(-k // cap)


def test_tf32_rounds_the_products_inputs_so_the_check_can_tell(monkeypatch):
    # the same check, in tf32: ten-bit inputs leave differences far above FP32's
    err = errors(*emulate(monkeypatch, "tf32"))
    assert err["lateral"] > 1e-4, err
