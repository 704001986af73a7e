"""The CUDA kernels compile: NVRTC (the compiler CuPy's RawModule uses) needs
no GPU, so CI builds every kernel source at the sizes that choose different
code (the persistent kernels' smallest and largest width, the cuBLAS path's
smallest and the published one) for Hopper. A kernel that would not build
then fails here, not on the next GPU machine. Skipped where NVRTC is absent
(the dev group installs it on Linux x86-64)."""
import ctypes
import glob
import os

import pytest

from sinelstm import graph_cuda, graph_gemm


def _nvrtc():
    try:
        import nvidia.cuda_nvrtc
    except ImportError:
        pytest.skip("NVRTC is not installed (nvidia-cuda-nvrtc-cu12)")
    found = glob.glob(os.path.join(list(nvidia.cuda_nvrtc.__path__)[0], "lib", "libnvrtc.so.*"))
    if not found:
        pytest.skip("no libnvrtc in nvidia-cuda-nvrtc")
    return ctypes.CDLL(sorted(found)[0])


def compile_log(source: str, options: list) -> tuple:
    """NVRTC's result code and log for ``source``."""
    lib = _nvrtc()
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"kernels.cu", 0, None, None) == 0
    opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
    rc = lib.nvrtcCompileProgram(prog, len(options), opts)
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return rc, log.value.decode(errors="replace")


@pytest.mark.parametrize("source,n_units", [(graph_cuda._SOURCE, 1), (graph_cuda._SOURCE, graph_cuda.MAX_UNITS),
                                            (graph_gemm._SOURCE, graph_cuda.MAX_UNITS + 1),
                                            (graph_gemm._SOURCE, 1024)])
def test_the_kernels_compile(source, n_units):
    rc, log = compile_log(source, ["-std=c++14", f"-DN={n_units}", "--gpu-architecture=compute_90"])
    assert rc == 0, log


def test_a_broken_kernel_is_caught():
    rc, log = compile_log(graph_gemm._SOURCE.replace("const float x = xin_t[b];", "const float x = xin_t[b]"),
                          ["-std=c++14", "-DN=96", "--gpu-architecture=compute_90"])
    assert rc != 0 and "error" in log
