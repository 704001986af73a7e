"""Can the captured path's products be faster? Times each recurrent product
of ``sinelstm.graph_gemm`` (forward h W^T, backward dg W, the weights'
gradient over all steps) as it is called today (cublasGemmEx, default
algorithm) against every algorithm cuBLASLt's heuristic offers for it, and
against the transposed-operand layouts, at batch 4096 and its half.

    python scripts/gpu_probe_gemm.py [--n 1024] [--batches 4096,2048] [--algos 32]
"""
import argparse
import ctypes

import cupy

from sinelstm.cublas_capture import _COMPUTE, OP_N, OP_T, Blas, library

R32F = 0


class HeuristicResult(ctypes.Structure):
    _fields_ = [("algo", ctypes.c_uint64 * 8), ("workspaceSize", ctypes.c_size_t), ("state", ctypes.c_int),
                ("wavesCount", ctypes.c_float), ("reserved", ctypes.c_int * 4)]


def check(status, what):
    if status != 0:
        raise RuntimeError(f"{what}: status {status}")


class Lt:
    def __init__(self, stream, workspace):
        self.lib = lib = library("libcublasLt")
        self.handle = ctypes.c_void_p()
        check(lib.cublasLtCreate(ctypes.byref(self.handle)), "cublasLtCreate")
        self.stream, self.ws = stream, workspace
        lib.cublasLtMatrixLayoutCreate.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64, ctypes.c_uint64,
                                                   ctypes.c_int64]

    def layout(self, rows, cols, ld):
        d = ctypes.c_void_p()
        check(self.lib.cublasLtMatrixLayoutCreate(ctypes.byref(d), R32F, rows, cols, ld), "layout")
        return d

    def plan(self, compute, ta, tb, m, n, k, lda, ldb, ldc, count):
        lib = self.lib
        desc = ctypes.c_void_p()
        check(lib.cublasLtMatmulDescCreate(ctypes.byref(desc), compute, R32F), "desc")
        for attr, val in ((3, ta), (4, tb)):
            v = ctypes.c_int32(val)
            check(lib.cublasLtMatmulDescSetAttribute(desc, attr, ctypes.byref(v), 4), "set trans")
        a = self.layout(m if ta == OP_N else k, k if ta == OP_N else m, lda)
        b = self.layout(k if tb == OP_N else n, n if tb == OP_N else k, ldb)
        c = self.layout(m, n, ldc)
        pref = ctypes.c_void_p()
        check(lib.cublasLtMatmulPreferenceCreate(ctypes.byref(pref)), "pref")
        wsb = ctypes.c_uint64(self.ws.nbytes)
        check(lib.cublasLtMatmulPreferenceSetAttribute(pref, 1, ctypes.byref(wsb), 8), "pref ws")
        results = (HeuristicResult * count)()
        got = ctypes.c_int()
        check(lib.cublasLtMatmulAlgoGetHeuristic(self.handle, desc, a, b, c, c, pref, count, results,
                                                 ctypes.byref(got)), "heuristic")
        return desc, a, b, c, [results[i] for i in range(got.value) if results[i].state == 0]

    def matmul(self, plan, algo, A, B, C):
        desc, a, b, c, _ = plan
        one, zero = ctypes.c_float(1), ctypes.c_float(0)
        check(self.lib.cublasLtMatmul(self.handle, desc, ctypes.byref(one), ctypes.c_void_p(A), a,
                                      ctypes.c_void_p(B), b, ctypes.byref(zero), ctypes.c_void_p(C), c,
                                      ctypes.c_void_p(C), c, ctypes.byref(algo.algo), ctypes.c_void_p(self.ws.data.ptr),
                                      ctypes.c_size_t(self.ws.nbytes), ctypes.c_void_p(self.stream.ptr)), "matmul")


def time_ms(fn, stream, reps=20):
    for _ in range(3):
        fn()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    for _ in range(reps):
        start.record(stream)
        fn()
        end.record(stream)
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end))
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batches", default="4096,2048")
    ap.add_argument("--algos", type=int, default=32)
    ap.add_argument("--T", type=int, default=10)
    args = ap.parse_args()
    stream = cupy.cuda.Stream(non_blocking=True)
    n, G, T = args.n, 4 * args.n, args.T
    print(f"== {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()} n={n} T={T}")
    for prec in ("fp32", "tf32"):
        for B in map(int, args.batches.split(",")):
            with stream:
                blas = Blas(stream)
                blas.compute = _COMPUTE[prec]
                lt = Lt(stream, blas.workspace)
                W = cupy.random.standard_normal((G, n), cupy.float32)  # row-major (4n, n) = col-major (n, G)
                Wt = cupy.ascontiguousarray(W.T)  # row-major (n, G) = col-major (G, n)
                h = cupy.random.standard_normal((T * B, n), cupy.float32)
                act = cupy.random.standard_normal((T * B, G), cupy.float32)
                out = cupy.empty((B, G), cupy.float32)
                dW = cupy.empty((G, n), cupy.float32)
            p = W.data.ptr, Wt.data.ptr, h.data.ptr, act.data.ptr, out.data.ptr, dW.data.ptr
            Wp, Wtp, hp, ap_, op, dWp = p
            K = (T - 1) * B
            cases = [  # name, (ta, tb, m, n, k, A, lda, B, ldb, C, ldc), flops
                ("fwd  T,N W", (OP_T, OP_N, G, B, n, Wp, n, hp, n, op, G), 2 * G * B * n),
                ("fwd  N,N Wt", (OP_N, OP_N, G, B, n, Wtp, G, hp, n, op, G), 2 * G * B * n),
                ("bwd  N,N W", (OP_N, OP_N, n, B, G, Wp, n, ap_, G, op, n), 2 * G * B * n),
                ("bwd  T,N Wt", (OP_T, OP_N, n, B, G, Wtp, G, ap_, G, op, n), 2 * G * B * n),
                ("dW   N,T", (OP_N, OP_T, n, G, K, hp, n, ap_, G, dWp, n), 2 * G * K * n),
            ]
            for name, (ta, tb, m, nn, k, A, lda, Bm, ldb, C, ldc), flops in cases:
                base = time_ms(lambda: blas.gemm(ta, tb, m, nn, k, A, lda, Bm, ldb, C, ldc), stream)
                plan = lt.plan(_COMPUTE[prec], ta, tb, m, nn, k, lda, ldb, ldc, args.algos)
                ts = []
                for i, r in enumerate(plan[4]):
                    try:
                        ts.append((time_ms(lambda: lt.matmul(plan, r, A, Bm, C), stream, reps=10), i, r.wavesCount))
                    except RuntimeError as e:
                        ts.append((float("inf"), i, str(e)))
                ts.sort()
                best = ts[0] if ts else (float("nan"), -1, 0)
                first = next((t for t in ts if t[1] == 0), best)
                tf = lambda ms: flops / ms / 1e9  # noqa: E731
                print(f"  {prec} B={B:5d} {name:12s} GemmEx {base:7.3f} ms {tf(base):6.1f} TF/s | Lt first "
                      f"{first[0]:7.3f} | Lt best {best[0]:7.3f} ms {tf(best[0]):6.1f} TF/s (#{best[1]} of "
                      f"{len(ts)}) gain {100 * (base / best[0] - 1):+.1f} %", flush=True)
            del W, Wt, h, act, out, dW
            cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    main()
