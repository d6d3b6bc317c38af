"""RSA signatures for outgoing requests, shared with a helper process in a fan-out.

A fan-out signs one request per inbox, and an RSA-2048 signature costs about as much CPU as
the rest of a POST. cryptography holds the GIL while it signs, so a thread would still take
the event loop's core; a helper process can use the machine's other core. It starts at the
first burst (BURST signatures wanted in one turn of the event loop) and stays until the
client closes. The node still signs itself when the helper is not there (yet, or after it
failed) and when BACKLOG signatures already wait for it: on a busy machine the helper may
get no core, and the node's own is then the faster one.

The helper reads batches on its stdin and writes their signatures, in order, on its stdout
(lengths as 4-byte big-endian integers): a batch is the private keys (PKCS#8 DER) and the
messages, each with the index of its key. It keeps only parsed keys and exits when its
stdin closes, so it never outlives the node.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
import struct
import sys
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..protocol.httpsig import rsa_sign

log = logging.getLogger(__name__)
BURST = 8
BACKLOG = 16
_LENGTH = struct.Struct("!I")
_READY = b"R"
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from amity.federation.signing import serve_helper; serve_helper()"
)
_BROKEN = (OSError, EOFError, asyncio.IncompleteReadError, struct.error)


class HelperFailed(Exception):
    """The helper process stopped answering."""


class Signatures:
    """rsa-sha256 signatures, made here or by the helper process."""

    def __init__(self, burst: int = BURST, backlog: int = BACKLOG) -> None:
        self.burst = burst
        self.backlog = backlog
        self._helper: _Helper | None = None
        self._starting: asyncio.Task[None] | None = None
        self._failed = False
        self._wanted_this_turn = 0

    @property
    def helper_running(self) -> bool:
        return self._helper is not None

    async def sign(self, key: rsa.RSAPrivateKey, message: bytes) -> bytes:
        """The rsa-sha256 signature of `message`."""
        helper = self._helper
        if helper is None:
            self._count_demand()
        elif helper.outstanding < self.backlog:
            try:
                return await helper.sign(key, message)
            except HelperFailed as exc:
                if self._helper is helper:
                    log.warning("the signing helper failed (%s); signing in this process", exc)
                    self._failed, self._helper = True, None
                    await helper.close()
        return rsa_sign(key, message)

    async def close(self) -> None:
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        if self._helper is not None:
            await self._helper.close()
            self._helper = None

    def _count_demand(self) -> None:
        """Start the helper once BURST signatures are wanted in one turn of the loop."""
        if self._failed or self._starting is not None:
            return
        if self._wanted_this_turn == 0:
            asyncio.get_running_loop().call_soon(self._new_turn)
        self._wanted_this_turn += 1
        if self._wanted_this_turn >= self.burst:
            self._starting = asyncio.create_task(self._start_helper())

    def _new_turn(self) -> None:
        self._wanted_this_turn = 0

    async def _start_helper(self) -> None:
        try:
            self._helper = await _Helper.start()
        except _BROKEN as exc:
            log.warning("cannot start the signing helper (%s); signing in this process", exc)
            self._failed = True


class _Helper:
    """The helper process, seen from the node: what one turn of the loop wants goes out as
    one batch, without waiting for earlier batches; one reader takes the answers in order."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.outstanding = 0
        self._batch: list[tuple[rsa.RSAPrivateKey, bytes]] = []
        self._waiting: collections.deque[asyncio.Future[bytes]] = collections.deque()
        self._ders: dict[int, tuple[rsa.RSAPrivateKey, bytes]] = {}
        self._reader = asyncio.create_task(self._read_answers())

    @classmethod
    async def start(cls) -> _Helper:
        root = str(Path(__file__).resolve().parent.parent.parent)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _BOOT,
            root,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            if await process.stdout.readexactly(len(_READY)) != _READY:
                raise EOFError("the signing helper did not start")
        except BaseException:
            await _stop(process)
            raise
        return cls(process)

    async def sign(self, key: rsa.RSAPrivateKey, message: bytes) -> bytes:
        if self._reader.done():
            raise HelperFailed("the signing helper has stopped")
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        if not self._batch:
            asyncio.get_running_loop().call_soon(self._send_batch)
        self._batch.append((key, message))
        self._waiting.append(future)
        self.outstanding += 1
        return await future

    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        index: dict[int, int] = {}
        keys: list[bytes] = []
        for key, _ in batch:
            if id(key) not in index:
                index[id(key)] = len(keys)
                keys.append(self._der(key))
        frame = [_LENGTH.pack(len(keys))]
        for der in keys:
            frame += [_LENGTH.pack(len(der)), der]
        frame.append(_LENGTH.pack(len(batch)))
        for key, message in batch:
            frame += [_LENGTH.pack(index[id(key)]), _LENGTH.pack(len(message)), message]
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(b"".join(frame))
        except _BROKEN as exc:
            self._fail(exc)

    async def _read_answers(self) -> None:
        assert self.process.stdout is not None
        stdout = self.process.stdout
        try:
            while True:
                (length,) = _LENGTH.unpack(await stdout.readexactly(_LENGTH.size))
                signature = await stdout.readexactly(length)
                self.outstanding -= 1
                future = self._waiting.popleft()
                if not future.done():
                    future.set_result(signature)
        except (*_BROKEN, IndexError) as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(HelperFailed(str(exc) or exc.__class__.__name__))
        self.outstanding = 0

    def _der(self, key: rsa.RSAPrivateKey) -> bytes:
        known = self._ders.get(id(key))
        if known is None or known[0] is not key:
            if len(self._ders) >= 4:  # old keys after rotations
                self._ders.clear()
            der = key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            known = self._ders[id(key)] = (key, der)
        return known[1]

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        self._fail(EOFError("the signing helper was closed"))
        await _stop(self.process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.stdin is not None:
        process.stdin.close()
    try:
        async with asyncio.timeout(2):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()


def serve_helper() -> None:
    """The helper process's loop (run by _BOOT)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the node, which closes us
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sink.write(_READY)
    sink.flush()
    parsed: dict[bytes, rsa.RSAPrivateKey] = {}
    while True:
        try:
            keys = [_read_key(source, parsed) for _ in range(_read_length(source))]
            count = _read_length(source)
            items = [
                (_read_length(source), _read(source, _read_length(source))) for _ in range(count)
            ]
        except EOFError:
            return
        for key_index, message in items:
            signature = rsa_sign(keys[key_index], message)
            sink.write(_LENGTH.pack(len(signature)) + signature)
        sink.flush()


def _read(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise EOFError
    return data


def _read_length(source: BinaryIO) -> int:
    return int(_LENGTH.unpack(_read(source, _LENGTH.size))[0])


def _read_key(source: BinaryIO, parsed: dict[bytes, rsa.RSAPrivateKey]) -> rsa.RSAPrivateKey:
    der = _read(source, _read_length(source))
    if der not in parsed:
        if len(parsed) >= 4:
            parsed.clear()
        key = serialization.load_der_private_key(der, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise EOFError  # not ours to answer: stop, and the node signs itself
        parsed[der] = key
    return parsed[der]
