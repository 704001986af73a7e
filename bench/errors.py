"""Every failure of a command as one line on stderr, and its exit code:
2 for bad input (found before anything runs), 1 for a failure of the
machine or of the run (a full disk, out of memory, a crash), 128+n when
signal n stopped the command. ``SINEBENCH_DEBUG=1`` re-raises instead, for
the traceback.
"""
import errno
import os
import sys

import click

from bench.interrupt import Interrupted

DEBUG = "SINEBENCH_DEBUG"


def die(message: str, code: int):
    click.echo(f"sinebench: error: {' '.join(str(message).split())}", err=True)
    sys.exit(code)


def describe(exc: BaseException) -> tuple:
    """(one line, exit code) for an exception no command handled itself."""
    if isinstance(exc, Interrupted):
        return str(exc), 128 + exc.signum
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:  # a path given on the command line
        return "a path is too long" + (f": {exc.filename}" if exc.filename else ""), 2
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}", 1
    if isinstance(exc, MemoryError):
        return f"out of memory{': ' + str(exc) if str(exc) else ''}", 1
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}{': ' + lines[-1] if lines else ''}", 1


def debugging() -> bool:
    return os.environ.get(DEBUG, "") not in ("", "0")
