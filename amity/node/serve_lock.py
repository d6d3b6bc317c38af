"""One `amity serve` per data directory: an OS lock on a file in it, held while serving.

The lock is flock(2) on `serve.lock`: the kernel releases it when the process ends, however
it ends (kill -9 included), so a stale file never blocks the next start. The file holds the
serving process's id, for the refusal message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import NodeError

LOCK_FILE = "serve.lock"


def _open(data_dir: Path) -> int:
    # No O_TRUNC: the holder's pid must survive another process opening the file.
    return os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode("ascii", "replace").strip()
    return f" (pid {text})" if text.isdigit() else ""


def _take(fd: int) -> bool:
    # A few tries: `is_serving` in another command holds the lock for a moment.
    for attempt in range(5):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt < 4:
                time.sleep(0.05)
    return False


@contextlib.contextmanager
def serve_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's serve lock; NodeError at once if a node already serves
    from it. Take it before anything of the node is opened or changed."""
    fd = _open(data_dir)
    try:
        if not _take(fd):
            raise NodeError(
                f"a node is already serving from {data_dir}{_holder(fd)}; stop it first"
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def is_serving(data_dir: Path) -> bool:
    """Whether some process holds the serve lock of `data_dir` now."""
    if not (data_dir / LOCK_FILE).exists():
        return False
    fd = _open(data_dir)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
