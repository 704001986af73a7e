"""Every timed update's milliseconds, kept beside runs.csv so that intervals
can be recomputed from a results folder (runs.csv holds only quartiles).

One file per run, ``samples/<run_id>.npy.gz``: float32 (a CUDA event reads
to half a microsecond, far inside float32's seven digits), gzip-compressed,
written whole in one rename (:func:`bench.fsio.atomic_write`) *before* the
run's row: the row stays the commit mark, and a sample file without a row
is an uncommitted run's, which the next attempt of that run overwrites. A
folder from before samples were kept, or a run whose file is missing or
damaged, simply has none: the report's intervals then come from the repeat
medians alone (see :mod:`bench.intervals`).
"""
import gzip
import io
from pathlib import Path

import numpy as np

from bench.fsio import atomic_write

FOLDER = "samples"
SUFFIX = ".npy.gz"
WORKER_FILE = "samples" + SUFFIX  # a worker's run folder: the samples, for the sweep to store


def path_of(folder, run_id: str) -> Path:
    return Path(folder) / FOLDER / f"{run_id}{SUFFIX}"


def encode(ms) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(ms, dtype=np.float32), allow_pickle=False)
    return gzip.compress(buf.getvalue(), compresslevel=6, mtime=0)


def decode(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(gzip.decompress(data)), allow_pickle=False).astype(float)


def write(folder, run_id: str, ms):
    path = path_of(folder, run_id)
    path.parent.mkdir(exist_ok=True)
    atomic_write(path, encode(ms))


def read(folder, run_id: str) -> np.ndarray | None:
    """A run's samples, or None when absent or unreadable."""
    try:
        return decode(path_of(folder, run_id).read_bytes())
    except (OSError, ValueError, EOFError):
        return None


def read_all(folder, run_ids) -> dict:
    """run_id -> samples, for the runs that have them."""
    out = {}
    for rid in run_ids:
        got = read(folder, rid)
        if got is not None and len(got):
            out[rid] = got
    return out
