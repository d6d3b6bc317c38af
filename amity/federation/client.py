"""Outgoing HTTP: signed GETs and POSTs with time-outs, size and redirect limits, SSRF guard."""

from __future__ import annotations

import json
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
from .errors import AddressRefused, FetchFailed
from .guard import check_host, resolver_kwargs
from .signer import Signer
from .signing import Signatures

ACCEPT_ACTIVITY = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class PostResult:
    """What a POST got back: the status and, for 429 and 503, how long to wait."""

    status: int
    retry_after: float | None = None


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
        check_host(parts.hostname, self.allow_private_network)

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
                        raise FetchFailed(f"GET {url} answered {response.status}", response.status)
                    body = await _read_limited(response)
            except AddressRefused:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise FetchFailed(f"GET {url} failed: {exc.__class__.__name__} {exc}") from exc
            try:
                return json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise FetchFailed(f"GET {url} did not return JSON") from exc
        raise FetchFailed(f"GET {url}: more than {MAX_REDIRECTS} redirects")

    async def post(self, url: str, body: bytes, signer: Signer) -> PostResult:
        """POST a signed activity; network failures raise FetchFailed."""
        self._check(url)
        headers = {
            "Content-Type": "application/activity+json",
            **(await self._headers("POST", url, body, signer)),
        }
        try:
            async with self.session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                return PostResult(
                    response.status, _retry_after(response.headers.get("Retry-After"))
                )
        except AddressRefused:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise FetchFailed(f"POST {url} failed: {exc.__class__.__name__} {exc}") from exc


async def _read_limited(response: aiohttp.ClientResponse) -> bytes:
    length = response.content_length
    if length is not None and length > MAX_RESPONSE_BYTES:
        raise FetchFailed(f"response of {length} bytes is over the limit")
    chunks, total = [], 0
    async for chunk in response.content.iter_chunked(65536):
        total += len(chunk)
        if total > MAX_RESPONSE_BYTES:
            raise FetchFailed("response is over the size limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own back-off
