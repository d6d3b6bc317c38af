"""RSA signatures for outgoing requests and their checks on incoming ones, shared with a
helper process when they come in bursts.

A fan-out signs one request per inbox, and a busy inbox checks one signature per delivery:
an RSA-2048 operation costs about as much CPU as the rest of a POST. cryptography holds the
GIL while it signs or verifies, so a thread would still take the event loop's core; a
helper process can use the machine's other core. It starts at the first burst (BURST
operations wanted, each within GAP seconds of the one before) and stays until the client
closes. The
node still works itself when the helper is not there (yet, or after it failed) and when
BACKLOG operations already wait for it (more than one school's fan-out has in flight):
the event loop's core is the one that also posts, so work left there delays every
delivery, while the helper shares its core only with other processes.

The helper itself is signing_helper.py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import struct
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..protocol.httpsig import rsa_sign, rsa_verify
from .signing_helper import LENGTH as _LENGTH
from .signing_helper import PRIVATE, PUBLIC, READY, SIGN, UNCHECKED, VALID, VERIFY

log = logging.getLogger(__name__)
BURST = 8
# Seconds of the event loop's own (monotonic) time between two operations of one burst: a
# measure of load, not a protocol window. Deliveries to a busy inbox come a few per turn
# of the loop, a fan-out's signatures dozens per turn.
GAP = 0.05
BACKLOG = 64  # beyond the delivery worker's 32 in flight: one fan-out all goes to the helper
MAX_KEYS = 256  # keys' DER kept, as many as the helper keeps parsed
_HELPER = Path(__file__).with_name("signing_helper.py")
_BROKEN = (OSError, EOFError, asyncio.IncompleteReadError, struct.error)
_Key = rsa.RSAPrivateKey | rsa.RSAPublicKey


class HelperFailed(Exception):
    """The helper process stopped answering."""


class Signatures:
    """rsa-sha256 signatures, made and checked here or by the helper process."""

    def __init__(self, burst: int = BURST, backlog: int = BACKLOG) -> None:
        self.burst = burst
        self.backlog = backlog
        self._helper: _Helper | None = None
        self._starting: asyncio.Task[None] | None = None
        self._failed = False
        self._wanted = 0  # operations in the current burst
        self._last_wanted = float("-inf")

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

    async def verify(self, key: rsa.RSAPublicKey, signature: bytes, message: bytes) -> bool:
        """Whether `signature` is the rsa-sha256 signature of `message` by `key`."""
        helper = self._helper
        if helper is None:
            self._count_demand()
        elif helper.outstanding < self.backlog:
            try:
                verdict = await helper.verify(key, signature, message)
            except HelperFailed as exc:
                if self._helper is helper:
                    log.warning("the signing helper failed (%s); checking in this process", exc)
                    self._failed, self._helper = True, None
                    await helper.close()
            else:
                if verdict != UNCHECKED:
                    return verdict == VALID
        return rsa_verify(key, signature, message)

    async def close(self) -> None:
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        if self._helper is not None:
            await self._helper.close()
            self._helper = None

    def _count_demand(self) -> None:
        """Start the helper once a burst of BURST operations is wanted."""
        if self._failed or self._starting is not None:
            return
        now = asyncio.get_running_loop().time()
        self._wanted = self._wanted + 1 if now - self._last_wanted <= GAP else 1
        self._last_wanted = now
        if self._wanted >= self.burst:
            self._starting = asyncio.create_task(self._start_helper())

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
        self._batch: list[tuple[bytes, _Key, bytes, bytes]] = []  # kind, key, message, sig
        self._waiting: collections.deque[asyncio.Future[bytes]] = collections.deque()
        self._ders: dict[int, tuple[_Key, bytes]] = {}
        self._reader = asyncio.create_task(self._read_answers())

    @classmethod
    async def start(cls) -> _Helper:
        # Run as a script, so the helper loads cryptography and little else; -P keeps this
        # directory's modules from shadowing the standard library's.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",
            str(_HELPER),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            if await process.stdout.readexactly(len(READY)) != READY:
                raise EOFError("the signing helper did not start")
        except BaseException:
            await _stop(process)
            raise
        return cls(process)

    def sign(self, key: rsa.RSAPrivateKey, message: bytes) -> asyncio.Future[bytes]:
        """The signature, once the helper has made it."""
        return self._ask(SIGN, key, message, b"")

    def verify(
        self, key: rsa.RSAPublicKey, signature: bytes, message: bytes
    ) -> asyncio.Future[bytes]:
        """VALID, INVALID or UNCHECKED (the helper could not use the key)."""
        return self._ask(VERIFY, key, message, signature)

    def _ask(
        self, kind: bytes, key: _Key, message: bytes, signature: bytes
    ) -> asyncio.Future[bytes]:
        if self._reader.done():
            raise HelperFailed("the signing helper has stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        if not self._batch:
            loop.call_soon(self._send_batch)
        self._batch.append((kind, key, message, signature))
        self._waiting.append(future)
        self.outstanding += 1
        return future

    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        index: dict[int, int] = {}
        keys: list[bytes] = []
        for _, key, _, _ in batch:
            if id(key) not in index:
                index[id(key)] = len(keys)
                keys.append(self._der(key))
        frame = [_LENGTH.pack(len(keys))]
        for der in keys:
            frame += [der[:1], _LENGTH.pack(len(der) - 1), der[1:]]
        frame.append(_LENGTH.pack(len(batch)))
        for kind, key, message, signature in batch:
            frame += [kind, _LENGTH.pack(index[id(key)]), _LENGTH.pack(len(message)), message]
            if kind == VERIFY:
                frame += [_LENGTH.pack(len(signature)), signature]
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(b"".join(frame))
        except _BROKEN as exc:
            self._fail(exc)

    async def _read_answers(self) -> None:
        """Every answer that has arrived, each time some arrive: a verdict is one byte, so
        reading them one at a time would cost more than the check."""
        assert self.process.stdout is not None
        stdout = self.process.stdout
        pending = b""
        try:
            while True:
                data = await stdout.read(1 << 16)
                if not data:
                    raise EOFError("the signing helper has stopped")
                pending += data
                start = 0
                while len(pending) - start >= _LENGTH.size:
                    (length,) = _LENGTH.unpack_from(pending, start)
                    end = start + _LENGTH.size + length
                    if end > len(pending):
                        break
                    self.outstanding -= 1
                    future = self._waiting.popleft()
                    if not future.done():
                        future.set_result(pending[start + _LENGTH.size : end])
                    start = end
                pending = pending[start:]
        except (*_BROKEN, IndexError) as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(HelperFailed(str(exc) or exc.__class__.__name__))
        self.outstanding = 0

    def _der(self, key: _Key) -> bytes:
        """The key's kind byte and DER, as the helper reads them."""
        known = self._ders.get(id(key))
        if known is None or known[0] is not key:
            if len(self._ders) >= MAX_KEYS:  # old keys after rotations; hosted schools; peers
                self._ders.clear()
            if isinstance(key, rsa.RSAPrivateKey):
                der = PRIVATE + key.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            else:
                der = PUBLIC + key.public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
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
