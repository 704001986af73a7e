"""Would splitting the backward's dh product over K help at small batches?
Times ``sinelstm.graph_gemm``'s dh product (dg[t] W, m = n, n = B, k = 4n)
as one cublasGemmEx against the same product as S partial products over K
(``Blas.gemm_split_k``: one strided-batched call, S outputs the step kernel
would sum; S must divide 4n), per batch and precision. At batch 2048 the one
product leaves SMs idle (its output has about one tile per SM).

    python scripts/gpu_probe_splitk.py [--n 1024] [--batches 4096,2048,1024] [--splits 1,2,4]
"""
import argparse

import cupy
import numpy as np

from sinelstm.cublas_capture import _COMPUTE, OP_N, Blas


def time_ms(fn, reps=50):
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batches", default="4096,2048,1024")
    ap.add_argument("--splits", default="1,2,4")
    args = ap.parse_args()
    n, G = args.n, 4 * args.n
    stream = cupy.cuda.Stream(non_blocking=True)
    print(f"== {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()} n={n}")
    for prec in ("fp32", "tf32"):
        blas = Blas(stream)
        blas.compute = _COMPUTE[prec]
        W = cupy.random.standard_normal((G, n), dtype=cupy.float32)  # row-major (G, n): column-major (n, G)
        for B in map(int, args.batches.split(",")):
            act = cupy.random.standard_normal((B, G), dtype=cupy.float32)
            ref = None
            line = [f"{prec} B={B:5d}"]
            for S in map(int, args.splits.split(",")):
                out = cupy.zeros((S, B, n), cupy.float32)

                def call():
                    with stream:
                        if S == 1:
                            blas.gemm(OP_N, OP_N, n, B, G, W.data.ptr, n, act.data.ptr, G, out.data.ptr, n)
                        else:
                            blas.gemm_split_k(OP_N, OP_N, n, B, G, W.data.ptr, n, act.data.ptr, G, out.data.ptr,
                                              n, S)
                with stream:
                    ms = time_ms(call)
                    got = out.sum(axis=0)
                    add = time_ms(lambda: out.sum(axis=0)) if S > 1 else 0.0
                if ref is None:
                    ref = got
                err = float(cupy.abs(got - ref).max() / cupy.abs(ref).max())
                tf = 2 * B * n * G / ms / 1e9
                line.append(f"S={S}: {ms:.3f} ms {tf:5.1f} TF/s (sum apart {add:.3f}) err {err:.1e}")
            print(" | ".join(line))
        blas.close()


if __name__ == "__main__":
    main()
