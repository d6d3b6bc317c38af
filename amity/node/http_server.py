"""Serving an aiohttp application with the read deadlines aiohttp lacks.

aiohttp waits for a new connection's first request header as long as the client likes
(recent versions only as long as the keep-alive timeout), so a stranger can hold
connections open by sending a header a byte at a time. Here a connection must deliver its
first header within `header_timeout` seconds; every later request must be complete within
`idle_timeout` of the previous answer (aiohttp's keep-alive timer, which also closes
idle connections). Bodies have their own deadline where they are read (the inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_runner import GracefulExit

from .errors import NodeError

log = logging.getLogger(__name__)


class _HeaderDeadline(asyncio.Protocol):
    """aiohttp's protocol for one connection, closed unless its first request header is
    complete within `timeout` seconds of the connection opening."""

    def __init__(self, inner: asyncio.Protocol, timeout: float) -> None:
        self.inner = inner
        self.timeout = timeout
        self.transport: asyncio.BaseTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.tail = b""  # the last bytes seen, for a blank line split across reads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.timer = asyncio.get_running_loop().call_later(self.timeout, self._expire)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.timer is not None:
            seen = self.tail + data
            if b"\r\n\r\n" in seen or b"\n\n" in seen:
                self._disarm()
            else:
                self.tail = seen[-3:]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.tail = b""

    def _expire(self) -> None:
        self.timer = None
        if self.transport is not None:
            peer = self.transport.get_extra_info("peername")
            log.debug("closing a connection from %s: no request header in %g s", peer, self.timeout)
            self.transport.close()


class _ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server log, with malformed HTTP from strangers as one line at info level
    rather than an error with a traceback (anyone could fill the log with those)."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            first_line = str(exc_info.message).strip().splitlines()[:1]
            reason = f"{type(exc_info).__name__} {first_line[0] if first_line else ''}"
            self.info(f"{msg}: %s", *args, reason)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (pyproject.toml: not on Windows, nor
    where it has no wheel), asyncio's otherwise: uvloop's costs less per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve_app(
    app: web.Application,
    *,
    host: str,
    port: int,
    print: Callable[[str], Any],
    header_timeout: float,
    idle_timeout: float,
    shutdown_timeout: float = 5.0,
) -> None:
    """Like web.run_app (serve until SIGINT or SIGTERM, then shut down gracefully), with
    the read deadlines above."""
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(
        _serve(app, host, port, print, header_timeout, idle_timeout, shutdown_timeout)
    )
    try:
        loop.run_until_complete(main)
    except (GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            pending = asyncio.all_tasks(loop)
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()


async def _serve(
    app: web.Application,
    host: str,
    port: int,
    ready: Callable[[str], Any],
    header_timeout: float,
    idle_timeout: float,
    shutdown_timeout: float,
) -> None:
    runner = web.AppRunner(
        app,
        handle_signals=True,
        access_log=None,
        keepalive_timeout=idle_timeout,
        shutdown_timeout=shutdown_timeout,
        logger=_ServerLog(logging.getLogger("aiohttp.server"), {}),
    )
    # Listen before the node's loops start (runner.setup): a peer that fetches this node's
    # key on a delivery sent at start then waits in the backlog instead of being refused.
    try:
        sock = socket.create_server((host, port), family=_family(host))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise NodeError(
            f"port {port} on {host} is in use by another program; stop it, or serve on "
            "another port with --port N"
        ) from None
    listener: asyncio.Server | None = None
    try:
        await runner.setup()
        server = runner.server
        assert server is not None
        listener = await asyncio.get_running_loop().create_server(
            lambda: _HeaderDeadline(server(), header_timeout), sock=sock
        )
        ready(f"http://{host}:{port}")
        while True:
            await asyncio.sleep(3600)
    finally:
        if listener is not None:
            listener.close()
        else:
            sock.close()
        await runner.cleanup()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
