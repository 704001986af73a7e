"""cuBLAS matrix products that a CUDA graph can capture.

cuBLAS supports stream capture (given a workspace of its own, set with
``cublasSetWorkspace``), but CuPy 14's bindings refuse it: every call first
sets the handle's stream and raises when that stream is capturing (cupy
issue 6290). So this module calls the library CuPy has already loaded
directly, through ctypes, on a handle of its own whose stream and workspace
are set once, before capture: a captured product is then an ordinary graph
node, replayed with the scalars (``alpha``, ``beta``) it was recorded with.

Products are column-major, as in BLAS; :meth:`Blas.gemm` takes CuPy arrays'
pointers and element offsets. The compute type follows the process's
precision (:mod:`sinelstm.precision`): FP32, or TF32 tensor cores.

``cublasGemmEx`` picks its algorithm by a heuristic of the shape alone. For
the graph path's per-step products at half a batch it is not the fastest:
on an H200 in FP32 at n_units 1024 and batch 2048 (each of two GPUs at batch
4096), algorithms that cuBLASLt's heuristic offers took the forward product
``W hs`` from 0.421 to 0.391 ms (-7 %) and the backward's ``dh`` from 0.374
to 0.365 ms; at batch 4096 none beat the default (``scripts/gpu_probe_lt.py``,
results/h200x2-slowhost2-2026-11-28). So :meth:`Blas.tune` times them on the
machine that runs them, before capture, and keeps the default unless one is
clearly faster; a captured ``cublasLtMatmul`` given its workspace is an
ordinary graph node too. Its algorithms may assume operands aligned to 256
bytes (cuBLASLt's default preference): a call whose pointers are not falls
back to ``cublasGemmEx``.
"""
import ctypes

from sinelstm import precision

OP_N, OP_T = 0, 1
_CUDA_R_32F = 0
_COMPUTE = {"fp32": 68, "tf32": 77}  # CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32
_GEMM_DEFAULT = -1
WORKSPACE_BYTES = 32 << 20  # cuBLAS's recommendation for Hopper
_TUNE_RUN = 5  # calls timed together by Blas.tune


def library(name: str = "libcublas"):
    """A cuBLAS library CuPy loaded (creating CuPy's handle loads libcublas
    and the libcublasLt it is built on)."""
    import cupy

    cupy.cuda.device.get_cublas_handle()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if f"/{name}.so" in path:
                return ctypes.CDLL(path)
    raise CublasError(f"CuPy's {name} is not loaded in this process")


class CublasError(RuntimeError):
    pass


def _check(status: int, what: str):
    if status != 0:
        raise CublasError(f"{what} failed with cuBLAS status {status}")


class Blas:
    """A cuBLAS handle on the current device, bound to ``stream`` with its
    own workspace; :meth:`gemm` may be called while ``stream`` captures."""

    def __init__(self, stream):
        import cupy

        self.handle, self._lt, self.plans = None, None, {}  # what close() frees, should __init__ fail
        self.lib = lib = library()
        lib.cublasGemmEx.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
            ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.cublasGemmStridedBatchedEx.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_longlong,
            ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_longlong,
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_longlong,
            ctypes.c_int, ctypes.c_int, ctypes.c_int]
        handle = ctypes.c_void_p()
        _check(lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
        self.handle = handle
        self.workspace = cupy.empty(WORKSPACE_BYTES, cupy.uint8)
        _check(lib.cublasSetStream_v2(handle, ctypes.c_void_p(stream.ptr)), "cublasSetStream")
        _check(lib.cublasSetWorkspace_v2(handle, ctypes.c_void_p(self.workspace.data.ptr),
                                         ctypes.c_size_t(WORKSPACE_BYTES)), "cublasSetWorkspace")
        self.compute = _COMPUTE[precision.process_precision()]
        self._one, self._zero = ctypes.c_float(1.0), ctypes.c_float(0.0)
        self.stream = stream  # self.plans: a product's shape -> (LtProduct, algorithm) that tune() found faster

    def gemm(self, transa, transb, m, n, k, a, lda, b, ldb, c, ldc, exact=False, accumulate=False):
        """C (m x n) = op(A) op(B), column-major; ``a``, ``b``, ``c`` are
        device pointers (ints). ``exact``: FP32 whatever the precision (for
        products that are memory-bound, where TF32 saves nothing).
        ``accumulate``: C += op(A) op(B)."""
        # Host scalars: read when the call is made, so a captured product
        # keeps the values it was recorded with.
        beta = self._one if accumulate else self._zero
        compute = _COMPUTE["fp32"] if exact else self.compute
        plan = self.plans.get((transa, transb, m, n, k, lda, ldb, ldc, compute)) if self.plans else None
        if plan is not None and aligned(a, b, c):
            self.lt_gemm(*plan, a, b, c, accumulate)
            return
        _check(self.lib.cublasGemmEx(
            self.handle, transa, transb, m, n, k, ctypes.addressof(self._one), a, _CUDA_R_32F, lda,
            b, _CUDA_R_32F, ldb, ctypes.addressof(beta), c, _CUDA_R_32F, ldc, compute, _GEMM_DEFAULT), "cublasGemmEx")

    def tune(self, transa, transb, m, n, k, a, lda, b, ldb, c, ldc, reps=7, candidates=8, margin=0.02) -> str:
        """Time this product (before capture; ``c`` is overwritten) with
        ``cublasGemmEx``'s default and with each algorithm cuBLASLt's
        heuristic offers (up to ``candidates``), interleaved, ``reps`` times
        after two warm-ups; later :meth:`gemm` calls of this shape use the
        fastest if it beats the default by more than ``margin``. Returns
        what was chosen, for the record."""
        import cupy
        import numpy as np

        key = (transa, transb, m, n, k, lda, ldb, ldc, self.compute)
        if key in self.plans:
            self.plans.pop(key)[0].close()
        if not aligned(a, b, c):
            return "cublasGemmEx (operands not aligned for cuBLASLt)"
        product = self.lt_product(transa, transb, m, n, k, lda, ldb, ldc, candidates)
        calls = [lambda: self.gemm(transa, transb, m, n, k, a, lda, b, ldb, c, ldc)]
        calls += [lambda algo=algo: self.lt_gemm(product, algo, a, b, c) for algo in product.algos]
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        times = [[] for _ in calls]
        for rep in range(reps + 2):
            for i, call in enumerate(calls):
                # A run of calls between the events: the device does not
                # wait for the host between them, as in a replayed graph
                # (one call alone would count its launch, which is longer
                # through cuBLASLt's ctypes arguments than the gain).
                start.record(self.stream)
                for _ in range(_TUNE_RUN):
                    call()
                stop.record(self.stream)
                stop.synchronize()
                if rep >= 2:
                    times[i].append(cupy.cuda.get_elapsed_time(start, stop) / _TUNE_RUN)
        medians = [float(np.median(t)) for t in times]
        best = int(np.argmin(medians[1:])) + 1 if len(medians) > 1 else 0
        if best and medians[best] < medians[0] * (1 - margin):
            self.plans[key] = (product, product.algos[best - 1])
            return (f"cuBLASLt algorithm {best} of {len(product.algos)} "
                    f"({medians[best]:.3f} ms against cublasGemmEx's {medians[0]:.3f})")
        product.close()
        return f"cublasGemmEx ({len(product.algos)} cuBLASLt algorithms no faster)"

    def gemm_split_k(self, transa, transb, m, n, k, a, lda, b, ldb, c, ldc, splits):
        """``splits`` partial products over equal parts of K, into ``splits``
        (m x n) outputs at ``c``, ``c + ldc n``, ... (floats), to be summed by
        the reader: one strided-batched call. Where C alone has about one
        tile per SM, the parts give each SM more to overlap (the reader's sum
        is free in a memory-bound kernel). The operands' parts are at element
        offsets: along K, A's columns (not transposed) or rows (transposed),
        B's rows (not transposed) or columns (transposed)."""
        if k % splits:
            raise ValueError(f"K = {k} does not split into {splits} equal parts")
        part = k // splits
        stride_a = part * lda if transa == OP_N else part
        stride_b = part if transb == OP_N else part * ldb
        _check(self.lib.cublasGemmStridedBatchedEx(
            self.handle, transa, transb, m, n, part, ctypes.addressof(self._one), a, _CUDA_R_32F, lda, stride_a,
            b, _CUDA_R_32F, ldb, stride_b, ctypes.addressof(self._zero), c, _CUDA_R_32F, ldc, ldc * n, splits,
            self.compute, _GEMM_DEFAULT), "cublasGemmStridedBatchedEx")

    def lt_product(self, transa, transb, m, n, k, lda, ldb, ldc, candidates=8) -> "LtProduct":
        """This shape, in this handle's compute type, as cuBLASLt sees it."""
        if self._lt is None:
            self._lt_lib = library("libcublasLt")
            self._lt = ctypes.c_void_p()
            _check(self._lt_lib.cublasLtCreate(ctypes.byref(self._lt)), "cublasLtCreate")
        return LtProduct(self._lt_lib, self._lt, transa, transb, m, n, k, lda, ldb, ldc, self.compute,
                         WORKSPACE_BYTES, candidates)

    def lt_gemm(self, product, algo, a, b, c, accumulate=False):
        """``product`` with ``algo`` on this handle's stream and workspace."""
        product.run(algo, a, b, c, self._one, self._one if accumulate else self._zero, self.workspace.data.ptr,
                    WORKSPACE_BYTES, self.stream.ptr)

    def close(self):
        for product, _ in self.plans.values():
            product.close()
        self.plans = {}
        if self._lt is not None:
            self._lt_lib.cublasLtDestroy(self._lt)
            self._lt = None
        if self.handle is not None:
            self.lib.cublasDestroy_v2(self.handle)
            self.handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone
            pass

_DESC_TRANSA, _DESC_TRANSB = 3, 4  # cublasLtMatmulDescAttributes_t
_PREF_MAX_WORKSPACE_BYTES = 1  # cublasLtMatmulPreferenceAttributes_t
ALIGNMENT = 256  # bytes: what the heuristic's algorithms may assume of every operand


class HeuristicResult(ctypes.Structure):
    """cublasLtMatmulHeuristicResult_t."""
    _fields_ = [("algo", ctypes.c_uint64 * 8), ("workspace", ctypes.c_size_t), ("state", ctypes.c_int),
                ("waves", ctypes.c_float), ("reserved", ctypes.c_int * 4)]


class LtProduct:
    """One product's shape (column-major, as :meth:`Blas.gemm`) as cuBLASLt
    descriptors, with the algorithms its heuristic offers for it."""

    def __init__(self, lib, handle, transa, transb, m, n, k, lda, ldb, ldc, compute, workspace_bytes,
                 count=8):
        self.lib, self.handle = lib, handle
        self._objects = []  # (destroy function, object), freed by close()
        self.desc = self._make("cublasLtMatmulDescCreate", "cublasLtMatmulDescDestroy", compute, _CUDA_R_32F)
        for attr, op in ((_DESC_TRANSA, transa), (_DESC_TRANSB, transb)):
            value = ctypes.c_int32(op)
            _check(lib.cublasLtMatmulDescSetAttribute(self.desc, attr, ctypes.byref(value), ctypes.c_size_t(4)),
                   "cublasLtMatmulDescSetAttribute")
        self.a = self._layout(k, m, lda) if transa == OP_T else self._layout(m, k, lda)
        self.b = self._layout(n, k, ldb) if transb == OP_T else self._layout(k, n, ldb)
        self.c = self._layout(m, n, ldc)
        pref = self._make("cublasLtMatmulPreferenceCreate", "cublasLtMatmulPreferenceDestroy")
        size = ctypes.c_uint64(workspace_bytes)
        _check(lib.cublasLtMatmulPreferenceSetAttribute(pref, _PREF_MAX_WORKSPACE_BYTES, ctypes.byref(size),
                                                        ctypes.c_size_t(8)), "cublasLtMatmulPreferenceSetAttribute")
        results, got = (HeuristicResult * count)(), ctypes.c_int()
        _check(lib.cublasLtMatmulAlgoGetHeuristic(handle, self.desc, self.a, self.b, self.c, self.c, pref, count,
                                                  results, ctypes.byref(got)), "cublasLtMatmulAlgoGetHeuristic")
        self.algos = [results[i] for i in range(got.value) if results[i].state == 0]

    def _make(self, create, destroy, *args):
        obj = ctypes.c_void_p()
        _check(getattr(self.lib, create)(ctypes.byref(obj), *args), create)
        self._objects.append((getattr(self.lib, destroy), obj))
        return obj

    def _layout(self, rows, cols, ld):
        return self._make("cublasLtMatrixLayoutCreate", "cublasLtMatrixLayoutDestroy", _CUDA_R_32F,
                          ctypes.c_uint64(rows), ctypes.c_uint64(cols), ctypes.c_int64(ld))

    def run(self, algo: HeuristicResult, a, b, c, alpha, beta, workspace, workspace_bytes, stream_ptr):
        """C = alpha op(A) op(B) + beta C; ``alpha``, ``beta``: ctypes floats."""
        _check(self.lib.cublasLtMatmul(
            self.handle, self.desc, ctypes.byref(alpha), ctypes.c_void_p(a), self.a, ctypes.c_void_p(b), self.b,
            ctypes.byref(beta), ctypes.c_void_p(c), self.c, ctypes.c_void_p(c), self.c, ctypes.byref(algo.algo),
            ctypes.c_void_p(workspace), ctypes.c_size_t(workspace_bytes), ctypes.c_void_p(stream_ptr)),
            "cublasLtMatmul")

    def close(self):
        while self._objects:
            destroy, obj = self._objects.pop()
            destroy(obj)


def aligned(*pointers) -> bool:
    return all(p % ALIGNMENT == 0 for p in pointers)
