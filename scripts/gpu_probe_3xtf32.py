"""Could FP32-accurate products run faster on tensor cores? Times the
graph path's three recurrent products (``sinelstm.graph_gemm``: forward
``W h``, backward ``dh = W dg`` and the weights' gradient over all steps) in
FP32, in TF32, and as 3xTF32 (each operand split into a TF32 "big" part and
a TF32 "small" part, the residual; the product is big*big + big*small +
small*big, with FP32 accumulation, as CUTLASS's 3xTF32 does): one product
with the three pairs concatenated along K. Prints each one's time and its
largest error against an FP64 product, relative to the output's largest
magnitude.

    python scripts/gpu_probe_3xtf32.py [--n 1024] [--batches 4096,2048,1024]
"""
import argparse

import cupy

from gpu_probe_splitk import time_ms  # scripts/: beside this one
from sinelstm.cublas_capture import _COMPUTE, OP_N, OP_T, Blas


def tf32(x):
    """Round to the nearest TF32 value (10 stored mantissa bits)."""
    bits = x.view(cupy.uint32)
    return ((bits + cupy.uint32(0x1000)) & cupy.uint32(0xFFFFE000)).view(cupy.float32)


def handles(stream) -> dict:
    """cuBLAS handles on ``stream`` computing in FP32 and in TF32, whatever
    this process's precision."""
    blas = {p: Blas(stream) for p in ("fp32", "tf32")}
    for p, b in blas.items():
        b.compute = _COMPUTE[p]
    return blas


def split(x):
    big = tf32(x)
    return big, tf32(x - big)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batches", default="4096,2048,1024")
    ap.add_argument("--T", type=int, default=10)
    args = ap.parse_args()
    n, G = args.n, 4 * args.n
    stream = cupy.cuda.Stream(non_blocking=True)
    print(f"== {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()} n={n}", flush=True)
    blas = handles(stream)
    rng = cupy.random.default_rng(0)
    W = (rng.standard_normal((G, n), dtype=cupy.float32) * 0.03).astype(cupy.float32)  # row-major (G, n)
    Wb, Ws = split(W)
    Wx = cupy.concatenate([Ws, Wb, Wb], axis=1)  # (G, 3n): each row [Ws | Wb | Wb]
    Wy = cupy.concatenate([Ws, Wb, Wb], axis=0)  # (3G, n)
    for B in map(int, args.batches.split(",")):
        R = (args.T - 1) * B
        h = cupy.tanh(rng.standard_normal((R, n), dtype=cupy.float32))
        dg = (rng.standard_normal((R, G), dtype=cupy.float32) * 1e-3).astype(cupy.float32)
        hb, hs = split(h)
        dgb, dgs = split(dg)
        hx = cupy.concatenate([hb, hs, hb], axis=1)  # (R, 3n)
        dgx = cupy.concatenate([dgb, dgs, dgb], axis=1)  # (R, 3G)
        out_f = cupy.empty((B, G), cupy.float32)
        out_dh = cupy.empty((B, n), cupy.float32)
        out_dw = cupy.empty((G, n), cupy.float32)
        ref_f = (h[:B].astype(cupy.float64) @ W.T.astype(cupy.float64))
        ref_dh = dg[:B].astype(cupy.float64) @ W.astype(cupy.float64)
        ref_dw = dg.T.astype(cupy.float64) @ h.astype(cupy.float64)

        def err(out, ref):
            return float(cupy.abs(out - ref).max() / cupy.abs(ref).max())

        cases = {
            "forward": (
                lambda b: b.gemm(OP_T, OP_N, G, B, n, W.data.ptr, n, h.data.ptr, n, out_f.data.ptr, G),
                lambda b: b.gemm(OP_T, OP_N, G, B, 3 * n, Wx.data.ptr, 3 * n, hx.data.ptr, 3 * n, out_f.data.ptr, G),
                out_f, ref_f, 2.0 * B * G * n),
            "dh": (
                lambda b: b.gemm(OP_N, OP_N, n, B, G, W.data.ptr, n, dg.data.ptr, G, out_dh.data.ptr, n),
                lambda b: b.gemm(OP_N, OP_N, n, B, 3 * G, Wy.data.ptr, n, dgx.data.ptr, 3 * G, out_dh.data.ptr, n),
                out_dh, ref_dh, 2.0 * B * G * n),
            "dW": (
                lambda b: b.gemm(OP_N, OP_T, n, G, R, h.data.ptr, n, dg.data.ptr, G, out_dw.data.ptr, n),
                lambda b: [b.gemm(OP_N, OP_T, n, G, R, hx.data.ptr + 4 * oh, 3 * n, dgx.data.ptr + 4 * og, 3 * G,
                                  out_dw.data.ptr, n, accumulate=i > 0)
                           for i, (oh, og) in enumerate(((n, 0), (0, G), (0, 0)))],
                out_dw, ref_dw, 2.0 * R * G * n),
        }
        for name, (one, three, out, ref, flops) in cases.items():
            line = [f"B={B:5d} {name:8s}"]
            for label, b, fn in (("fp32", blas["fp32"], one), ("tf32", blas["tf32"], one),
                                 ("3xtf32", blas["tf32"], three)):
                with stream:
                    ms = time_ms(lambda: fn(b), reps=30)
                    fn(b)
                stream.synchronize()
                line.append(f"{label} {ms:7.3f} ms {flops / ms / 1e9:6.1f} TF/s err {err(out, ref):.2e}")
            print(" | ".join(line), flush=True)


if __name__ == "__main__":
    main()
