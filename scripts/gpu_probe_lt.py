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
"""
import argparse

import cupy
import numpy as np

from sinelstm.cublas_capture import OP_N, OP_T, Blas


def time_ms(fn, stream, reps):
    with stream:
        for _ in range(5):
            fn()
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        times = []
        for _ in range(reps):
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, stop))
    return float(np.median(times))


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
    blas = Blas(stream)
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
            base = time_ms(default, stream, args.reps)
            product = blas.lt_product(ta, tb, m, nn, k, lda, ldb, ldc, args.algos)
            algos = product.algos
            print(f"B={B:5d} {name:<18} GemmEx default {base:.4f} ms {flops / base / 1e9:5.1f} TF/s; "
                  f"{len(algos)} Lt algorithms")
            best = (base, "default")
            for i, res in enumerate(algos):
                def call(res=res):
                    blas.lt_gemm(product, res, A.data.ptr, Bm.data.ptr, out.data.ptr)
                try:
                    ms = time_ms(call, stream, args.reps)
                except Exception as exc:  # noqa: BLE001 - a probe: report and go on
                    print(f"    algo {i}: {exc}")
                    continue
                err = float(cupy.abs(out - ref).max() / cupy.abs(ref).max())
                print(f"    algo {i:2d}: {ms:.4f} ms {flops / ms / 1e9:5.1f} TF/s ({ms / base - 1:+6.1%}) "
                      f"waves {res.waves:.2f} ws {res.workspace >> 10} KiB err {err:.1e}")
                if ms < best[0]:
                    best = (ms, f"algo {i}")
            print(f"  best: {best[1]} {best[0]:.4f} ms ({best[0] / base - 1:+.1%})")
            chose = blas.tune(ta, tb, m, nn, k, A.data.ptr, lda, Bm.data.ptr, ldb, out.data.ptr, ldc)
            print(f"  Blas.tune chose: {chose}")


if __name__ == "__main__":
    main()
