"""The whole update on a GPU as four kernels that a CUDA graph can capture.

Why not capture the eager path: it is hundreds of kernel launches per update
(one matrix product and one elementwise kernel per time step, forward and
backward), its matrix products go through cuBLAS, which CuPy 14 refuses to
call during stream capture (cupy issue 6290), and even captured, hundreds of
graph nodes cost more than the arithmetic at small sizes. So the recurrence
is a *persistent* kernel (Diamos et al., "Persistent RNNs", ICML 2016): one
block per sequence runs the whole window in one launch, each thread owning
one gate row of the recurrent weights in registers, the hidden state in
shared memory; another kernel runs backpropagation through the window the
same way, each thread also holding a column slice of the weights for
``dh = W^T dg``. An update is then

    memset(grads)  forward  backward  finish  [all-reduce]  step

with no host work in between, captured once and replayed. Registers bound
the size: one row, one column slice and one gradient row of n_units floats
per thread, so the path serves n_units <= MAX_UNITS (:mod:`sinelstm.graph`
chooses). The arithmetic is :mod:`sinelstm.graph_cpu`'s, one block per
sequence instead of a loop over sequences; gradients of the shared weights
are summed over blocks with atomics, so the last bits of a sum may differ
between runs (as cuDNN's do).

Every kernel reads the update count from device memory (``counter``): the
window offsets for update k and the learning rate of the schedule are looked
up there, so nothing changes between replays but memory the kernels own.
"""
# n_units 96 needs 250 registers a thread in backward: 384 threads then
# exceed an SM's 64K registers. 64 fits (167 a thread, no spills).
MAX_UNITS = 64

HEADER = r"""

#define G (4 * N)
// Parameter offsets in the flat buffers (sinelstm.flat.LAYOUT).
#define O_W1 0
#define O_B1 (N)
#define O_WUP (2 * N)
#define O_BUP (O_WUP + G * N)
#define O_WLAT (O_BUP + G)
#define O_W3 (O_WLAT + G * N)
#define O_B3 (O_W3 + N)
#define P_SIZE (O_B3 + 1)

__device__ __forceinline__ float sig(float x) { return tanhf(x * 0.5f) * 0.5f + 0.5f; }

__device__ __forceinline__ long long window_start(const long long* offs, const int* counter, int chunk,
                                                  int batch_global, int shard0, int b) {
    return offs[(long long)(*counter % chunk) * batch_global + shard0 + b];
}

// The optimizer's step for update k: the recipe's learning rate
// (sinelstm.recipes.lr_at: peak * exp(log_ratio * min(k, decay) / decay)),
// for Adam with the bias correction folded in, as Chainer's AdamRule.
__device__ __forceinline__ float step_size(int k, double peak, double log_ratio, int decay, double beta1,
                                           double beta2, int adam) {
    const double lr = decay > 0 ? peak * exp(log_ratio * (double)min(k, decay) / (double)decay) : peak;
    const double t = (double)(k + 1);
    return adam ? (float)(lr * sqrt(1.0 - pow(beta2, t)) / (1.0 - pow(beta1, t))) : (float)lr;
}

// One parameter's Adam (b1 = 1 - beta1, b2 = 1 - beta2) or SGD update.
__device__ __forceinline__ void update_element(float* p, float* m, float* v, long long e, float ge, float step,
                                               float b1, float b2, float eps, int adam) {
    if (adam) {
        const float me = m[e] + b1 * (ge - m[e]);
        const float ve = v[e] + b2 * (ge * ge - v[e]);
        m[e] = me;
        v[e] = ve;
        p[e] -= step * me / (sqrtf(ve) + eps);
    } else {
        p[e] -= step * ge;
    }
}
"""

_SOURCE = HEADER + r"""
// One block per sequence, blockDim.x >= G (a multiple of 32).
extern "C" __global__ void lstm_forward(
        const float* __restrict__ series, const long long* __restrict__ offs, const int* __restrict__ counter,
        int chunk, int batch_global, int shard0, int T, int burn_in, float inv_b,
        const float* __restrict__ p, float* __restrict__ act, float* __restrict__ cs, float* __restrict__ hs,
        float* __restrict__ dy, float* __restrict__ loss) {
    __shared__ float h[N], a_sh[G], red[32];
    const int b = blockIdx.x, r = threadIdx.x;
    const long long start = window_start(offs, counter, chunk, batch_global, shard0, b);
    float w[N], u = 0.f, v = 0.f;
    if (r < G) {
        #pragma unroll
        for (int k = 0; k < N; ++k) {
            const float wu = p[O_WUP + r * N + k];
            u += wu * p[O_W1 + k];
            v += wu * p[O_B1 + k];
            w[k] = p[O_WLAT + r * N + k];
        }
        v += p[O_BUP + r];
    }
    float c = 0.f;
    for (int t = 0; t < T; ++t) {
        const float x = series[start + t];
        if (r < G) {
            float s = x * u + v;
            if (t > 0) {
                #pragma unroll
                for (int k = 0; k < N; ++k) s += w[k] * h[k];
            }
            const float a = (r & 3) == 0 ? tanhf(s) : sig(s);
            a_sh[r] = a;
            act[((long long)b * T + t) * G + r] = a;
        }
        __syncthreads();  // every read of h for this step is done
        if (r < N) {
            c = a_sh[4 * r] * a_sh[4 * r + 1] + (t > 0 ? a_sh[4 * r + 2] * c : 0.f);
            const float hn = a_sh[4 * r + 3] * tanhf(c);
            h[r] = hn;
            cs[((long long)b * T + t) * N + r] = c;
            hs[((long long)b * T + t) * N + r] = hn;
        }
        __syncthreads();
    }
    // Outputs and the loss's gradient, every step in parallel.
    float sq = 0.f;
    for (int t = r; t < T; t += blockDim.x) {
        float y = p[O_B3];
        #pragma unroll
        for (int k = 0; k < N; ++k) y += p[O_W3 + k] * hs[((long long)b * T + t) * N + k];
        float d = 0.f;
        if (t >= burn_in) {
            const float e = y - series[start + t + 1];
            sq += e * e;
            d = 2.f * e * inv_b;
        }
        dy[(long long)b * T + t] = d;
    }
    #pragma unroll
    for (int m = 16; m > 0; m >>= 1) sq += __shfl_xor_sync(0xffffffffu, sq, m);
    if ((r & 31) == 0) red[r >> 5] = sq;
    __syncthreads();
    if (r == 0) {
        float s = 0.f;
        for (int i = 0; i < (int)(blockDim.x >> 5); ++i) s += red[i];
        atomicAdd(loss, s * inv_b);
    }
}

extern "C" __global__ void lstm_backward(
        const float* __restrict__ series, const long long* __restrict__ offs, const int* __restrict__ counter,
        int chunk, int batch_global, int shard0, int T,
        const float* __restrict__ p, float* __restrict__ g, float* __restrict__ duv,
        const float* __restrict__ act, const float* __restrict__ cs, const float* __restrict__ hs,
        const float* __restrict__ dy) {
    __shared__ float dg[G], hprev[N], dhn[N];
    const int b = blockIdx.x, r = threadIdx.x;
    const int j = r >> 2, part = r & 3;  // thread r sums rows part*N .. part*N+N-1 of column j
    const long long start = window_start(offs, counter, chunk, batch_global, shard0, b);
    float wcol[N], dw[N], du = 0.f, dv = 0.f, dw3 = 0.f, db3 = 0.f, dc = 0.f, w3 = 0.f;
    #pragma unroll
    for (int k = 0; k < N; ++k) {
        wcol[k] = r < G ? p[O_WLAT + (part * N + k) * N + j] : 0.f;
        dw[k] = 0.f;
    }
    if (r < N) { w3 = p[O_W3 + r]; dhn[r] = 0.f; }
    __syncthreads();
    for (int t = T - 1; t >= 0; --t) {
        const long long bt = (long long)b * T + t;
        const float d_out = dy[bt];
        if (r < N) {
            const float a = act[bt * G + 4 * r], i = act[bt * G + 4 * r + 1];
            const float f = act[bt * G + 4 * r + 2], o = act[bt * G + 4 * r + 3];
            const float tc = tanhf(cs[bt * N + r]);
            const float dh = d_out * w3 + dhn[r];
            const float dct = dh * o * (1.f - tc * tc) + dc;
            const float cp = t > 0 ? cs[(bt - 1) * N + r] : 0.f;
            dg[4 * r] = dct * i * (1.f - a * a);
            dg[4 * r + 1] = dct * a * i * (1.f - i);
            dg[4 * r + 2] = dct * cp * f * (1.f - f);
            dg[4 * r + 3] = dh * tc * o * (1.f - o);
            dc = dct * f;
            dw3 += d_out * hs[bt * N + r];
            hprev[r] = t > 0 ? hs[(bt - 1) * N + r] : 0.f;
        }
        if (r == 0) db3 += d_out;
        __syncthreads();  // dg and hprev ready; every read of dhn for this step done
        float partial = 0.f;
        if (r < G) {
            const float d = dg[r];
            du += d * series[start + t];
            dv += d;
            if (t > 0) {
                #pragma unroll
                for (int k = 0; k < N; ++k) {
                    dw[k] += d * hprev[k];
                    partial += wcol[k] * dg[part * N + k];
                }
            }
        }
        // The four partial sums of column j sit in lanes 4j .. 4j+3 of one warp.
        partial += __shfl_xor_sync(0xffffffffu, partial, 1);
        partial += __shfl_xor_sync(0xffffffffu, partial, 2);
        if (r < G && part == 0) dhn[j] = partial;
        __syncthreads();
    }
    if (r < G) {
        #pragma unroll
        for (int k = 0; k < N; ++k) atomicAdd(&g[O_WLAT + r * N + k], dw[k]);
        atomicAdd(&duv[r], du);
        atomicAdd(&duv[G + r], dv);
    }
    if (r < N) atomicAdd(&g[O_W3 + r], dw3);
    if (r == 0) atomicAdd(&g[O_B3], db3);
}

// One block: the input projection's gradients from du, dv (rank one).
extern "C" __global__ void lstm_finish(const float* __restrict__ p, float* __restrict__ g,
                                       const float* __restrict__ duv) {
    for (int e = threadIdx.x; e < G * N; e += blockDim.x) {
        const int r = e / N, k = e - r * N;
        g[O_WUP + e] = duv[r] * p[O_W1 + k] + duv[G + r] * p[O_B1 + k];
    }
    for (int r = threadIdx.x; r < G; r += blockDim.x) g[O_BUP + r] = duv[G + r];
    for (int k = threadIdx.x; k < N; k += blockDim.x) {
        float s1 = 0.f, s2 = 0.f;
        for (int r = 0; r < G; ++r) {
            const float w = p[O_WUP + r * N + k];
            s1 += w * duv[r];
            s2 += w * duv[G + r];
        }
        g[O_W1 + k] = s1;
        g[O_B1 + k] = s2;
    }
}

// One block: scale (1 where the all-reduce averages, as GpuGraphs' does),
// clip the norm as Chainer's GradientClipping, then Adam or SGD (step_size,
// update_element), and count the update.
extern "C" __global__ void optimizer_step(
        float* __restrict__ p, float* __restrict__ g, float* __restrict__ m, float* __restrict__ v,
        int* __restrict__ counter, float scale, float clip, double peak, double log_ratio, int decay,
        double beta1, double beta2, float eps, int adam) {
    __shared__ float red[32];
    __shared__ float rate;
    const int k = *counter;
    float sq = 0.f;
    for (int e = threadIdx.x; e < P_SIZE; e += blockDim.x) {
        const float ge = g[e] * scale;
        g[e] = ge;
        sq += ge * ge;
    }
    if (clip > 0.f) {
        #pragma unroll
        for (int s = 16; s > 0; s >>= 1) sq += __shfl_xor_sync(0xffffffffu, sq, s);
        if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = sq;
        __syncthreads();
        if (threadIdx.x == 0) {
            float tot = 0.f;
            for (int i = 0; i < (int)(blockDim.x >> 5); ++i) tot += red[i];
            rate = fminf(clip / sqrtf(tot), 1.f);
        }
        __syncthreads();
    } else if (threadIdx.x == 0) {
        rate = 1.f;
    }
    __syncthreads();
    const float step = step_size(k, peak, log_ratio, decay, beta1, beta2, adam);
    const float b1 = (float)(1.0 - beta1), b2 = (float)(1.0 - beta2);
    for (int e = threadIdx.x; e < P_SIZE; e += blockDim.x) {
        const float ge = g[e] * rate;
        update_element(p, m, v, e, ge, step, b1, b2, eps, adam);
        if (rate != 1.f) g[e] = ge;
    }
    __syncthreads();
    if (threadIdx.x == 0) *counter = k + 1;
}
"""


def kernels(n_units: int):
    """The four kernels compiled for ``n_units`` (a compile-time constant,
    so that the per-thread weight slices live in registers)."""
    import cupy

    if not 1 <= n_units <= MAX_UNITS:
        raise ValueError(f"the persistent kernels serve n_units 1..{MAX_UNITS}, not {n_units}")
    module = cupy.RawModule(code=_SOURCE, options=("-std=c++14", f"-DN={n_units}"))
    return {name: module.get_function(name)
            for name in ("lstm_forward", "lstm_backward", "lstm_finish", "optimizer_step")}


def threads_per_sequence(n_units: int) -> int:
    """One thread per gate row, in whole warps (the shuffles use full masks)."""
    return max(32, -(-4 * n_units // 32) * 32)
