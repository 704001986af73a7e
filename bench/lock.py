"""One writer per results folder.

A sweep holds an exclusive ``flock`` on ``<folder>/.lock`` from opening the
folder to its exit. The kernel releases it when the process dies however it
dies, so a lock left by a killed sweep is free again at once and never needs
breaking by hand; the file's content (pid, start time, host) only serves to
name the holder in the message a second sweep gets.
"""
import fcntl
import json
import os
import platform
import time
from pathlib import Path

NAME = ".lock"


class FolderBusy(Exception):
    """Another live process holds the folder."""


class FolderLock:
    def __init__(self, folder):
        self.path = Path(folder) / NAME
        self.fd = None

    def acquire(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise FolderBusy(f"{self.path.parent} is in use by another sweep ({holder}); wait for it to end, "
                             f"stop it, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                  "host": platform.node()}).encode(), 0)
        self.fd = fd

    def release(self):
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing the last descriptor drops the flock
            self.fd = None


def _holder(fd) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that is starting"
