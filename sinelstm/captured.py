"""A captured CUDA graph whose kernels keep their streams' priorities.

The captured cuBLAS path computes the recurrent weights' gradient on a
second stream beside backward's chain of ``dh`` products and step kernels
(:mod:`sinelstm.graph_gemm`). The chain is the update's critical path; the
side's products are meant to fill what it leaves idle, not to take SMs
from it: a block of the chain waiting for an SM should get the next one
free. Stream priorities say exactly that, and stream capture copies each
kernel's stream priority into its graph node, but a graph instantiated
without flags, as CuPy instantiates them, runs every node at the priority
of the stream it is launched into. Instantiated with
``CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY`` the nodes keep their own.
CuPy has no such flag, so :class:`PriorityGraph` ends the capture and
instantiates through the driver API (``libcuda``), which CuPy's streams
are handles of; priorities never preempt a running block, they only order
the waiting ones.
"""
import ctypes
import functools

_USE_NODE_PRIORITY = 8  # CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY


class DriverError(RuntimeError):
    pass


@functools.cache
def _driver():
    lib = ctypes.CDLL("libcuda.so.1")
    p = ctypes.c_void_p
    for name, args in (("cuStreamEndCapture", [p, p]), ("cuGraphInstantiateWithFlags", [p, p, ctypes.c_ulonglong]),
                       ("cuGraphUpload", [p, p]), ("cuGraphLaunch", [p, p]), ("cuGraphExecDestroy", [p]),
                       ("cuGraphDestroy", [p]), ("cuCtxGetStreamPriorityRange", [p, p])):
        getattr(lib, name).argtypes = args
    return lib


def _check(status: int, what: str):
    if status != 0:
        raise DriverError(f"{what} failed with CUDA driver error {status}")


def priority_range() -> tuple:
    """(least, greatest) stream priority of the current device: the
    greatest is the lowest number."""
    least, greatest = ctypes.c_int(), ctypes.c_int()
    _check(_driver().cuCtxGetStreamPriorityRange(ctypes.byref(least), ctypes.byref(greatest)),
           "cuCtxGetStreamPriorityRange")
    return least.value, greatest.value


class PriorityGraph:
    """Ends the capture ``stream`` began (with CuPy's ``begin_capture``) and
    instantiates it to run each kernel at its stream's priority; ``upload``
    and ``launch`` as CuPy's ``Graph``."""

    def __init__(self, stream):
        lib = _driver()
        self.graph, self.exe = ctypes.c_void_p(), ctypes.c_void_p()
        _check(lib.cuStreamEndCapture(ctypes.c_void_p(stream.ptr), ctypes.byref(self.graph)), "cuStreamEndCapture")
        _check(lib.cuGraphInstantiateWithFlags(ctypes.byref(self.exe), self.graph, _USE_NODE_PRIORITY),
               "cuGraphInstantiateWithFlags")

    def upload(self, stream):
        _check(_driver().cuGraphUpload(self.exe, ctypes.c_void_p(stream.ptr)), "cuGraphUpload")

    def launch(self, stream):
        _check(_driver().cuGraphLaunch(self.exe, ctypes.c_void_p(stream.ptr)), "cuGraphLaunch")

    def __del__(self):
        try:
            lib = _driver()
            if self.exe:
                lib.cuGraphExecDestroy(self.exe)
            if self.graph:
                lib.cuGraphDestroy(self.graph)
        except Exception:  # interpreter shutdown: the library may be gone
            pass
