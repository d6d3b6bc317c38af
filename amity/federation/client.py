"""Outgoing HTTP: signed GETs and POSTs with time-outs, size and redirect limits, SSRF guard."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from .. import __version__
from ..protocol.activities import host_of
from ..protocol.errors import MalformedDocument
from ..protocol.httpsig import prepare_request
from ..protocol.jsontext import parse_json
from ..protocol.message_signatures import sign_message
from .backoff import is_permanent_failure
from .errors import AddressRefused, FetchFailed, Unreachable
from .guard import check_host, resolver_kwargs
from .signer import Signer
from .signing import Signatures

ACTIVITY_TYPE = "application/activity+json"
ACCEPT_ACTIVITY = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_REDIRECTS = 3
MAX_ERROR_BODY = 4096  # of a refusal, read for its {"error": reason}
MAX_REASON = 200  # characters of a reason kept
MAX_HOSTS_CHECKED = 4096


@dataclass(frozen=True)
class PostResult:
    """What a POST got back: the status, for 429 and 503 how long to wait, and the reason
    a refusing server gave (its JSON `{"error": ...}`)."""

    status: int
    retry_after: float | None = None
    reason: str | None = None

    def problem(self) -> str:
        """The failure in words, as the queue and the log show it."""
        answer = f"HTTP {self.status}: {self.reason}" if self.reason else f"HTTP {self.status}"
        if is_permanent_failure(self.status) or self.status in (401, 408, 429):
            return f"refused by the server ({answer})"
        return (
            f"the server failed ({answer})"
            if self.status >= 500
            else f"the server answered {answer}"
        )


class FederationClient:
    """One aiohttp session for everything a node sends."""

    def __init__(
        self,
        *,
        allow_private_network: bool,
        clock: Callable[[], datetime],
        timeout: float = 10.0,
        max_connections: int = 64,
        max_per_host: int = 4,
    ) -> None:
        self.allow_private_network = allow_private_network
        self.clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._limits = (max_connections, max_per_host)
        self._session: aiohttp.ClientSession | None = None
        self.signatures = Signatures()
        # Host names the SSRF guard let through (a name's addresses are checked again at
        # every connection, by the resolver): parsing an IP literal costs more than a POST's
        # own signing string.
        self._hosts_checked: set[str] = set()

    async def __aenter__(self) -> FederationClient:
        connector = aiohttp.TCPConnector(
            limit=self._limits[0],
            limit_per_host=self._limits[1],
            **resolver_kwargs(self.allow_private_network),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"User-Agent": f"Amity/{__version__}"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.signatures.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("FederationClient used outside `async with`")
        return self._session

    def _check(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchFailed(f"not an http(s) URL: {url[:200]}")
        if parts.hostname in self._hosts_checked:
            return  # a fan-out posts to the same few hosts a thousand times
        check_host(parts.hostname, self.allow_private_network)
        if len(self._hosts_checked) >= MAX_HOSTS_CHECKED:
            self._hosts_checked.clear()
        self._hosts_checked.add(parts.hostname)

    async def _headers(
        self, method: str, url: str, body: bytes | None, signer: Signer | None
    ) -> dict[str, str]:
        """The signature headers, the RSA part made off the event loop in a fan-out."""
        if signer is None:
            return {}
        unsigned = prepare_request(method=method, url=url, body=body, now=self.clock())
        signature = await self.signatures.sign(signer.private_key, unsigned.message)
        return unsigned.signed(signer.key_id, signature)

    async def get_json(
        self, url: str, signer: Signer | None = None, accept: str = ACCEPT_ACTIVITY
    ) -> Any:
        """The JSON document at `url`, following at most MAX_REDIRECTS redirects."""
        for _ in range(MAX_REDIRECTS + 1):
            try:
                host_of(url)
            except MalformedDocument as exc:
                raise FetchFailed(str(exc)) from exc
            self._check(url)
            headers = {"Accept": accept, **(await self._headers("GET", url, None, signer))}
            try:
                async with self.session.get(
                    url, headers=headers, allow_redirects=False
                ) as response:
                    if (
                        response.status in (301, 302, 303, 307, 308)
                        and "Location" in response.headers
                    ):
                        url = urljoin(url, response.headers["Location"])
                        continue
                    if response.status != 200:
                        reason = await _error_reason(response)
                        answer = f"HTTP {response.status}" + (f": {reason}" if reason else "")
                        raise FetchFailed(f"the server at {url} answered {answer}", response.status)
                    body = await _read_limited(response)
            except FetchFailed:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise Unreachable(self._network_error(url, exc)) from exc
            try:
                return parse_json(body)
            except MalformedDocument as exc:
                raise FetchFailed(f"{url} did not answer with JSON ({exc})") from exc
        raise FetchFailed(f"{url} redirects more than {MAX_REDIRECTS} times")

    async def post_headers(
        self, url: str, body: bytes, signer: Signer, *, rfc9421: bool = False
    ) -> dict[str, str]:
        """The signature headers `post` sends: draft-cavage rsa-sha256, or with `rfc9421`
        (and an Ed25519 key in `signer`) an RFC 9421 Ed25519 signature. Made on their own,
        they let a caller sign one POST while others are on the wire."""
        if rfc9421 and signer.ed25519_key is not None and signer.ed25519_key_id is not None:
            # About 60 us: made here on the event loop, no helper process needed.
            return sign_message(
                method="POST",
                url=url,
                content_type=ACTIVITY_TYPE,
                body=body,
                key_id=signer.ed25519_key_id,
                private_key=signer.ed25519_key,
                now=self.clock(),
            )
        return await self._headers("POST", url, body, signer)

    async def post(
        self,
        url: str,
        body: bytes,
        signer: Signer,
        *,
        rfc9421: bool = False,
        signed: dict[str, str] | None = None,
    ) -> PostResult:
        """POST a signed activity, signed as `post_headers` says (or with `signed`, headers
        it made for this url and body a moment ago); network failures raise FetchFailed."""
        self._check(url)
        if signed is None:
            signed = await self.post_headers(url, body, signer, rfc9421=rfc9421)
        headers = {"Content-Type": ACTIVITY_TYPE, **signed}
        try:
            async with self.session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                # A success's body is of no use; a refusal's says why (a few KiB at most).
                reason = await _error_reason(response) if response.status >= 400 else None
                return PostResult(
                    response.status, _retry_after(response.headers.get("Retry-After")), reason
                )
        except AddressRefused:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unreachable(self._network_error(url, exc)) from exc

    def _network_error(self, url: str, exc: BaseException) -> str:
        """What went wrong on the way to `url`, as a sentence."""
        parts = urlsplit(url)
        where = parts.netloc or url[:200]
        if isinstance(exc, TimeoutError):
            return f"no answer from {where}: timed out after {self._timeout.total:g} s"
        if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
            return f"could not make a secure (https) connection to {where}: {_words(exc)}"
        if isinstance(exc, aiohttp.ClientConnectorError):
            if isinstance(exc.os_error, socket.gaierror):
                return f"could not find the host {parts.hostname} (its name does not resolve)"
            if isinstance(exc.os_error, ConnectionRefusedError):
                return f"could not connect to {where} (connection refused): is the node running?"
            return f"could not connect to {where} ({_words(exc.os_error)})"
        if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError):
            return f"{where} closed the connection without answering"
        if isinstance(exc, aiohttp.ClientPayloadError):
            return f"{where} broke off its answer"
        return f"could not talk to {where}: {_words(exc)}"


async def wait_for_listener(host: str, ports: list[int], tries: int, interval: float) -> bool:
    """Whether something accepts TCP connections on `host` at one of `ports`, trying
    `tries` times `interval` seconds apart (a node started a moment ago may not listen yet).
    Only for addresses the caller may contact: it makes plain connections, unguarded."""
    for attempt in range(tries):
        for port in ports:
            try:
                async with asyncio.timeout(interval):
                    _reader, writer = await asyncio.open_connection(host, port)
            except (OSError, TimeoutError):
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True
        if attempt < tries - 1:
            await asyncio.sleep(interval)
    return False


async def _read_limited(response: aiohttp.ClientResponse) -> bytes:
    length = response.content_length
    if length is not None and length > MAX_RESPONSE_BYTES:
        raise FetchFailed(
            f"the answer of {length} bytes is over the limit of {MAX_RESPONSE_BYTES} bytes"
        )
    chunks, total = [], 0
    async for chunk in response.content.iter_chunked(65536):
        total += len(chunk)
        if total > MAX_RESPONSE_BYTES:
            raise FetchFailed(f"the answer is over the size limit of {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _error_reason(response: aiohttp.ClientResponse) -> str | None:
    """The `error` of a JSON refusal body, read up to MAX_ERROR_BODY bytes, made safe to
    print (control and formatting characters dropped, cut short)."""
    chunks, total = [], 0
    try:
        while total < MAX_ERROR_BODY:
            chunk = await response.content.read(MAX_ERROR_BODY - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None  # the status alone is the answer
    try:
        document = json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    reason = document.get("error") if isinstance(document, dict) else None
    if not isinstance(reason, str):
        return None
    text = " ".join("".join(c if c.isprintable() else " " for c in reason).split())
    return text[:MAX_REASON] or None


def _words(exc: BaseException) -> str:
    """An OS or library error's own words, without its class name or errno."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or exc.__class__.__name__


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own back-off
