"""SIGINT, SIGTERM and SIGHUP stop a command the same way: an
:class:`Interrupted` exception in the main thread, so that ``finally``
blocks end the workers and release the folder, and the CLI says so in one
line. Inside :func:`deferred` (a commit to the store) a signal waits until
the block ends, so that a row is written whole or not at all.
"""
import contextlib
import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_state = {"depth": 0, "pending": None}


class Interrupted(Exception):
    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def _handler(signum, frame):
    if _state["depth"]:
        _state["pending"] = signum
        return
    raise Interrupted(signum)


def install():
    for sig in SIGNALS:
        signal.signal(sig, _handler)


@contextlib.contextmanager
def deferred():
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
    if not _state["depth"] and _state["pending"] is not None:
        signum, _state["pending"] = _state["pending"], None
        raise Interrupted(signum)
