"""Writing files so that a kill, a full disk or a power cut never leaves one
half-written: a rewritten file goes to a temporary file beside it, is synced
and renamed over the old one (readers see the old file or the new one, never
a mix); an appended file gets whole lines, synced before the call returns.
"""
import os
from pathlib import Path


def fsync_dir(folder: Path):
    """Make a rename or a new file in ``folder`` survive a power cut."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot sync a directory
    finally:
        os.close(fd)


def atomic_write(path, data):
    """Replace ``path`` with ``data`` (str or bytes) in one rename."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def append_synced(path, data: bytes):
    """Append ``data`` (whole lines) to ``path`` and sync it to disk."""
    path = Path(path)
    new = not path.exists()
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if new:
        fsync_dir(path.parent)
