"""What arithmetic a run's matrix products use: ``fp32``, or ``tf32`` (FP32
data, products on the GPU's tensor cores with 10-bit-mantissa inputs).

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

from sinelstm.names import PRECISIONS

ENV = "CUPY_TF32"
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
    return {ENV: "1" if precision == "tf32" else "0"}


def process_precision(environ=None) -> str:
    """The precision CuPy computes float32 products in, in this process (as
    CuPy itself reads the variable: an integer above zero means TF32)."""
    value = (os.environ if environ is None else environ).get(ENV, "0")
    try:
        return "tf32" if int(value) > 0 else "fp32"
    except ValueError:
        return "fp32"


def use(precision: str):
    """Set this process up for ``precision``; call it before the first GPU
    matrix product (``sinebench train`` does, before training)."""
    os.environ.update(env_for(precision))


def check(precision: str, device_set):
    """Raise :class:`PrecisionError` unless ``device_set`` can train in
    ``precision`` in this process."""
    env_for(precision)  # a known name
    if not device_set.is_gpu:
        if precision != "fp32":
            raise PrecisionError(f"{precision} has no meaning on the CPU (NumPy computes in fp32)")
        return
    have = process_precision()
    if have != precision:
        raise PrecisionError(f"this process computes in {have} ({ENV}={os.environ.get(ENV, 'unset')}), the run "
                             f"asks for {precision}: start it with {ENV}={env_for(precision)[ENV]}")


def tolerance(precision: str) -> float:
    """Largest parameter difference ``verify`` accepts between a device set
    and its first device alone. fp32: 1e-5, a hundred times the differences
    that summing in another order leaves after 20 SGD steps (measured:
    6e-8). tf32: one unit in the last place of a TF32 number of magnitude 1
    (2^-10), since rounding the inputs of a product to 10 bits amplifies
    such order-of-summation differences to that size whenever a value
    straddles a rounding boundary."""
    return 1e-5 if precision == "fp32" else 2.0 ** -MANTISSA_BITS[precision]
