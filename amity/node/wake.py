"""Waking a serving node's delivery worker from another process.

`amity serve` listens on a Unix datagram socket in its data directory (`wake.sock`, owner
only). A command that changed the database (`amity profile import`, `amity follow`, ...)
sends it one byte after committing, and the worker looks at the queue at once rather than
at its next safety poll. The byte carries no meaning beyond "look now", so nothing is read
from it and a lost one costs only time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)
SOCKET_NAME = "wake.sock"
_MAX_ADDRESS = 100  # a socket address holds 108 bytes on Linux, 104 on macOS


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET_NAME


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    """`path` as a socket address; a long one goes through the directory's descriptor
    (/proc/self/fd on Linux), so deep data directories work too."""
    if len(os.fsencode(path)) <= _MAX_ADDRESS:
        yield str(path)
        return
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)


def poke(data_dir: Path) -> bool:
    """Tell a node serving `data_dir` to look at its queue now; False when none listens."""
    try:
        with (
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
            _address(socket_path(data_dir)) as address,
        ):
            sock.setblocking(False)
            sock.sendto(b"!", address)
    except (OSError, AttributeError):  # nobody serves, or its queue of pokes is full already
        return False
    return True


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.wake()


async def _bind(path: Path, wake: Callable[[], None]) -> tuple[asyncio.DatagramTransport, int]:
    """The listening transport and the inode of its socket file."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        path.unlink(missing_ok=True)  # left behind by a node that was killed
        with _address(path) as address:
            sock.bind(address)
        path.chmod(0o600)
        inode = path.stat().st_ino
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Receiver(wake), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    return transport, inode


@contextlib.asynccontextmanager
async def listening(data_dir: Path, wake: Callable[[], None]) -> AsyncIterator[bool]:
    """Call `wake` whenever another process pokes `data_dir` while this context is open;
    yields whether the socket could be made (if not, only the safety poll remains)."""
    path = socket_path(data_dir)
    transport: asyncio.DatagramTransport | None = None
    try:
        transport, inode = await _bind(path, wake)
    except (OSError, AttributeError) as exc:
        log.warning(
            "cannot listen on %s (%s): what other commands queue waits for the next queue check",
            path,
            exc,
        )
    try:
        yield transport is not None
    finally:
        if transport is not None:
            transport.close()
            with contextlib.suppress(OSError):
                if path.stat().st_ino == inode:  # not a socket a newer node made since
                    path.unlink()
