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
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlite_utils import Database

from ..protocol.errors import ProtocolError
from ..protocol.profile_document import PROFILE_TYPE, profile_from_document
from ..protocol.proofs import verify_with_actor
from . import directory, store
from .actors import RemoteActors
from .client import FederationClient, Signer
from .errors import FetchFailed
from .runner import DbRunner

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
        """Read every followed hub's new entries; returns how many listings changed."""
        hubs = await self.db(lambda db: store.followed_hubs(db, self.handle))
        changed = 0
        for hub in hubs:
            try:
                changed += await self.sync_hub(hub)
            except (FetchFailed, ProtocolError) as exc:
                log.warning("directory sync with %s stopped: %s", hub.get("id"), exc)
        return changed

    async def sync_hub(self, hub: dict[str, Any]) -> int:
        url = hub.get("directory")
        if not isinstance(url, str):
            return 0
        hub_id = str(hub["id"])
        seq = await self.db(lambda db: directory.sync_cursor(db, hub_id))
        changed = 0
        page_url: str | None = f"{url}?since={seq}"
        while page_url:
            page = await self.client.get_json(page_url, self.signer())
            items = page.get("orderedItems") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise FetchFailed(f"{page_url} is not a directory page")
            changed += await self._ingest(items)
            last = page.get("cursor")
            if isinstance(last, int) and last > seq:
                seq = last
                await self.db(partial(directory.set_sync_cursor, hub=hub_id, seq=last))
            next_url = page.get("next")
            page_url = next_url if isinstance(next_url, str) and items else None
        return changed

    async def _ingest(self, items: list[Any]) -> int:
        """Verify each listing against its author's key (fetching authors a few at a time),
        then keep what is new, in the page's order."""
        limit = asyncio.Semaphore(SYNC_FETCHES)

        async def check(item: Any) -> tuple[str, dict[str, Any]] | None:
            if not isinstance(item, dict):
                return None
            try:
                async with limit:
                    if item.get("type") == PROFILE_TYPE:
                        verify_with_actor(item, await self.actors.get(item["attributedTo"]))
                        profile_from_document(item)
                        return ("profile", item)
                    if item.get("type") == "Tombstone" and await self._gone(item):
                        return ("tombstone", item)
            except (ProtocolError, FetchFailed, KeyError, TypeError) as exc:
                log.info("directory entry %s skipped: %s", item.get("id"), exc)
            return None

        results = await asyncio.gather(*(check(item) for item in items))
        checked = [result for result in results if result is not None]
        now = time.time()

        def apply(db: Database) -> int:
            changed = 0
            with db.atomic():
                for kind, item in checked:
                    if kind == "profile" and directory.store_profile(db, item, now):
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
