"""Directory sync: a node that follows a hub reads the hub's directory from its cursor on.

Live Announces start when the hub accepts the follow; the sync covers everything before.
Entries seen both ways are kept once (a version no newer than the stored one is ignored),
so there is no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from sqlite_utils import Database

from ..protocol.activities import host_of
from ..protocol.endorsement import Endorsement, revoked_endorsement
from ..protocol.errors import MalformedDocument, ProtocolError
from ..protocol.profile_document import PROFILE_TYPE, profile_from_document
from ..protocol.proofs import verify_with_actor
from . import directory, endorsements, store
from .actors import RemoteActors
from .client import FederationClient
from .endorsement_checks import check_carried
from .errors import FetchFailed
from .runner import DbRunner
from .signer import Signer

log = logging.getLogger(__name__)
SYNC_INTERVAL = 600.0
SYNC_FETCHES = 8  # author documents fetched at once while catching up


class DirectorySync:
    """Reads the directories of the hubs an account follows."""

    def __init__(
        self,
        db: DbRunner,
        client: FederationClient,
        actors: RemoteActors,
        handle: str,
        signer: Callable[[], Signer],
        profile_stored: Callable[[Database, dict[str, Any], str | None], None],
        interval: float = SYNC_INTERVAL,
    ) -> None:
        self.db = db
        self.client = client
        self.actors = actors
        self.handle = handle
        self.signer = signer
        self.profile_stored = profile_stored
        self.interval = interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            await self.sync_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def sync_all(self) -> int:
        """Read every followed hub's new listings and revocations, and the revocations of
        the authorities this node trusts; returns how many listings changed."""
        hubs = await self.db(lambda db: store.followed_hubs(db, self.handle))
        trusted = await self.db(endorsements.trusted)
        changed = 0
        for hub in hubs:
            try:
                changed += await self._read(hub, "directory", self._ingest)
                await self._read(hub, "revocations", self._revocations)
            except (FetchFailed, ProtocolError) as exc:
                log.warning("directory sync with %s stopped: %s", hub.get("id"), exc)
        for authority_id in sorted(trusted - {str(hub["id"]) for hub in hubs}):
            try:
                authority = await self.actors.get(authority_id)
                await self._read(authority, "revocations", self._revocations)
            except (FetchFailed, ProtocolError) as exc:
                log.warning("revocation sync with %s stopped: %s", authority_id, exc)
        return changed

    async def _read(
        self,
        actor: dict[str, Any],
        collection: str,
        ingest: Callable[[list[Any]], Awaitable[int]],
    ) -> int:
        """Read `actor`'s change-cursor collection (directory or revocations) from where
        this node stopped last time."""
        url = actor.get(collection)
        if not isinstance(url, str):
            return 0
        key = str(actor["id"]) if collection == "directory" else f"{actor['id']} {collection}"
        seq = await self.db(lambda db: directory.sync_cursor(db, key))
        changed = 0
        page_url: str | None = f"{url}?since={seq}"
        while page_url:
            page = await self.client.get_json(page_url, self.signer())
            items = page.get("orderedItems") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise FetchFailed(f"{page_url} is not a {collection} page")
            changed += await ingest(items)
            last = page.get("cursor")
            if isinstance(last, int) and last > seq:
                seq = last
                await self.db(partial(directory.set_sync_cursor, hub=key, seq=last))
            next_url = page.get("next")
            page_url = next_url if isinstance(next_url, str) and items else None
        return changed

    async def _revocations(self, items: list[Any]) -> int:
        """Keep each revocation whose authority's proof checks."""
        checked: list[tuple[str, str, str, dict[str, Any]]] = []
        for item in items:
            try:
                revoked = revoked_endorsement(item) if isinstance(item, dict) else None
                authority = item.get("actor") if revoked is not None else None
                if revoked is None or not isinstance(authority, str):
                    raise MalformedDocument("not a revocation")
                if host_of(revoked) != host_of(authority):
                    raise MalformedDocument("an authority can only revoke its own endorsements")
                verify_with_actor(item, await self.actors.get(authority))
                deleted = item["object"].get("deleted")
                checked.append((revoked, authority, str(deleted), item))
            except (ProtocolError, FetchFailed, KeyError, TypeError, AttributeError) as exc:
                log.info("revocation skipped: %s", exc)

        def apply(db: Database) -> int:
            with db.atomic():
                return sum(
                    endorsements.record_revocation(db, rid, authority, when, item)
                    for rid, authority, when, item in checked
                )

        return await self.db(apply)

    async def _ingest(self, items: list[Any]) -> int:
        """Verify each listing against its author's key (fetching authors a few at a time),
        then keep what is new, in the page's order."""
        limit = asyncio.Semaphore(SYNC_FETCHES)

        async def check(item: Any) -> tuple[str, dict[str, Any], list[Endorsement]] | None:
            if not isinstance(item, dict):
                return None
            try:
                async with limit:
                    if item.get("type") == PROFILE_TYPE:
                        author = await self.actors.get(item["attributedTo"])
                        proof = verify_with_actor(item, author)
                        profile_from_document(item)
                        held = await check_carried(self.actors, item, proof.public_key)
                        return ("profile", item, held)
                    if item.get("type") == "Tombstone" and await self._gone(item):
                        return ("tombstone", item, [])
            except (ProtocolError, FetchFailed, KeyError, TypeError) as exc:
                log.info("directory entry %s skipped: %s", item.get("id"), exc)
            return None

        results = await asyncio.gather(*(check(item) for item in items))
        checked = [result for result in results if result is not None]
        now = time.time()

        def apply(db: Database) -> int:
            changed = 0
            with db.atomic():
                for kind, item, held in checked:
                    if kind == "profile" and directory.store_profile(db, item, now, held):
                        self.profile_stored(db, item, None)
                        changed += 1
                    elif kind == "tombstone":
                        changed += directory.remove_profile(
                            db, item["attributedTo"], str(item.get("deleted", "")), now
                        )
            return changed

        return await self.db(apply)

    async def _gone(self, tombstone: dict[str, Any]) -> bool:
        """A hub's tombstone counts only when the school's own node no longer has the profile."""
        profile_id, author = tombstone.get("id"), tombstone.get("attributedTo")
        if not isinstance(profile_id, str) or not isinstance(author, str):
            return False
        try:
            await self.client.get_json(profile_id, self.signer())
        except FetchFailed as exc:
            return exc.status in (404, 410)
        return False
