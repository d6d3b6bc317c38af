"""RSA signatures for outgoing requests, shared with a helper process in a fan-out.

A fan-out signs one request per inbox, and an RSA-2048 signature costs about as much CPU as
the rest of a POST. cryptography holds the GIL while it signs, so a thread would still take
the event loop's core; a helper process can use the machine's other core. It starts at the
first burst (BURST signatures wanted in one turn of the event loop) and stays until the
client closes. The node still signs itself when the helper is not there (yet, or after it
failed) and when BACKLOG signatures already wait for it (more than one school's fan-out
has in flight): the event loop's core is the one that also posts, so work left there
delays every delivery, while the helper shares its core only with other processes.

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

from ..protocol.httpsig import rsa_sign
from .signing_helper import LENGTH as _LENGTH
from .signing_helper import READY as _READY

log = logging.getLogger(__name__)
BURST = 8
BACKLOG = 64  # beyond the delivery worker's 32 in flight: one fan-out all goes to the helper
MAX_KEYS = 64  # keys' DER kept, as many as the helper keeps parsed
_HELPER = Path(__file__).with_name("signing_helper.py")
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
            if len(self._ders) >= MAX_KEYS:  # old keys after rotations; hosted schools
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
