"""What arithmetic a run's matrix products use: ``fp32``; ``tf32`` (FP32
data, products on the GPU's tensor cores with 10-bit-mantissa inputs); or
``3xtf32``, near FP32's accuracy from TF32 tensor cores (NVIDIA's "3xTF32",
as in CUTLASS): each operand is split into its nearest TF32 value and the
TF32 value of the remainder, and a product sums big*big + big*small +
small*big (the small*small term is below FP32's last bit). A tensor core's
own FP32 sums truncate, and lose accuracy as they grow, so each product is
cut into calls of a few hundred terms (:func:`sinelstm.graph_gemm.x3_ranges`):
then near FP32's accuracy, not equal to it. Three tensor-core products
still cost less than one on FP32 lanes. Only the ``graph`` implementation's
cuBLAS path splits its products (:mod:`sinelstm.graph_gemm`, on a GPU above
``graph_cuda.MAX_UNITS``), so ``3xtf32`` runs there only (:func:`why_not`):
anywhere else it would be an fp32 run under another name.

CuPy 14 decides this once per process: the first float32 matrix product
reads the environment variable ``CUPY_TF32`` and caches the compute type for
the life of the process (``get_compute_type`` in CuPy's
``cupy/_core/_routines_linalg.pyx``). So a precision is chosen by the
environment a process starts with, never switched inside one: the sweep
starts every worker with :func:`env_for` its runs' precision and never lets
runs of two precisions share a worker, and :func:`check` refuses to train a
run in a process set up for the other one, rather than time it wrongly.

On the CPU only ``fp32`` has a meaning (NumPy has no TF32), so a ``tf32``
run on the CPU is refused too. bf16 is not offered: Chainer 7.8.1 knows no
bfloat16 (its mixed precision, ``chainer.mixed16``, is IEEE float16), see
the README's "Precision" section.
"""
import os

from sinelstm.names import GRAPH_IMPL, PRECISIONS

ENV = "CUPY_TF32"
# 3xtf32 is CuPy's fp32 (CUPY_TF32=0) plus this, which graph_gemm reads.
SPLIT_ENV = "SINEBENCH_3XTF32"
SPLIT = "3xtf32"
# The precision's mantissa bits (the stored ones), for the tolerance of an
# equivalence check between device sets.
MANTISSA_BITS = {"fp32": 23, "tf32": 10}


class PrecisionError(ValueError):
    """A run whose precision this process or device cannot give it."""


def env_for(precision: str) -> dict:
    """The environment a process needs to compute in ``precision``: fp32
    sets ``CUPY_TF32=0`` explicitly, so that a user's exported ``1`` cannot
    turn an fp32 row into a TF32 one."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    return {ENV: "1" if precision == "tf32" else "0", SPLIT_ENV: "1" if precision == SPLIT else "0"}


def process_precision(environ=None) -> str:
    """The precision this process's float32 products use: CuPy's (as CuPy
    itself reads its variable: an integer above zero means TF32), and where
    that is FP32, 3xtf32 if :data:`SPLIT_ENV` is ``1``."""
    environ = os.environ if environ is None else environ
    try:
        tf32 = int(environ.get(ENV, "0")) > 0
    except ValueError:
        tf32 = False
    return "tf32" if tf32 else SPLIT if environ.get(SPLIT_ENV) == "1" else "fp32"


def _why_not_at_all(precision: str, impl: str, is_gpu: bool) -> str | None:
    """Why ``impl`` on this kind of device has ``precision`` at no size, or None."""
    if precision != PRECISIONS[0] and not is_gpu:
        return f"{precision} has no meaning on the CPU (NumPy computes in fp32)"
    if precision == SPLIT and impl != GRAPH_IMPL:
        return f"{SPLIT} splits the products of --impl {GRAPH_IMPL} only (every other implementation's are fp32)"
    return None


def runs_with(precision: str, impl: str, is_gpu: bool) -> bool:
    """Whether ``impl`` on this kind of device has ``precision`` at some
    size (the size's part of the rule: :func:`why_not`)."""
    return _why_not_at_all(precision, impl, is_gpu) is None


def why_not(precision: str, impl: str, is_gpu: bool, n_units: int) -> str | None:
    """Why a run cannot compute in ``precision``, or None. TF32 is a GPU's
    matrix products': the graph implementation has none at ``MAX_UNITS``
    or fewer (its persistent kernels compute in fp32), so a tf32 row there
    would be an fp32 one under another name; 3xtf32 needs the graph
    implementation's cuBLAS path."""
    from sinelstm.graph_cuda import MAX_UNITS

    if reason := _why_not_at_all(precision, impl, is_gpu):
        return reason
    if precision != PRECISIONS[0] and impl == GRAPH_IMPL and n_units <= MAX_UNITS:
        return (f"{precision} changes matrix products; --impl {GRAPH_IMPL} has none at {MAX_UNITS} units or fewer "
                f"(its persistent kernels compute in fp32)")
    return None


def use(precision: str):
    """Set this process up for ``precision``; call it before the first GPU
    matrix product (``sinebench train`` does, before training)."""
    os.environ.update(env_for(precision))


def check(precision: str, device_set, impl: str, n_units: int):
    """Raise :class:`PrecisionError` unless ``device_set`` can train
    ``impl`` at ``n_units`` in ``precision`` in this process."""
    env_for(precision)  # a known name
    reason = why_not(precision, impl, device_set.is_gpu, n_units)
    if reason:
        raise PrecisionError(reason)
    if not device_set.is_gpu:
        return
    have = process_precision()
    if have != precision:
        need = " ".join(f"{k}={v}" for k, v in env_for(precision).items())
        raise PrecisionError(f"this process computes in {have} ({ENV}={os.environ.get(ENV, 'unset')}, "
                             f"{SPLIT_ENV}={os.environ.get(SPLIT_ENV, 'unset')}), the run asks for {precision}: "
                             f"start it with {need}")


def tolerance(precision: str) -> float:
    """Largest parameter difference ``verify`` accepts between a device set
    and its first device alone. fp32: 1e-5, a hundred times the differences
    that summing in another order leaves after 20 SGD steps (measured:
    6e-8). tf32: one unit in the last place of a TF32 number of magnitude 1
    (2^-10), since rounding the inputs of a product to 10 bits amplifies
    such order-of-summation differences to that size whenever a value
    straddles a rounding boundary. 3xtf32 is held to FP32's tolerance
    against the eager path in FP32, which it meets at verify's width (96
    units). At 1024 units with Adam 20 updates amplify last bits past it,
    fp32's own graph's too with the quality recipe; how exact a precision is
    there is :mod:`sinelstm.exactness`'s question (results/h200x1-x3k-*)."""
    return 2.0 ** -MANTISSA_BITS["tf32"] if precision == "tf32" else 1e-5
