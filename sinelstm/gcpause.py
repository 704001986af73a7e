"""The garbage collector during the timed loop: off.

CPython's cyclic collector runs when allocations pass a threshold, so one
update in a few hundred would pay for a collection of everything the process
ever made (Chainer, CuPy, the model): a few milliseconds landing on a random
update, which is noise at the sizes where an update takes 1-3 ms. So the
loop starts from a collected heap whose survivors are frozen (never scanned
again), collection is off while updates are timed, and it runs at each
evaluation, whose time is counted apart. An update's graph is freed by
reference counting as before; only cycles wait for the next evaluation.
"""
import gc
from contextlib import contextmanager

POLICY = "collected and frozen before the timed loop, off during timed updates, on at evaluations"


@contextmanager
def timing():
    """Around the timed loop: collected and frozen, then off; afterwards the
    process as it was."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


@contextmanager
def evaluating():
    """Around an evaluation: the collector runs, then is off again."""
    gc.enable()
    try:
        yield
        gc.collect()
    finally:
        gc.disable()
