"""The ``graph`` implementation above ``graph_cuda.MAX_UNITS``: the update as
cuBLAS products and fused kernels, captured as one CUDA graph.

At these sizes the arithmetic is matrix products, and cuBLAS does them well;
what the eager path adds is the host's time to issue them (Chainer and CuPy
calls, ~3 ms an update, which decides the time as soon as TF32 or several
GPUs make the arithmetic fast) and memory traffic around them. Here the
update is recorded once and replayed, with the products called through
:mod:`sinelstm.cublas_capture` (CuPy refuses cuBLAS during capture). Per
time step: one product and one fused elementwise kernel forward, one of each
backward; the input projection's pre-activations are never stored (rank one:
``x * u + v``, computed in the step kernel), the backward kernel overwrites
the saved activations with the gate gradients in place, and the recurrent
weights' gradient is one product over all steps after the loop or (FP32,
large batches: ``GRAD_CHUNK``) a few products of one or more steps each, on
a second stream as soon as backward has their gate gradients, beside the
chain of ``dh`` products and step kernels. A batch can run in lanes
(:func:`lanes`): each lane a share of the sequences, its chain of products
and step kernels on a stream of its own, the lanes side by side in the
graph until the weights' gradient sums them. Only the three recurrent
products (forward, ``dh``, the weights' gradient) take the run's precision;
the rank-one and output products are memory-bound and stay FP32. In
``3xtf32`` each recurrent product is three TF32 products of split operands
(:mod:`sinelstm.precision`): the step kernels write each step's ``h`` and
gate gradients split as well, side by side along K, so that the forward and
``dh`` products read one operand each, of three times the K, in calls of a
bounded sum (:func:`x3_ranges`).

With several GPUs (one process each) the all-reduce is captured too: the
recurrent weights' gradient on the second stream (after its last part),
beside the memory-bound products that end backward, then one small
all-reduce of the rest. The input projection's gradient is rank one, so
the ranks average its two vectors (``du``, ``dv``, 8n floats) rather than its
(4n, n) matrix: half the bytes of the eager path's all-reduce.

Buffers are time-major, ``(T, B, ...)``, so that every product's operand is
one contiguous matrix; products are written column-major (BLAS), so a
row-major (r, c) array is a column-major (c, r) one. The loss, the output
bias's gradient and the gradient norm are summed with atomics (the last bits
may differ between runs, as cuDNN's do). The input projection's gradients
are assembled from ``du``, ``dv`` in the optimizer phase (after the
all-reduce), where the persistent path does it in backward: the profiles'
backward/optimizer split differs by that much between the two paths.
"""
import os

import numpy as np

from sinelstm import precision
from sinelstm.cublas_capture import OP_N, OP_T, Blas
from sinelstm.graph import GpuGraphs
from sinelstm.graph_cuda import HEADER

# Whether the recurrent weights' all-reduce runs beside the memory-bound
# products at the end of backward ("tail") or after them ("none"). Beside
# the recurrent products themselves it was slower (NCCL's blocks take SMs
# from them: results/h200x4-overlap-2026-11-27). The environment variable is
# for measuring the choice (scripts/gpu_overlap.sh).
OVERLAPS = ("tail", "none")
OVERLAP = os.environ.get("SINEBENCH_COMM_OVERLAP", OVERLAPS[0])
_BLOCK = 256
# Parts over K that the backward's dh product may be split into (FP32):
# the candidates _fastest_dh_split times, the first being one product.
_SPLITS = (1, 2, 4)
# 3xTF32: the most big*big terms one cuBLAS call sums (see x3_ranges).
# SINEBENCH_X3_K=K changes it, for measuring the choice.
X3_K = int(os.environ.get("SINEBENCH_X3_K", 512))
# "auto": timed (GemmGraphs._fastest_dh_split); one of _SPLITS fixes it,
# for measuring the choice (an A/B on one machine).
DH_SPLIT = os.environ.get("SINEBENCH_DH_SPLIT", "auto")
# The recurrent weights' gradient (the sum over steps of dg[t]^T hs[t-1])
# in parts of about this many rows (steps x batch, at least one step), each
# computed on the side stream as soon as backward has written its steps'
# gate gradients: beside the dh chain, whose step kernels are memory-bound
# and whose products leave SMs idle, rather than after it. At n_units 1024
# on an H200 in FP32 (results/h200x2-gradparts-2026-11-28) that took an
# update from 19.58 to 19.08 ms at batch 4096, and from 9.99 to 9.91 ms at
# 2048, but made batch 1024 0.5 % slower; in TF32, whose products are four
# times faster, batch 4096 was 3 % slower. So "auto" makes parts in FP32
# from batch 2048 (per GPU) and keeps one product after the loop otherwise,
# and where two lanes run: there parts were no faster (9.80 against 9.78 ms,
# within the rounds' spread), and one product is the simpler graph.
# SINEBENCH_GRAD_CHUNK=ROWS fixes the rows (0: one product), for an A/B.
GRAD_CHUNK = os.environ.get("SINEBENCH_GRAD_CHUNK", "auto")
_GRAD_ROWS, _GRAD_MIN_BATCH = 4096, 2048  # "auto" in FP32
# The batch's sequences in lanes, each a chain of products and step kernels
# on a stream of its own (the sequences are independent until the weights'
# gradient sums them). On an H200 at n_units 1024 in FP32
# (results/h200x2-lanes-2026-11-28) two lanes took batch 2048 from 9.92 to
# 9.72 ms, and two GPUs at 4096 (2048 each) from 9.99 to 9.78 with the
# weights' gradient as one product after the loop. They made batches 1024
# and 4096 per GPU 0.7-2.8 % slower, three and four lanes were slower
# still, and in TF32 (measured at 2048 and 4096 per GPU, one round) two
# lanes were slower. Why two products of 1024 rows side by side beat one of
# 2048 is not profiled: more tiles in flight at once, as with dh's two parts
# over K at 2048 (_fastest_dh_split), is the likely reason. So "auto" makes
# two lanes in FP32 for a batch per GPU from 1536 to 3071 (measured at 2048
# only). SINEBENCH_LANES=L fixes the count, for an A/B.
LANES = os.environ.get("SINEBENCH_LANES", "auto")
_LANE_BATCHES = (1536, 3072)  # "auto": two lanes in FP32 from the first, below the second
_TIMING_REPS = 15  # of each choice, before capture, after _TIMING_WARMUPS
_TIMING_WARMUPS = 5
_TIMED_CALLS = 4  # products a timing brackets
_SPLIT_MARGIN = 0.02  # parts must be this much faster: a tie keeps the one product

_SOURCE = HEADER + r"""
// The nearest TF32 value (10 stored mantissa bits, ties away from zero, as
// cvt.rna.tf32.f32): exact as a tensor core's input.
__device__ __forceinline__ float tf32(float x) {
    return __uint_as_float((__float_as_uint(x) + 0x1000u) & 0xFFFFE000u);
}

extern "C" __global__ void gemm_gather(
        const float* __restrict__ series, const long long* __restrict__ offs, const int* __restrict__ counter,
        int chunk, int batch_global, int shard0, int T, int B, float* __restrict__ xin, float* __restrict__ tgt) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)T * B) return;
    const int t = (int)(i / B), b = (int)(i - (long long)t * B);
    const long long start = window_start(offs, counter, chunk, batch_global, shard0, b);
    xin[i] = series[start + t];
    tgt[i] = series[start + t + 1];
}

// One thread per (sequence b, unit j): gates = x*u + v + b_up (+ h W^T, the
// product already in act_t), then the cell; act_t is overwritten with the
// activations (a, i, f, o) that backward reads.
extern "C" __global__ void gemm_forward_step(
        const float* __restrict__ xin_t, const float* __restrict__ uv, const float* __restrict__ p,
        float* __restrict__ act_t, const float* c_prev, float* c_t,  // c_prev is c_t at t = 0 (unread)
        float* __restrict__ h_t, float* __restrict__ hx_t, int B, int first, int x3) {  // hx_t: 3xTF32's
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)B * N) return;
    const int b = (int)(i / N), j = (int)(i - (long long)b * N);
    const float x = xin_t[b];
    const float4 pre = first ? make_float4(0.f, 0.f, 0.f, 0.f) : reinterpret_cast<const float4*>(act_t)[i];
    const float4 u = reinterpret_cast<const float4*>(uv)[j];
    const float4 v = reinterpret_cast<const float4*>(uv + G)[j];
    const float* bu = p + O_BUP + 4 * j;
    const float a = tanhf(x * u.x + v.x + bu[0] + pre.x);
    const float in = sig(x * u.y + v.y + bu[1] + pre.y);
    const float f = sig(x * u.z + v.z + bu[2] + pre.z);
    const float o = sig(x * u.w + v.w + bu[3] + pre.w);
    const float c = first ? a * in : a * in + f * c_prev[i];
    c_t[i] = c;
    const float h = o * tanhf(c);
    h_t[i] = h;
    reinterpret_cast<float4*>(act_t)[i] = make_float4(a, in, f, o);
    if (x3) {  // [big | small | big]: the next step's product and the weights' gradient read it
        const float big = tf32(h), small = tf32(h - big);
        float* row = hx_t + (long long)b * 3 * N;
        row[j] = big;
        row[N + j] = small;
        row[2 * N + j] = big;
    }
}

// One warp per (step, sequence): the output, the loss's gradient dy, and
// per block one atomic for the loss and one for the output bias's gradient.
extern "C" __global__ void gemm_output_loss(
        const float* __restrict__ hs, const float* __restrict__ tgt, const float* __restrict__ p,
        float* __restrict__ dy, float* __restrict__ loss, float* __restrict__ db3, int T, int B, int burn_in,
        float inv_b) {
    __shared__ float red_l[32], red_d[32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * (blockDim.x >> 5) + warp;
    float sq = 0.f, d = 0.f;
    if (row < (long long)T * B) {
        float y = 0.f;
        for (int k = lane; k < N; k += 32) y += p[O_W3 + k] * hs[row * N + k];
        #pragma unroll
        for (int m = 16; m > 0; m >>= 1) y += __shfl_xor_sync(0xffffffffu, y, m);
        y += p[O_B3];
        if ((int)(row / B) >= burn_in) {
            const float e = y - tgt[row];
            sq = e * e;
            d = 2.f * e * inv_b;
        }
        if (lane == 0) dy[row] = d;
    }
    if (lane == 0) { red_l[warp] = sq; red_d[warp] = d; }
    __syncthreads();
    if (threadIdx.x == 0) {
        float sl = 0.f, sd = 0.f;
        for (int w = 0; w < (int)(blockDim.x >> 5); ++w) { sl += red_l[w]; sd += red_d[w]; }
        atomicAdd(loss, sl * inv_b);
        atomicAdd(db3, sd);
    }
}

// One thread per (b, j), as chainer.functions.lstm's backward: act_t's
// activations are replaced by the gate gradients; dc carries the cell's.
extern "C" __global__ void gemm_backward_step(
        float* __restrict__ act_t, const float* c_t, const float* c_prev,  // aliased at t = 0 (unread)
        const float* __restrict__ dy_t, const float* __restrict__ p, const float* __restrict__ dhn,
        float* __restrict__ dc, float* __restrict__ dgx_t, int B, int first, int last, int splits,  // dhn: splits
        int x3) {  // parts to sum; dgx_t: 3xTF32's
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)B * N) return;
    const int b = (int)(i / N), j = (int)(i - (long long)b * N);
    const float4 g4 = reinterpret_cast<const float4*>(act_t)[i];
    const float a = g4.x, in = g4.y, f = g4.z, o = g4.w;
    const float tc = tanhf(c_t[i]);
    float dhs = 0.f;
    if (!last) for (int s = 0; s < splits; ++s) dhs += dhn[(long long)s * B * N + i];
    const float dh = dy_t[b] * p[O_W3 + j] + dhs;
    const float dct = dh * o * (1.f - tc * tc) + (last ? 0.f : dc[i]);
    const float cp = first ? 0.f : c_prev[i];
    const float4 dg = make_float4(dct * in * (1.f - a * a), dct * a * in * (1.f - in), dct * cp * f * (1.f - f),
                                  dh * tc * o * (1.f - o));
    reinterpret_cast<float4*>(act_t)[i] = dg;
    dc[i] = dct * f;
    if (x3) {  // [big | small | big], as the forward's hx
        const float4 big = make_float4(tf32(dg.x), tf32(dg.y), tf32(dg.z), tf32(dg.w));
        const float4 small = make_float4(tf32(dg.x - big.x), tf32(dg.y - big.y), tf32(dg.z - big.z),
                                         tf32(dg.w - big.w));
        float4* row = reinterpret_cast<float4*>(dgx_t + (long long)b * 3 * G);
        row[j] = big;
        row[N + j] = small;
        row[2 * N + j] = big;
    }
}

// 3xTF32's recurrent weights, split once an update: wx (G, 3N), each row
// [small | big | big], for the forward product; wy (3G, N), the blocks
// small, big, big, for dh. Paired with [big | small | big] along K, each
// product sums small*big + big*small + big*big.
extern "C" __global__ void gemm_split_w(const float* __restrict__ p, float* __restrict__ wx,
                                        float* __restrict__ wy) {
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (long long)G * N) return;
    const int r = (int)(e / N), k = (int)(e - (long long)r * N);
    const float w = p[O_WLAT + e], big = tf32(w), small = tf32(w - big);
    wx[(long long)r * 3 * N + k] = small;
    wx[(long long)r * 3 * N + N + k] = big;
    wx[(long long)r * 3 * N + 2 * N + k] = big;
    wy[e] = small;
    wy[(long long)G * N + e] = big;
    wy[2LL * G * N + e] = big;
}

// The input projection's (4n, n) gradient from du, dv: rank two.
extern "C" __global__ void gemm_finish(const float* __restrict__ p, float* __restrict__ g,
                                       const float* __restrict__ duv) {
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e < (long long)G * N) {
        const int r = (int)(e / N), k = (int)(e - (long long)r * N);
        g[O_WUP + e] = duv[r] * p[O_W1 + k] + duv[G + r] * p[O_B1 + k];
    }
    if (e < G) g[O_BUP + e] = duv[G + e];
}

extern "C" __global__ void gemm_sqnorm(const float* __restrict__ g, float* __restrict__ norm) {
    __shared__ float red[32];
    float sq = 0.f;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < P_SIZE;
         e += (long long)gridDim.x * blockDim.x) {
        sq += g[e] * g[e];
    }
    #pragma unroll
    for (int m = 16; m > 0; m >>= 1) sq += __shfl_xor_sync(0xffffffffu, sq, m);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = sq;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.f;
        for (int w = 0; w < (int)(blockDim.x >> 5); ++w) s += red[w];
        atomicAdd(norm, s);
    }
}

// As graph_cuda's optimizer_step, over the whole grid; the count is a
// separate kernel, after every block has read it.
extern "C" __global__ void gemm_optimizer(
        float* __restrict__ p, float* g, float* m, float* v,  // SGD passes g as m and v (unread)
        const int* __restrict__ counter, const float* __restrict__ norm, float clip, double peak,
        double log_ratio, int decay, double beta1, double beta2, float eps, int adam) {
    const int k = *counter;
    const float rate = clip > 0.f ? fminf(clip / sqrtf(*norm), 1.f) : 1.f;
    const float step = step_size(k, peak, log_ratio, decay, beta1, beta2, adam);
    const float b1 = (float)(1.0 - beta1), b2 = (float)(1.0 - beta2);
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < P_SIZE;
         e += (long long)gridDim.x * blockDim.x) {
        const float ge = g[e] * rate;
        if (rate != 1.f) g[e] = ge;  // the model's grads read as the step used them
        update_element(p, m, v, e, ge, step, b1, b2, eps, adam);
    }
}

extern "C" __global__ void gemm_count(int* counter) { *counter += 1; }
"""

_NAMES = ("gemm_gather", "gemm_forward_step", "gemm_output_loss", "gemm_backward_step", "gemm_split_w",
          "gemm_finish", "gemm_sqnorm", "gemm_optimizer", "gemm_count")


def kernels(n_units: int) -> dict:
    """The kernels compiled for ``n_units`` (a compile-time constant, as in
    :func:`sinelstm.graph_cuda.kernels`)."""
    import cupy

    module = cupy.RawModule(code=_SOURCE, options=("-std=c++14", f"-DN={n_units}"))
    return {name: module.get_function(name) for name in _NAMES}


def _blocks(n: int) -> tuple:
    return (max(1, -(-n // _BLOCK)),)


def x3_ranges(k: int, cap: int) -> list:
    """The calls of one 3xTF32 product whose operands are three blocks of
    ``k`` along K, the two small pairs first and big*big last: ranges
    ``(k0, k1)`` of K, the first the small pairs and up to ``cap`` terms of
    big*big, then ``cap`` at a time; each call after the first adds to the
    output (beta = 1).

    Why: a tensor core adds its products to the FP32 accumulator with
    truncation (Fasi et al., "Numerical behavior of NVIDIA tensor cores",
    2021), an error biased toward zero that grows with the terms summed,
    where an FP32 lane's rounding errors cancel. The small pairs are ~2^-11
    of big*big, so their sums' error hardly counts; big*big's does. cuBLAS
    starts each call with a fresh accumulator and adds C in its epilogue
    with FP32 rounding, so calls of at most ``cap`` terms bound the bias.
    On an H200 at n_units 1024, batch 4096 (scripts/gpu_probe_x3acc.py,
    results/h200x1-x3k-2026-11-28/probe.txt, which gives the small pairs a
    call of their own): dh's error against FP64, largest over largest, was
    1.07e-5 in one call of 12n, 2.66e-6 with cap 1024 and 1.36e-6 with 512
    (FP32: 2.69e-6), the weights' gradient over 4096 rows 1.20e-5, 2.46e-6
    and 1.25e-6 (FP32: 1.48e-6); by RMS, 512's errors are 1.1-2.2x FP32's,
    with a bias toward zero left (-8.5e-7). A whole update took 12.85 ms
    with 512, 11.93 with 1024, 11.04 with one call per product."""
    first = min(3 * k, 2 * k + cap)
    return [(0, first)] + spans(first, 3 * k, cap)


def spans(start: int, stop: int, cap: int) -> list:
    """``[start, stop)`` in ranges ``(a, b)`` of at most ``cap``, in order."""
    return [(a, min(a + cap, stop)) for a in range(start, stop, cap)]


def _grad_rows(batch: int) -> int:
    """Rows per part of the recurrent weights' gradient at this batch per
    GPU (0: one product)."""
    if GRAD_CHUNK == "auto":
        arithmetic = precision.process_precision()
        if arithmetic == "3xtf32":  # beside the dh chain, at every batch: its products are slower than TF32's
            return _GRAD_ROWS
        if arithmetic != "fp32" or batch < _GRAD_MIN_BATCH or lanes(batch) > 1:  # one product after the loop
            return 0
        return _GRAD_ROWS
    try:
        rows = int(GRAD_CHUNK)
    except ValueError:
        rows = -1
    if rows < 0:
        raise ValueError(f"SINEBENCH_GRAD_CHUNK={GRAD_CHUNK!r}: auto, or rows per part of the recurrent weights' "
                         "gradient (0: one product)")
    return rows


def lanes(batch: int) -> int:
    """How many lanes (:data:`LANES`) a batch per GPU runs in: at most one
    per sequence. 3xtf32 keeps one: its code takes lanes, but they were
    never measured there."""
    arithmetic = precision.process_precision()
    if LANES == "auto":
        return 2 if arithmetic == "fp32" and _LANE_BATCHES[0] <= batch < _LANE_BATCHES[1] else 1
    try:
        count = int(LANES)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"SINEBENCH_LANES={LANES!r}: auto, or the number of lanes (at least 1)")
    return 1 if arithmetic == "3xtf32" else min(count, batch)


def lane_rows(batch: int, count: int) -> list:
    """Each lane's sequences ``(r0, r1)``, in order, as even as they divide."""
    return [(batch * i // count, batch * (i + 1) // count) for i in range(count)]


def pick_split(times: dict) -> int:
    """The dh product's parts over K from each choice's time
    (``{parts: ms}``, 1 among them): the fastest, if it beats the one
    product by _SPLIT_MARGIN; a tie keeps the one product."""
    fastest = min(times, key=times.get)
    return fastest if times[fastest] < times[1] * (1 - _SPLIT_MARGIN) else 1


def grad_parts(T: int, B: int, rows: int) -> list:
    """The steps ``(t0, t1)`` of each part of the recurrent weights'
    gradient, in the order backward completes them (latest steps first),
    each of about ``rows`` rows (at least one step of ``B``), covering steps
    1 to T - 1 (step 0 has no recurrent product). Empty: no parts (``rows``
    0, one product after the loop; or T = 1, no recurrent product)."""
    if T < 2 or rows <= 0:
        return []
    steps = max(1, -(-rows // B))
    parts, t1 = [], T
    while t1 > 1:
        t0 = max(1, t1 - steps)
        parts.append((t0, t1))
        t1 = t0
    return parts


class GemmGraphs(GpuGraphs):
    """The captured update for n_units above the persistent kernels' limit."""

    OPS = (("data", "_data"), ("forward", "_forward"), ("backward", "_backward"), ("communication", "_allreduce"),
           ("optimizer", "_step"))

    @property
    def WHOLE(self):  # noqa: N802 (the base class's constant, here per instance)
        # With peers, the all-reduce runs inside backward, overlapped; the
        # phases' graphs (for the profile) keep it apart, after backward.
        overlap = self.nccl is not None and OVERLAP == "tail"
        return ("_data", "_forward", "_backward_overlapped", "_step") if overlap else None

    @property
    def plan(self) -> str:
        """How the update runs here, chosen at setup: its lanes and the
        dh product's parts (the run's ``path`` names it, so that two
        timings can be told apart by what ran)."""
        lanes_word = f"{len(self.rows)} lane{'s' if len(self.rows) > 1 else ''}"
        return f"{lanes_word}, dh in {self.dh_splits} part{'s' if self.dh_splits > 1 else ''}"

    def setup(self):
        cupy, up = self.cupy, self.up
        T, B, n = up.seqlen, up.batch, up.n
        G, R = 4 * n, T * B
        if OVERLAP not in OVERLAPS:
            raise ValueError(f"SINEBENCH_COMM_OVERLAP={OVERLAP!r}: choose from {', '.join(OVERLAPS)}")
        # Products read and write l1's W and b as one (n, 2) matrix and l3's
        # W and b as n + 1 floats: the flat layout must keep each pair adjacent.
        f = up.flat
        if f.start("/l1/b") != f.start("/l1/W") + n or f.start("/l3/b") != f.start("/l3/W") + n:
            raise ValueError("sinelstm.flat.LAYOUT must keep l1's and l3's W and b adjacent")
        self.events = []  # the capture's fork and join events, alive until it ends
        self.k = kernels(n)
        # 3xTF32: each recurrent product as three on TF32 tensor cores, of
        # operands split into a TF32 part and a TF32 remainder, the three
        # pairs side by side along K (hx, dgx, wx, wy, written by the step
        # kernels and gemm_split_w) for the forward and dh products; the
        # weights' gradient reads hx and dgx as three products of its pairs.
        # Each product is cut into calls that sum at most X3_K terms of
        # big*big (x3_ranges): with that, near FP32's accuracy.
        self.x3 = precision.process_precision() == "3xtf32"
        self.grad_rows = _grad_rows(B)
        self.blas = Blas(self.capture_stream)
        # The side stream: the recurrent weights' gradient in parts, then
        # their all-reduce, beside backward; its own handle and workspace.
        self.side = cupy.cuda.Stream(non_blocking=True)
        self.side_blas = Blas(self.side)
        self.act = cupy.empty((T, B, G), cupy.float32)  # pre-activations -> activations -> gate gradients
        self.cs = cupy.empty((T, B, n), cupy.float32)
        self.hs = cupy.empty((T, B, n), cupy.float32)
        self.x1 = cupy.ones((2, R), cupy.float32)  # row 0: the inputs (gathered); row 1: ones (for dv)
        self.tgt = cupy.empty(R, cupy.float32)
        self.dy = cupy.empty(R, cupy.float32)
        self.uv = cupy.empty(2 * G, cupy.float32)  # u = W_up w1, v = W_up b1 (b_up added by the step kernel)
        # Gradients averaged over ranks in one small all-reduce: du, dv (the
        # input projection's, rank one), then the output layer's W and b,
        # copied into the flat gradients before the step.
        self.small = cupy.empty(2 * G + n + 1, cupy.float32)
        if X3_K < 1:
            raise ValueError(f"SINEBENCH_X3_K={X3_K}: give the terms per call, at least 1")
        # The lanes: the first on the capturing stream, each with a handle.
        self.rows = lane_rows(B, lanes(B))
        self.lane_streams = [self.capture_stream] + [cupy.cuda.Stream(non_blocking=True) for _ in self.rows[1:]]
        self.lane_blas = [self.blas] + [Blas(st) for st in self.lane_streams[1:]]
        # dh in parts over K is for one lane: the step kernel finds part s at
        # s * (its rows) * n, which is a whole batch per part only with one
        self.dh_splits = self._fastest_dh_split(len(self.rows))
        # dh's parts (_dh): as many as the captured graph reads (one part at
        # batch 4096 / n_units 1024 is 16 MB, four are 64). The timing's
        # buffer of the most parts goes back to CuPy's pool first.
        self.dhn = None
        self.dhn = cupy.zeros((self.dh_splits, B, n), cupy.float32)
        self.dc = cupy.empty((B, n), cupy.float32)
        self.norm = cupy.zeros(1, cupy.float32)
        if self.x3:
            self.hx = cupy.empty((T, B, 3 * n), cupy.float32)
            self.dgx = cupy.empty((T, B, 3 * G), cupy.float32)
            self.wx = cupy.empty((G, 3 * n), cupy.float32)
            self.wy = cupy.empty((3 * G, n), cupy.float32)
        else:  # the kernels' unread arguments
            self.hx, self.dgx = self.hs, self.act

    # device pointers: a parameter's, its gradient's (from element offset),
    # any buffer's at an element offset
    def _p(self, name, offset=0):
        f = self.up.flat
        return f.params.data.ptr + 4 * (f.start(name) + offset)

    def _g(self, name, offset=0):
        f = self.up.flat
        return f.grads.data.ptr + 4 * (f.start(name) + offset)

    @staticmethod
    def _at(buf, offset):
        return buf.data.ptr + 4 * offset

    # the recorded operations (each takes the capturing stream)
    def _data(self, s):
        up, rt = self.up, self.cupy.cuda.runtime
        rt.memsetAsync(self.loss.data.ptr, 0, 4, s.ptr)
        rt.memsetAsync(self.norm.data.ptr, 0, 4, s.ptr)
        rt.memsetAsync(self._at(self.small, self.small.size - 1), 0, 4, s.ptr)  # the output bias's gradient
        if up.seqlen == 1:  # no recurrent product: its gradient stays zero
            rt.memsetAsync(self._g("/l2/lateral/W"), 0, 4 * 4 * up.n * up.n, s.ptr)
        R = up.seqlen * up.batch
        self.k["gemm_gather"](_blocks(R), (_BLOCK,), self._common() + (np.int32(up.batch), self.x1, self.tgt),
                              stream=s)

    def _forward(self, s):
        up, blas = self.up, self.blas
        T, B, n = up.seqlen, up.batch, up.n
        G = 4 * n
        # [u v] (G, 2) = W_up [w1 b1]
        blas.gemm(OP_T, OP_N, G, 2, n, self._p("/l2/upward/W"), n, self._p("/l1/W"), n, self.uv.data.ptr, G,
                  exact=True)
        if self.x3:
            self.k["gemm_split_w"](_blocks(G * n), (_BLOCK,), (up.flat.params, self.wx, self.wy), stream=s)
        self._spread(s)
        for t in range(T):
            for (r0, r1), ls, lb in self._chains():
                rows = r1 - r0
                if t:  # act[t] = hs[t-1] W_lat^T, this lane's rows
                    if self.x3:
                        for i, (k0, k1) in enumerate(x3_ranges(n, X3_K)):
                            lb.gemm(OP_T, OP_N, G, rows, k1 - k0, self._at(self.wx, k0), 3 * n,
                                    self._at(self.hx, ((t - 1) * B + r0) * 3 * n + k0), 3 * n,
                                    self._at(self.act, (t * B + r0) * G), G, accumulate=i > 0)
                    else:
                        lb.gemm(OP_T, OP_N, G, rows, n, self._p("/l2/lateral/W"), n,
                                self._at(self.hs, ((t - 1) * B + r0) * n), n, self._at(self.act, (t * B + r0) * G), G)
                prev = self.cs[t - 1] if t else self.cs[t]
                self.k["gemm_forward_step"](_blocks(rows * n), (_BLOCK,), (
                    self.x1[0, t * B + r0:], self.uv, up.flat.params, self.act[t, r0:], prev[r0:], self.cs[t, r0:],
                    self.hs[t, r0:], self.hx[t, r0:], np.int32(rows), np.int32(t == 0), np.int32(self.x3)), stream=ls)
        self._gather(s)
        warps = _BLOCK // 32
        self.k["gemm_output_loss"]((-(-T * B // warps),), (_BLOCK,), (
            self.hs, self.tgt, up.flat.params, self.dy, self.loss, self.small[-1:], np.int32(T), np.int32(B),
            np.int32(up.burn_in), np.float32(1.0 / B)), stream=s)

    def _backward(self, s):
        self._backprop(s, overlap=False)

    def _backward_overlapped(self, s):
        self._backprop(s, overlap=True)

    def _backprop(self, s, overlap):
        up, blas = self.up, self.blas
        T, B, n = up.seqlen, up.batch, up.n
        G, R = 4 * n, T * B
        parts = dict(grad_parts(T, B, self.grad_rows))  # t0 -> t1
        self._spread(s)
        chains = self._chains()
        for t in reversed(range(T)):
            for (r0, r1), ls, _ in chains:
                prev = self.cs[t - 1] if t else self.cs[t]
                self.k["gemm_backward_step"](_blocks((r1 - r0) * n), (_BLOCK,), (
                    self.act[t, r0:], self.cs[t, r0:], prev[r0:], self.dy[t * B + r0:], up.flat.params,
                    self.dhn[0, r0:], self.dc[r0:], self.dgx[t, r0:], np.int32(r1 - r0), np.int32(t == 0),
                    np.int32(t == T - 1), np.int32(self.dh_splits), np.int32(self.x3)), stream=ls)
            if t in parts:  # steps t to t1 - 1 have their gate gradients (every lane's): their part, beside
                self._fork(*self.lane_streams)
                self._dw(self.side_blas, t, parts[t])
            if t:  # dh for step t-1 = dg[t] W_lat
                for span, _, lb in chains:
                    self._dh(t, self.dh_splits, span, lb)
        self._gather(s)
        if T > 1 and not parts:  # the recurrent weights' gradient as one product
            self._dw(blas, 1, T)
        if overlap:  # its all-reduce runs beside the memory-bound products below
            if not parts:
                self._fork(s)
            self._allreduce_lat(self.side)  # after the side stream's last part
        # The output layer's weights: hs^T dy. The rank-one input projection:
        # [du dv] = dg^T [x 1]. Both into the small buffer.
        blas.gemm(OP_N, OP_N, n, 1, R, self.hs.data.ptr, n, self.dy.data.ptr, R, self._at(self.small, 2 * G), n,
                  exact=True)
        blas.gemm(OP_N, OP_N, G, 2, R, self.act.data.ptr, G, self.x1.data.ptr, R, self.small.data.ptr, G, exact=True)
        if overlap:
            self._fork(s)
            self._allreduce_range(self.small, 0, self.small.size, self.side)
        if overlap or parts:
            s.wait_event(self._join())

    def _dw(self, blas, t0, t1):
        """The recurrent weights' gradient from steps t0 to t1 - 1, the sum
        of dg[t]^T hs[t-1], added to the parts of later steps (the part
        that ends at the last step writes)."""
        up = self.up
        B, n, G = up.batch, up.n, 4 * up.n
        K, first = (t1 - t0) * B, t1 == up.seqlen
        if not self.x3:
            blas.gemm(OP_N, OP_T, n, G, K, self._at(self.hs, (t0 - 1) * B * n), n, self._at(self.act, t0 * B * G),
                      G, self._g("/l2/lateral/W"), n, accumulate=not first)
            return
        # small*big and big*small over all K rows, then big*big X3_K rows
        # at a time (x3_ranges' reason): offsets into hx's and dgx's rows
        calls = [(n, 0, 0, K), (0, G, 0, K)] + [(0, 0, r0, r1) for r0, r1 in spans(0, K, X3_K)]
        for i, (h, g, r0, r1) in enumerate(calls):
            blas.gemm(OP_N, OP_T, n, G, r1 - r0, self._at(self.hx, ((t0 - 1) * B + r0) * 3 * n + h), 3 * n,
                      self._at(self.dgx, (t0 * B + r0) * 3 * G + g), 3 * G, self._g("/l2/lateral/W"), n,
                      accumulate=i > 0 or not first)

    def _dh(self, t, splits, span=None, blas=None):
        """dh for step t - 1 = dg[t] W_lat, for the sequences ``span``
        (``(r0, r1)``; all by default) on ``blas``'s stream, as ``splits``
        parts over K that the step kernel sums."""
        up = self.up
        n, G, B = up.n, 4 * up.n, up.batch
        (r0, r1), blas = span or (0, B), blas or self.blas
        dg, out = self._at(self.act, (t * B + r0) * G), self._at(self.dhn, r0 * n)
        if self.x3:  # small*big + big*small + big*big, K = 12n, in calls (x3_ranges)
            for i, (k0, k1) in enumerate(x3_ranges(G, X3_K)):
                blas.gemm(OP_N, OP_N, n, r1 - r0, k1 - k0, self._at(self.wy, k0 * n), n,
                          self._at(self.dgx, (t * B + r0) * 3 * G + k0), 3 * G, out, n, accumulate=i > 0)
        elif splits == 1:
            blas.gemm(OP_N, OP_N, n, r1 - r0, G, self._p("/l2/lateral/W"), n, dg, G, out, n)
        else:
            blas.gemm_split_k(OP_N, OP_N, n, r1 - r0, G, self._p("/l2/lateral/W"), n, dg, G, out, n, splits)

    def _fastest_dh_split(self, lane_count: int = 1) -> int:
        """1, 2 or 4 (_SPLITS): whichever computes the backward's dh product
        fastest here, timed before capture. The product's output is (B, n)
        with K = 4n: at n_units 1024 on an H200 it has about one 128x128
        tile per SM at batch 2048 and half of one at 1024, and parts over K
        give the SMs more tiles to overlap. Alone
        (scripts/gpu_probe_splitk.py, FP32, results/h200x2-splitk-2026-11-28)
        two parts took 0.362 ms against 0.384 at batch 2048, four parts
        0.192 against 0.200 at 1024 (0.187 against 0.197 in
        results/h200x2-dhsplit-2026-11-28, where the whole update at 1024
        went from 5.158 to 5.127 ms with four); at 4096 (two tiles per SM)
        and in TF32 parts were no faster, so TF32 keeps the one product: in
        a TF32 sweep on 2 GPUs with the choice timed, updates were 8 %
        slower than with it fixed at one, as if the timing had chosen the
        parts there (the profiled run of the same configuration had not).
        Each timing brackets _TIMED_CALLS products back to back, as a
        replayed graph runs them (so that one product's host launch weighs
        less), and each updater (warm-up, timed, profiled; each rank) times
        for itself: where two choices are close they can differ between
        them. Parts must beat the one product by _SPLIT_MARGIN. Their
        operands stay 16-byte aligned, as the one product's are, only where
        4n / parts is a multiple of 4. With several lanes: one product (see
        setup). A fixed choice that cannot be honoured here is refused, not
        replaced."""
        choices = ", ".join(map(str, _SPLITS))
        if DH_SPLIT != "auto" and DH_SPLIT not in map(str, _SPLITS):
            raise ValueError(f"SINEBENCH_DH_SPLIT={DH_SPLIT!r}: choose auto or one of {choices}")
        fixed = None if DH_SPLIT == "auto" else int(DH_SPLIT)
        arithmetic = precision.process_precision()
        usable = [s for s in _SPLITS if (4 * self.up.n) % (s * 4) == 0]
        if lane_count > 1:
            why = f"{lane_count} lanes run here: set SINEBENCH_LANES=1 with it"
        elif arithmetic != "fp32":
            why = f"parts are for FP32, and this process computes in {arithmetic}"
        elif fixed is not None and fixed not in usable:
            why = f"n_units {self.up.n} does not split 4n into {fixed} aligned parts"
        else:
            why = None
        if fixed not in (None, 1) and why:
            raise ValueError(f"SINEBENCH_DH_SPLIT={DH_SPLIT}: {why}")
        if fixed is not None or why:  # fixed, or one product is all that runs here
            return fixed or 1
        if len(usable) == 1:
            return 1
        cupy, s = self.cupy, self.capture_stream
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        # _dh writes into self.dhn: room for every candidate's parts, while timing
        self.dhn = cupy.zeros((max(usable), self.up.batch, self.up.n), cupy.float32)
        times = {splits: [] for splits in usable}
        with s:
            for rep in range(_TIMING_REPS + _TIMING_WARMUPS):
                for splits in times:
                    start.record(s)
                    for _ in range(_TIMED_CALLS):
                        self._dh(0, splits)
                    stop.record(s)
                    stop.synchronize()
                    if rep >= _TIMING_WARMUPS:
                        times[splits].append(cupy.cuda.get_elapsed_time(start, stop))
        return pick_split({splits: float(np.median(t)) for splits, t in times.items()})

    def _event(self):
        event = self.cupy.cuda.Event(block=False, disable_timing=True)
        self.events.append(event)
        return event

    def _fork(self, *streams):
        """Make the side stream wait for what ``streams`` have queued."""
        self._wait(self.side, streams)

    def _wait(self, waiter, streams):
        """Make ``waiter`` wait for what each of ``streams`` has queued."""
        for stream in streams:
            if stream is not waiter:
                ready = self._event()
                ready.record(stream)
                waiter.wait_event(ready)

    def _chains(self) -> list:
        """Each lane's sequences ``(r0, r1)``, stream and cuBLAS handle."""
        return list(zip(self.rows, self.lane_streams, self.lane_blas))

    def _spread(self, s):
        """Make every lane wait for what ``s`` has queued."""
        for stream in self.lane_streams[1:]:
            self._wait(stream, [s])

    def _gather(self, s):
        """Make ``s`` wait for every lane."""
        self._wait(s, self.lane_streams[1:])

    def _join(self):
        """An event at the end of what the side stream has queued."""
        done = self._event()
        done.record(self.side)
        return done

    def _allreduce_lat(self, stream):
        f = self.up.flat
        self._allreduce_range(f.grads, f.start("/l2/lateral/W"), f.start("/l3/W"), stream)

    def _allreduce(self, s):
        if self.nccl is None:
            return
        self._allreduce_lat(s)
        self._allreduce_range(self.small, 0, self.small.size, s)

    def _step(self, s):
        up, f, blas = self.up, self.up.flat, self.blas
        n, G = up.n, 4 * up.n
        self.cupy.cuda.runtime.memcpyAsync(self._g("/l3/W"), self._at(self.small, 2 * G), 4 * (n + 1),
                                           self.cupy.cuda.runtime.memcpyDeviceToDevice, s.ptr)
        # The input projection's gradients from the (averaged) du, dv.
        self.k["gemm_finish"](_blocks(G * n), (_BLOCK,), (f.params, f.grads, self.small), stream=s)
        blas.gemm(OP_N, OP_N, n, 2, G, self._p("/l2/upward/W"), n, self.small.data.ptr, G, self._g("/l1/W"), n,
                  exact=True)
        grid = (min(1024, _blocks(f.grads.size)[0]),)
        if up.clip > 0:
            self.k["gemm_sqnorm"](grid, (_BLOCK,), (f.grads, self.norm), stream=s)
        m = f.m if up.adam else f.grads
        v = f.v if up.adam else f.grads
        self.k["gemm_optimizer"](grid, (_BLOCK,), (
            f.params, f.grads, m, v, self.counter, self.norm, np.float32(up.clip), np.float64(up.peak),
            np.float64(up.log_ratio), np.int32(up.decay), np.float64(up.beta1), np.float64(up.beta2),
            np.float32(up.eps), np.int32(1 if up.adam else 0)), stream=s)
        self.k["gemm_count"]((1,), (1,), (self.counter,), stream=s)
