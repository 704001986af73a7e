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

:meth:`Blas.fastest` times a product before capture and keeps what ran it
fastest: ``cublasGemmEx``'s default algorithm or one of those cuBLASLt's
heuristic offers, for each of the layouts the caller can supply (a product
of W or of a transposed copy of W). The default is tuned for typical shapes,
not for these: at batch 2048 / n_units 1024 on an H200 the best choice was
5 % faster in FP32 and up to 12 % in TF32 (``scripts/gpu_probe_gemm.py``).
cuBLASLt, like cuBLAS, may be captured when given its workspace.
"""
import ctypes
import os
from dataclasses import dataclass

from sinelstm import precision

OP_N, OP_T = 0, 1
_CUDA_R_32F = 0
_COMPUTE = {"fp32": 68, "tf32": 77}  # CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32
_GEMM_DEFAULT = -1
WORKSPACE_BYTES = 32 << 20  # cuBLAS's recommendation for Hopper
# Whether products are timed and the fastest kept; SINEBENCH_GEMM_TUNE=0
# keeps cublasGemmEx's default (for measuring what tuning gives).
TUNE = os.environ.get("SINEBENCH_GEMM_TUNE", "1") != "0"
_LT_CANDIDATES = 16  # algorithms asked of cuBLASLt's heuristic per product
_TIMED, _WARM = 5, 2  # timed runs (the median is kept) after warm-up runs


def _library(name="libcublas"):
    """A cuBLAS library CuPy loaded (creating CuPy's handle loads both
    libcublas and the libcublasLt it is built on)."""
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


@dataclass(frozen=True)
class Shape:
    """A column-major product C (m x n) = op(A) op(B) and its operands'
    leading dimensions; ``exact``: FP32 whatever the precision."""
    ta: int
    tb: int
    m: int
    n: int
    k: int
    lda: int
    ldb: int
    ldc: int
    exact: bool = False


class Blas:
    """A cuBLAS handle on the current device, bound to ``stream`` with its
    own workspace; :meth:`gemm` may be called while ``stream`` captures."""

    def __init__(self, stream):
        import cupy

        self.lib = lib = _library()
        lib.cublasGemmEx.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
            ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        handle = ctypes.c_void_p()
        _check(lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
        self.handle = handle
        self.workspace = cupy.empty(WORKSPACE_BYTES, cupy.uint8)
        _check(lib.cublasSetStream_v2(handle, ctypes.c_void_p(stream.ptr)), "cublasSetStream")
        _check(lib.cublasSetWorkspace_v2(handle, ctypes.c_void_p(self.workspace.data.ptr),
                                         ctypes.c_size_t(WORKSPACE_BYTES)), "cublasSetWorkspace")
        self.compute = _COMPUTE[precision.process_precision()]
        self._one, self._zero = ctypes.c_float(1.0), ctypes.c_float(0.0)
        self.stream, self.lt = stream, None

    def gemm(self, transa, transb, m, n, k, a, lda, b, ldb, c, ldc, exact=False):
        """C (m x n) = op(A) op(B), column-major; ``a``, ``b``, ``c`` are
        device pointers (ints). ``exact``: FP32 whatever the precision (for
        products that are memory-bound, where TF32 saves nothing)."""
        # Host scalars: read when the call is made, so a captured product
        # keeps the values it was recorded with.
        _check(self.lib.cublasGemmEx(
            self.handle, transa, transb, m, n, k, ctypes.addressof(self._one), a, _CUDA_R_32F, lda,
            b, _CUDA_R_32F, ldb, ctypes.addressof(self._zero), c, _CUDA_R_32F, ldc,
            _COMPUTE["fp32"] if exact else self.compute, _GEMM_DEFAULT), "cublasGemmEx")

    def fastest(self, layouts: dict) -> dict:
        """The fastest way to run one product, per layout: ``layouts`` maps
        a name to a :class:`Shape` and the operands' pointers ``(a, b, c)``
        to time it on (c is overwritten). Returns name -> product, a
        callable ``(a, b, c)`` with a ``label`` (what runs it) and ``ms``
        (its median time; None when not timed)."""
        if not TUNE:  # as before tuning: the first layout, cublasGemmEx's default
            name, (shape, _) = next(iter(layouts.items()))
            return {name: _GemmEx(self, shape)}
        best = {}
        for name, (shape, ptrs) in layouts.items():
            options = [_GemmEx(self, shape)] + self._lt().algorithms(shape, self._compute(shape))
            for product in options:
                product.ms = self.time_ms(lambda: product(*ptrs))
            best[name] = min(options, key=lambda p: p.ms)
        return best

    def _compute(self, shape):
        return _COMPUTE["fp32"] if shape.exact else self.compute

    def _lt(self):
        if self.lt is None:
            self.lt = _Lt(self)
        return self.lt

    def time_ms(self, run) -> float:
        """Median time of ``run()`` (work queued on this handle's stream),
        after warming up; infinite if cuBLAS refuses it (an offered
        algorithm that does not take these operands)."""
        import cupy

        try:
            run()
        except CublasError:
            return float("inf")
        for _ in range(_WARM - 1):
            run()
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        times = []
        for _ in range(_TIMED):
            start.record(self.stream)
            run()
            end.record(self.stream)
            end.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, end))
        return sorted(times)[_TIMED // 2]

    def close(self):
        if self.lt is not None:
            self.lt.close()
            self.lt = None
        if self.handle is not None:
            self.lib.cublasDestroy_v2(self.handle)
            self.handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone
            pass


class _GemmEx:
    """A product by cublasGemmEx's default algorithm."""

    label = "gemmex"

    def __init__(self, blas, shape):
        self.blas, self.shape, self.ms = blas, shape, None

    def __call__(self, a, b, c):
        s = self.shape
        self.blas.gemm(s.ta, s.tb, s.m, s.n, s.k, a, s.lda, b, s.ldb, c, s.ldc, exact=s.exact)


class _HeuristicResult(ctypes.Structure):  # cublasLtMatmulHeuristicResult_t
    _fields_ = [("algo", ctypes.c_uint64 * 8), ("workspace_size", ctypes.c_size_t), ("state", ctypes.c_int),
                ("waves", ctypes.c_float), ("reserved", ctypes.c_int * 4)]


_TRANSA, _TRANSB = 3, 4  # CUBLASLT_MATMUL_DESC_TRANSA, _TRANSB
_PREF_MAX_WORKSPACE = 1  # CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES


class _Lt:
    """A cuBLASLt handle beside the cuBLAS one, sharing its stream and
    workspace (products run one at a time on that stream)."""

    def __init__(self, blas):
        self.blas, self.lib = blas, _library("libcublasLt")
        # Every argument typed: an untyped Python int is passed as a C int,
        # which would cut a pointer or a size_t in half.
        P, I, SIZE = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
        for name, types in (
                ("cublasLtCreate", [P]), ("cublasLtDestroy", [P]),
                ("cublasLtMatrixLayoutCreate", [P, I, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_int64]),
                ("cublasLtMatrixLayoutDestroy", [P]), ("cublasLtMatmulDescCreate", [P, I, I]),
                ("cublasLtMatmulDescDestroy", [P]), ("cublasLtMatmulDescSetAttribute", [P, I, P, SIZE]),
                ("cublasLtMatmulPreferenceCreate", [P]), ("cublasLtMatmulPreferenceDestroy", [P]),
                ("cublasLtMatmulPreferenceSetAttribute", [P, I, P, SIZE]),
                ("cublasLtMatmulAlgoGetHeuristic", [P, P, P, P, P, P, P, I, P, P]),
                ("cublasLtMatmul", [P] * 14 + [SIZE, P])):
            getattr(self.lib, name).argtypes = types
        self.handle = ctypes.c_void_p()
        _check(self.lib.cublasLtCreate(ctypes.byref(self.handle)), "cublasLtCreate")
        self.kept = []  # descriptors, alive as long as the handle

    def _layout(self, rows, cols, ld):
        d = ctypes.c_void_p()
        _check(self.lib.cublasLtMatrixLayoutCreate(ctypes.byref(d), _CUDA_R_32F, rows, cols, ld), "layout")
        self.kept.append(("cublasLtMatrixLayoutDestroy", d))
        return d

    def algorithms(self, shape, compute) -> list:
        """A product per algorithm cuBLASLt's heuristic offers for ``shape``."""
        lib, s = self.lib, shape
        desc = ctypes.c_void_p()
        _check(lib.cublasLtMatmulDescCreate(ctypes.byref(desc), compute, _CUDA_R_32F), "cublasLtMatmulDescCreate")
        self.kept.append(("cublasLtMatmulDescDestroy", desc))
        for attr, op in ((_TRANSA, s.ta), (_TRANSB, s.tb)):
            value = ctypes.c_int32(op)
            _check(lib.cublasLtMatmulDescSetAttribute(desc, attr, ctypes.byref(value), 4), "transpose")
        a = self._layout(s.m if s.ta == OP_N else s.k, s.k if s.ta == OP_N else s.m, s.lda)
        b = self._layout(s.k if s.tb == OP_N else s.n, s.n if s.tb == OP_N else s.k, s.ldb)
        c = self._layout(s.m, s.n, s.ldc)
        pref = ctypes.c_void_p()
        _check(lib.cublasLtMatmulPreferenceCreate(ctypes.byref(pref)), "preference")
        try:
            size = ctypes.c_uint64(WORKSPACE_BYTES)
            _check(lib.cublasLtMatmulPreferenceSetAttribute(pref, _PREF_MAX_WORKSPACE, ctypes.byref(size), 8),
                   "workspace preference")
            results = (_HeuristicResult * _LT_CANDIDATES)()
            found = ctypes.c_int()
            status = lib.cublasLtMatmulAlgoGetHeuristic(self.handle, desc, a, b, c, c, pref, _LT_CANDIDATES, results,
                                                        ctypes.byref(found))
        finally:
            lib.cublasLtMatmulPreferenceDestroy(pref)
        if status != 0:  # no algorithm for this shape: cublasGemmEx alone
            return []
        return [_LtProduct(self, desc, a, b, c, results[i], i) for i in range(found.value) if results[i].state == 0]

    def close(self):
        for destroy, d in reversed(self.kept):
            getattr(self.lib, destroy)(d)
        self.kept = []
        self.lib.cublasLtDestroy(self.handle)


class _LtProduct:
    """A product by one cuBLASLt algorithm."""

    def __init__(self, lt, desc, a, b, c, result, rank):
        self.lt, self.desc, self.a, self.b, self.c = lt, desc, a, b, c
        self.algo = (ctypes.c_uint64 * 8)(*result.algo)  # a copy: the heuristic's array goes
        self.label, self.ms = f"cublaslt#{rank}", None

    def __call__(self, a, b, c):
        blas = self.lt.blas
        _check(self.lt.lib.cublasLtMatmul(
            self.lt.handle, self.desc, ctypes.addressof(blas._one), a, self.a, b, self.b,
            ctypes.addressof(blas._zero), c, self.c, c, self.c, ctypes.addressof(self.algo),
            blas.workspace.data.ptr, WORKSPACE_BYTES, blas.stream.ptr), "cublasLtMatmul")
