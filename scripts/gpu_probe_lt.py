"""Does cuBLASLt, asked for several algorithms and timed, find FP32 products
faster than cublasGemmEx's default choice for the graph path's shapes?
(Issue 15: one GPU at batch 4096 / n_units 1024 reaches 73 % of the FP32
peak; its per-step products run at ~72 %, cuBLAS's best SGEMM here at 79 %.)

For each product of ``sinelstm.graph_gemm`` (forward W hs, backward's dh,
the recurrent weights' dW), at each batch: cublasGemmEx with the default
algorithm, then every algorithm cublasLtMatmulAlgoGetHeuristic returns (up
to --algos), each timed alone (median of --reps, after warm-ups), with its
largest difference from the default's result.

    python scripts/gpu_probe_lt.py [--n 1024] [--batches 4096,2048] [--algos 16]

What it found (2x H200, results/h200x2-cublaslt-2026-11-28): nothing worth
keeping. At batch 4096 no algorithm beat the default; at 2048 the best were
1-2 % faster alone on one machine (7 % for the forward product on another,
whose default ran slower), and the graph path with them chosen by timing
before capture, or forced, was no faster on two GPUs (9.98 ms either way).
"""
import argparse
import ctypes

import cupy
import numpy as np

from gpu_probe_splitk import time_ms  # scripts/: beside this one
from sinelstm.cublas_capture import OP_N, OP_T, WORKSPACE_BYTES, Blas, _check, library

_R32F, _COMPUTE_32F = 0, 68
_DESC_TRANSA, _DESC_TRANSB = 3, 4
_PREF_MAX_WORKSPACE = 1


class HeuristicResult(ctypes.Structure):
    _fields_ = [("algo", ctypes.c_uint64 * 8), ("workspace", ctypes.c_size_t), ("state", ctypes.c_int),
                ("waves", ctypes.c_float), ("reserved", ctypes.c_int * 4)]


class Lt:
    def __init__(self, stream):
        self.lib = library("libcublasLt")
        self.handle = ctypes.c_void_p()
        _check(self.lib.cublasLtCreate(ctypes.byref(self.handle)), "cublasLtCreate")
        self.stream = stream
        self.ws = cupy.empty(WORKSPACE_BYTES, cupy.uint8)
        self.one, self.zero = ctypes.c_float(1.0), ctypes.c_float(0.0)

    def layout(self, rows, cols, ld):
        lay = ctypes.c_void_p()
        _check(self.lib.cublasLtMatrixLayoutCreate(ctypes.byref(lay), _R32F, ctypes.c_uint64(rows),
                                                   ctypes.c_uint64(cols), ctypes.c_int64(ld)), "layout")
        return lay

    def plan(self, transa, transb, m, n, k, lda, ldb, ldc, count):
        """The matmul descriptor, layouts and up to ``count`` algorithms."""
        desc = ctypes.c_void_p()
        _check(self.lib.cublasLtMatmulDescCreate(ctypes.byref(desc), _COMPUTE_32F, _R32F), "desc")
        for attr, op in ((_DESC_TRANSA, transa), (_DESC_TRANSB, transb)):
            v = ctypes.c_int32(op)
            _check(self.lib.cublasLtMatmulDescSetAttribute(desc, attr, ctypes.byref(v), ctypes.c_size_t(4)), "attr")
        a = self.layout(k, m, lda) if transa == OP_T else self.layout(m, k, lda)
        b = self.layout(n, k, ldb) if transb == OP_T else self.layout(k, n, ldb)
        c = self.layout(m, n, ldc)
        pref = ctypes.c_void_p()
        _check(self.lib.cublasLtMatmulPreferenceCreate(ctypes.byref(pref)), "pref")
        ws = ctypes.c_uint64(WORKSPACE_BYTES)
        _check(self.lib.cublasLtMatmulPreferenceSetAttribute(pref, _PREF_MAX_WORKSPACE, ctypes.byref(ws),
                                                             ctypes.c_size_t(8)), "pref attr")
        results = (HeuristicResult * count)()
        got = ctypes.c_int()
        _check(self.lib.cublasLtMatmulAlgoGetHeuristic(self.handle, desc, a, b, c, c, pref, count, results,
                                                       ctypes.byref(got)), "heuristic")
        return desc, a, b, c, [results[i] for i in range(got.value) if results[i].state == 0]

    def matmul(self, desc, la, lb, lc, A, B, C, result):
        _check(self.lib.cublasLtMatmul(
            self.handle, desc, ctypes.byref(self.one), ctypes.c_void_p(A), la, ctypes.c_void_p(B), lb,
            ctypes.byref(self.zero), ctypes.c_void_p(C), lc, ctypes.c_void_p(C), lc, ctypes.byref(result.algo),
            ctypes.c_void_p(self.ws.data.ptr), ctypes.c_size_t(WORKSPACE_BYTES),
            ctypes.c_void_p(self.stream.ptr)), "cublasLtMatmul")


def shapes(n, B, rows):
    G = 4 * n
    # name, transa, transb, m, n, k, A rows x cols (col-major storage), lda, B storage, ldb, ldc
    return [
        ("forward W hs", OP_T, OP_N, G, B, n, (n, G), n, (n, B), n, G),
        ("dh = W dg", OP_N, OP_N, n, B, G, (n, G), n, (G, B), G, n),
        (f"dW ({rows} rows)", OP_N, OP_T, n, G, rows, (n, rows), n, (G, rows), G, n),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batches", default="4096,2048")
    ap.add_argument("--algos", type=int, default=16)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    stream = cupy.cuda.Stream(non_blocking=True)
    blas, lt = Blas(stream), Lt(stream)
    print(f"== {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()} n={args.n}, FP32")
    for B in map(int, args.batches.split(",")):
        products = shapes(args.n, B, 4096) + shapes(args.n, B, 10 * B)[2:]  # dW as a part and whole
        for name, ta, tb, m, nn, k, ash, lda, bsh, ldb, ldc in products:
            A = cupy.random.standard_normal(ash[::-1], dtype=cupy.float32)  # C-order (cols, rows)
            Bm = cupy.random.standard_normal(bsh[::-1], dtype=cupy.float32)
            ref = cupy.zeros((nn, ldc), cupy.float32)
            out = cupy.zeros_like(ref)
            cupy.cuda.Device().synchronize()  # made on the legacy stream, which `stream` does not wait for
            flops = 2 * m * nn * k

            def default():
                blas.gemm(ta, tb, m, nn, k, A.data.ptr, lda, Bm.data.ptr, ldb, ref.data.ptr, ldc)
            with stream:
                base = time_ms(default, args.reps)
            desc, la, lb, lc, algos = lt.plan(ta, tb, m, nn, k, lda, ldb, ldc, args.algos)
            print(f"B={B:5d} {name:<18} GemmEx default {base:.4f} ms {flops / base / 1e9:5.1f} TF/s; "
                  f"{len(algos)} Lt algorithms")
            best = (base, "default")
            for i, res in enumerate(algos):
                def call(res=res):
                    lt.matmul(desc, la, lb, lc, A.data.ptr, Bm.data.ptr, out.data.ptr, res)
                try:
                    with stream:
                        ms = time_ms(call, args.reps)
                except Exception as exc:  # noqa: BLE001 - a probe: report and go on
                    print(f"    algo {i}: {exc}")
                    continue
                err = float(cupy.abs(out - ref).max() / cupy.abs(ref).max())
                print(f"    algo {i:2d}: {ms:.4f} ms {flops / ms / 1e9:5.1f} TF/s ({ms / base - 1:+6.1%}) "
                      f"waves {res.waves:.2f} ws {res.workspace >> 10} KiB err {err:.1e}")
                if ms < best[0]:
                    best = (ms, f"algo {i}")
            print(f"  best: {best[1]} {best[0]:.4f} ms ({best[0] / base - 1:+.1%})")


if __name__ == "__main__":
    main()
