"""Why is 3xTF32 less exact than FP32 at large K, and what does the cure
cost? A tensor core adds its products to the FP32 accumulator with
truncation (Fasi et al., "Numerical behavior of NVIDIA tensor cores",
2021): an error biased toward zero, of about an ulp per instruction, that
grows with K where FP32 lanes' rounding errors cancel. In 3xTF32 the two
small products are ~2^-11 of the big one, so their sums' errors are small;
the big*big sum is the one whose K matters. cuBLAS adds C in the epilogue
(beta = 1), with FP32 rounding, to a fresh accumulator: so a product whose
big*big K is cut into calls of at most ``cap`` terms, accumulated through C,
bounds that error by the cap.

For each of graph_gemm's three recurrent products (forward W h, dh = W dg,
the weights' gradient over one part of ``--rows`` rows), at batch B: the
time and the error against an FP64 product in FP32, TF32, 3xTF32 as
graph_gemm does it (one call over K), and 3xTF32 with the small pairs in one
call and big*big in calls of at most each ``--caps`` terms. Errors: the
largest over the output's largest magnitude; RMS over RMS; the mean signed
error toward the reference's sign over its RMS (truncation: negative).

    python scripts/gpu_probe_x3acc.py [--n 1024] [--batch 4096] [--caps 2048,1024,512]
"""
import argparse

import cupy

from gpu_probe_3xtf32 import handles, split  # scripts/: beside this one
from gpu_probe_splitk import time_ms
from sinelstm.cublas_capture import OP_N, OP_T


def errors(out, ref):
    e = out.astype(cupy.float64) - ref
    rms = float(cupy.sqrt((ref * ref).mean()))
    return (float(cupy.abs(e).max() / cupy.abs(ref).max()), float(cupy.sqrt((e * e).mean())) / rms,
            float((e * cupy.sign(ref)).mean()) / rms)


def chunks(k0, k1, cap):
    return [(a, min(a + cap, k1)) for a in range(k0, k1, cap)] if cap else [(k0, k1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--rows", type=int, default=4096, help="K of one part of the weights' gradient")
    ap.add_argument("--caps", default="2048,1024,512")
    args = ap.parse_args()
    n, B, R = args.n, args.batch, args.rows
    G = 4 * n
    stream = cupy.cuda.Stream(non_blocking=True)
    print(f"== {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()} n={n} B={B} rows={R}", flush=True)
    blas = handles(stream)
    rng = cupy.random.default_rng(0)
    # Magnitudes as in training at this width: weights ~ 1/sqrt(n), h = tanh,
    # gate gradients small and of either sign.
    W = (rng.standard_normal((G, n), dtype=cupy.float32) / n ** 0.5).astype(cupy.float32)
    h = cupy.tanh(rng.standard_normal((max(B, R), n), dtype=cupy.float32))
    dg = (rng.standard_normal((max(B, R), G), dtype=cupy.float32) * 1e-3).astype(cupy.float32)
    Wb, Ws = split(W)
    hb, hs = split(h)
    dgb, dgs = split(dg)
    Wx = cupy.concatenate([Ws, Wb, Wb], axis=1)  # (G, 3n), as gemm_split_w writes it
    Wy = cupy.concatenate([Ws, Wb, Wb], axis=0)  # (3G, n)
    hx = cupy.concatenate([hb, hs, hb], axis=1)  # (rows, 3n), as the forward step kernel writes it
    dgx = cupy.concatenate([dgb, dgs, dgb], axis=1)  # (rows, 3G), as the backward step kernel writes it
    W64, h64, dg64 = W.astype(cupy.float64), h.astype(cupy.float64), dg.astype(cupy.float64)
    out = {"forward": cupy.empty((B, G), cupy.float32), "dh": cupy.empty((B, n), cupy.float32),
           "dW": cupy.empty((G, n), cupy.float32)}
    ref = {"forward": h64[:B] @ W64.T, "dh": dg64[:B] @ W64, "dW": dg64[:R].T @ h64[:R]}
    flops = {"forward": 2.0 * B * G * n, "dh": 2.0 * B * G * n, "dW": 2.0 * R * G * n}

    # One call of each product over K range [k0, k1) of its operands.
    def forward(b, k0, k1, acc, one=False):
        if one:
            return b.gemm(OP_T, OP_N, G, B, n, W.data.ptr, n, h.data.ptr, n, out["forward"].data.ptr, G)
        b.gemm(OP_T, OP_N, G, B, k1 - k0, Wx.data.ptr + 4 * k0, 3 * n, hx.data.ptr + 4 * k0, 3 * n,
               out["forward"].data.ptr, G, accumulate=acc)

    def dh(b, k0, k1, acc, one=False):
        if one:
            return b.gemm(OP_N, OP_N, n, B, G, W.data.ptr, n, dg.data.ptr, G, out["dh"].data.ptr, n)
        b.gemm(OP_N, OP_N, n, B, k1 - k0, Wy.data.ptr + 4 * k0 * n, n, dgx.data.ptr + 4 * k0, 3 * G,
               out["dh"].data.ptr, n, accumulate=acc)

    def dw(b, pair, r0, r1, acc, one=False):  # pair: offsets of (h, dg) in hx's and dgx's rows
        if one:
            return b.gemm(OP_N, OP_T, n, G, R, h.data.ptr, n, dg.data.ptr, G, out["dW"].data.ptr, n)
        oh, og = pair
        b.gemm(OP_N, OP_T, n, G, r1 - r0, hx.data.ptr + 4 * (r0 * 3 * n + oh), 3 * n,
               dgx.data.ptr + 4 * (r0 * 3 * G + og), 3 * G, out["dW"].data.ptr, n, accumulate=acc)

    def x3(name, cap):
        """3xTF32 calls: graph_gemm's (cap None) or small pairs first, then
        big*big in calls of at most ``cap`` terms."""
        b = blas["tf32"]
        if name == "forward":
            calls = [(0, 3 * n)] if cap is None else [(0, 2 * n)] + chunks(2 * n, 3 * n, cap)
            return lambda: [forward(b, k0, k1, i > 0) for i, (k0, k1) in enumerate(calls)]
        if name == "dh":
            calls = [(0, 3 * G)] if cap is None else [(0, 2 * G)] + chunks(2 * G, 3 * G, cap)
            return lambda: [dh(b, k0, k1, i > 0) for i, (k0, k1) in enumerate(calls)]
        pairs = ((n, 0), (0, G), (0, 0))  # small*big, big*small, big*big
        calls = [(p, 0, R) for p in pairs] if cap is None else \
            [(p, 0, R) for p in pairs[:2]] + [(pairs[2], r0, r1) for r0, r1 in chunks(0, R, cap)]
        return lambda: [dw(b, p, r0, r1, i > 0) for i, (p, r0, r1) in enumerate(calls)]

    caps = [int(c) for c in args.caps.split(",") if c]
    def plain(name, b):
        """The product of the unsplit operands, one call."""
        if name == "dW":
            return lambda: dw(b, None, 0, 0, False, one=True)
        return lambda: (forward if name == "forward" else dh)(b, 0, 0, False, one=True)

    for name in ("forward", "dh", "dW"):
        variants = [("fp32", plain(name, blas["fp32"])), ("tf32", plain(name, blas["tf32"])),
                    ("3xtf32", x3(name, None))]
        variants += [(f"3xtf32 cap {c}", x3(name, c)) for c in caps]
        for label, call in variants:
            with stream:
                ms = time_ms(call, reps=30)
                call()
            stream.synchronize()
            mx, rms, bias = errors(out[name], ref[name])
            print(f"{name:8s} {label:16s} {ms:7.3f} ms {flops[name] / ms / 1e9:6.1f} TF/s  "
                  f"max {mx:.2e}  rms {rms:.2e}  bias {bias:+.2e}", flush=True)


if __name__ == "__main__":
    main()
