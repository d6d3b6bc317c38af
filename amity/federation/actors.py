"""Remote actors: fetched with a signed GET, cached with a time-to-live, keys looked up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..protocol.activities import host_of
from ..protocol.errors import UnknownKey
from ..protocol.httpsig import PublicKey, key_from_document
from . import actor_cache
from .client import FederationClient
from .clock import Clock, system_clock
from .errors import FetchFailed
from .runner import DbRunner
from .signer import Signer

ACTOR_TTL = 24 * 3600.0
ACTOR_TYPES = frozenset({"Person", "Organization", "Service", "Group", "Application"})
# A key document is fetched again for a signature that fails at most this often: a flood
# of junk signatures naming a real key must not make this node hammer the key's owner.
REFETCH_INTERVAL = 300.0
MAX_REFETCH_MARKS = 10_000


def is_actor(document: dict[str, Any]) -> bool:
    kind = document.get("type")
    return isinstance(kind, str) and kind in ACTOR_TYPES


def check_actor(document: Any, fetched_from: str) -> dict[str, Any]:
    """`document` when it is an actor served by the host its id names."""
    if not isinstance(document, dict) or not isinstance(document.get("id"), str):
        raise FetchFailed(f"{fetched_from} did not return an object with an id")
    if host_of(document["id"]) != host_of(fetched_from):
        raise FetchFailed(f"{fetched_from} returned a document of another host")
    return document


class RemoteActors:
    """The cache of other nodes' actors, backed by the remote_actors table."""

    def __init__(
        self,
        db: DbRunner,
        client: FederationClient,
        signer: Callable[[], Signer],
        ttl: float = ACTOR_TTL,
        clock: Clock = system_clock,
        refetch_interval: float = REFETCH_INTERVAL,
    ) -> None:
        self.db = db
        self.client = client
        self.signer = signer
        self.ttl = ttl
        self.clock = clock
        self.refetch_interval = refetch_interval
        # Parsed keys by key id, so a busy inbox skips the database and PEM parsing.
        self._keys: dict[str, tuple[float, str, PublicKey, dict[str, Any]]] = {}
        # Which fetch (by number) last got each document, and when each was last
        # fetched again because a signature failed; oldest first.
        self.fetches = 0
        self._fetched: dict[str, int] = {}
        self._refetched: dict[str, float] = {}
        self._inflight: dict[str, asyncio.Future[None]] = {}  # fresh fetches under way

    def forget(self, actor_id: str) -> None:
        """Drop what is held in memory about an actor (it changed or was deleted)."""
        for key_id in [k for k, v in self._keys.items() if v[1] == actor_id]:
            del self._keys[key_id]

    async def fetch(self, url: str, cache: bool = True) -> dict[str, Any]:
        """Fetch `url` now (signed, so authorized-fetch servers answer) and cache it if an
        actor (and `cache`)."""
        self.fetches += 1
        self._fetched.pop(url, None)  # re-inserted last: the dict stays oldest first
        self._fetched[url] = self.fetches
        if len(self._fetched) > MAX_REFETCH_MARKS:
            del self._fetched[next(iter(self._fetched))]
        document = check_actor(await self.client.get_json(url, self.signer()), url)
        if cache and is_actor(document):
            fetched_at = self.clock().timestamp()
            await self.db(lambda db: actor_cache.cache_actor(db, document, fetched_at))
        return document

    async def _document(self, url: str, refresh: bool, cache: bool = True) -> dict[str, Any]:
        held = None if refresh else await self._fresh(url)
        return held if held is not None else await self.fetch(url, cache)

    async def _fresh(self, url: str) -> dict[str, Any] | None:
        cached = await self.db(lambda db: actor_cache.cached_actor(db, url))
        return (
            cached[0]
            if cached is not None and self.clock().timestamp() - cached[1] < self.ttl
            else None
        )

    async def cached(self, actor_id: str) -> dict[str, Any] | None:
        """The actor document if the cache holds it fresh; never fetches."""
        document = await self._fresh(actor_id)
        return document if document is not None and document.get("id") == actor_id else None

    async def get(self, actor_id: str, refresh: bool = False, cache: bool = True) -> dict[str, Any]:
        """The actor document, from the cache while it is fresh; a fetched one is cached
        unless `cache` is False."""
        document = await self._document(actor_id, refresh, cache)
        if not is_actor(document) or document["id"] != actor_id:
            raise FetchFailed(f"{actor_id} is not an actor")
        return document

    async def key(
        self, key_id: str, refresh: bool = False
    ) -> tuple[str, PublicKey, dict[str, Any]]:
        """(owner, public key, owner's actor document) for a key id.

        A key missing from a cached document triggers one fresh fetch (the key may be new).
        `refresh`, and that fetch, happen only when `refetch_wait` is 0; otherwise the copy
        held is used, once a fresh fetch already under way has ended.
        """
        if refresh and self.refetch_wait(key_id):
            await self._settled(_document_of(key_id))
            refresh = False
        held = self._keys.get(key_id)
        if held is not None and not refresh and self.clock().timestamp() - held[0] < self.ttl:
            return held[1], held[2], held[3]
        if refresh:
            return await self._refetched_key(key_id)
        found = await self._lookup_key(key_id, refresh=False)
        self._hold(key_id, found)
        return found

    def _hold(self, key_id: str, found: tuple[str, PublicKey, dict[str, Any]]) -> None:
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[key_id] = (self.clock().timestamp(), *found)

    async def _refetched_key(self, key_id: str) -> tuple[str, PublicKey, dict[str, Any]]:
        """The key from a fresh fetch of its document; requests that want one meanwhile
        wait for this one rather than fetch again."""
        url = _document_of(key_id)
        self._refetching(url)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[url] = done
        try:
            found = await self._lookup_key(key_id, refresh=True)
            self._hold(key_id, found)
            return found
        finally:
            self._inflight.pop(url, None)
            done.set_result(None)

    async def _settled(self, url: str) -> None:
        pending = self._inflight.get(url)
        if pending is not None:
            await asyncio.shield(pending)

    async def _lookup_key(
        self, key_id: str, refresh: bool
    ) -> tuple[str, PublicKey, dict[str, Any]]:
        url = _document_of(key_id)
        cached = None if refresh else await self._fresh(url)
        document = cached if cached is not None else await self.fetch(url)
        try:
            owner, key = key_from_document(document, key_id)
        except UnknownKey:
            if cached is None:
                raise  # just fetched
            if self.refetch_wait(key_id):  # fetched again moments ago, or being fetched
                await self._settled(url)
                held = self._keys.get(key_id)
                if held is None:
                    raise
                return held[1], held[2], held[3]
            return await self._refetched_key(key_id)
        if owner == document["id"]:
            return owner, key, document
        # A stand-alone key document: its owner must publish the same key.
        actor = await self.get(owner, refresh)
        if key_from_document(actor, key_id)[0] != owner:
            raise UnknownKey(f"{owner} does not claim key {key_id}")
        return owner, key, actor

    def refetch_wait(self, key_id: str) -> float:
        """Seconds until the document holding `key_id` may be fetched again because a
        signature failed (0: now); once per `refetch_interval`."""
        refetched = self._refetched.get(_document_of(key_id))
        if refetched is None:
            return 0.0
        return max(0.0, self.refetch_interval - (self.clock().timestamp() - refetched))

    def fetched_since(self, key_id: str, fetches: int) -> bool:
        """Whether the document holding `key_id` was fetched after the first `fetches`
        fetches (a caller notes `self.fetches` first): then no newer copy is to be had."""
        return self._fetched.get(_document_of(key_id), 0) > fetches

    def _refetching(self, url: str) -> None:
        """Note that `url` is fetched again now; marks older than `refetch_interval` and
        the oldest beyond MAX_REFETCH_MARKS are forgotten."""
        now = self.clock().timestamp()
        marks = self._refetched
        marks.pop(url, None)  # re-inserted last: the dict stays oldest first
        marks[url] = now
        while marks and (
            len(marks) > MAX_REFETCH_MARKS
            or now - next(iter(marks.values())) >= self.refetch_interval
        ):
            del marks[next(iter(marks))]


def _document_of(key_id: str) -> str:
    return key_id.split("#", 1)[0]
