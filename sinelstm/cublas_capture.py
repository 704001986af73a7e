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
precision (:mod:`sinelstm.precision`): FP32, or TF32 tensor cores (for
tf32, and for 3xtf32's split operands).
"""
import ctypes

from sinelstm import precision

OP_N, OP_T = 0, 1
_CUDA_R_32F = 0
# CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32; 3xtf32's products are
# TF32 ones of operands split into TF32 parts (sinelstm.graph_gemm).
_COMPUTE = {"fp32": 68, "tf32": 77, "3xtf32": 77}
_GEMM_DEFAULT = -1
WORKSPACE_BYTES = 32 << 20  # cuBLAS's recommendation for Hopper


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

    def gemm(self, transa, transb, m, n, k, a, lda, b, ldb, c, ldc, exact=False, accumulate=False):
        """C (m x n) = op(A) op(B), column-major; ``a``, ``b``, ``c`` are
        device pointers (ints). ``exact``: FP32 whatever the precision (for
        products that are memory-bound, where TF32 saves nothing).
        ``accumulate``: C += op(A) op(B)."""
        # Host scalars: read when the call is made, so a captured product
        # keeps the values it was recorded with.
        beta = self._one if accumulate else self._zero
        _check(self.lib.cublasGemmEx(
            self.handle, transa, transb, m, n, k, ctypes.addressof(self._one), a, _CUDA_R_32F, lda,
            b, _CUDA_R_32F, ldb, ctypes.addressof(beta), c, _CUDA_R_32F, ldc,
            _COMPUTE["fp32"] if exact else self.compute, _GEMM_DEFAULT), "cublasGemmEx")

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

    def close(self):
        if self.handle is not None:
            self.lib.cublasDestroy_v2(self.handle)
            self.handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone
            pass
