"""Directory sync: a node that follows a hub reads the hub's directory from its cursor on.

Live Announces start when the hub accepts the follow; the sync covers everything before.
Entries seen both ways are kept once (a version no newer than the stored one is ignored),
so there is no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlite_utils import Database

from ..protocol.activities import host_of
from ..protocol.endorsement import Endorsement, revoked_endorsement
from ..protocol.errors import MalformedDocument, ProtocolError
from ..protocol.multikey import decode_ed25519_public
from ..protocol.profile_document import PROFILE_TYPE, profile_from_document
from ..protocol.proofs import (
    ProofInfo,
    find_assertion_key,
    read_proof,
    verify_with_actor,
)
from . import directory, endorsement_store, relations
from .actors import RemoteActors
from .author_keys import verify_by_author
from .client import FederationClient
from .clock import Clock, system_clock
from .endorsement_verification import check_carried
from .errors import FetchFailed
from .runner import DbRunner
from .signer import Signer
from .waiting import wait_or_wake

log = logging.getLogger(__name__)
SYNC_INTERVAL = 600.0
SYNC_FETCHES = 8  # author documents fetched at once while catching up
UNCONFIRMED_FOR = 24 * 3600.0  # a listing whose author cannot be reached is dropped then


@dataclass(frozen=True)
class _Checked:
    """A directory entry that passed its checks, ready to be stored."""

    kind: str  # profile or tombstone
    item: dict[str, Any]
    held: list[Endorsement] = field(default_factory=list)
    proof: ProofInfo | None = None
    key_confirmed_at: float | None = None


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
        clock: Clock = system_clock,
    ) -> None:
        self.db = db
        self.client = client
        self.actors = actors
        self.handle = handle
        self.signer = signer
        self.profile_stored = profile_stored
        self.interval = interval
        self.clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.sync_all()
                _, dropped = await self.confirm_keys()
                if dropped:
                    log.warning("dropped %d listings that could not be confirmed", dropped)
            except Exception:  # one bad round must not end syncing for good
                log.exception("directory sync round failed")
            await wait_or_wake(self._wake, self.interval)

    async def sync_all(self) -> int:
        """Read every followed hub's new listings and revocations, and the revocations of
        the authorities this node trusts; returns how many listings changed."""
        hubs = await self.db(lambda db: relations.followed_hubs(db, self.handle))
        trusted = await self.db(endorsement_store.trusted)
        changed = 0
        for hub in hubs:
            try:
                changed += await self.sync_hub(hub)
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

    async def sync_hub(self, hub: dict[str, Any]) -> int:
        """Read one hub's directory from the stored cursor on; how many listings changed."""
        return await self._read(hub, "directory", self._ingest)

    async def _read(
        self,
        actor: dict[str, Any],
        collection: str,
        ingest: Callable[[list[Any], dict[str, Any]], Awaitable[int]],
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
            changed += await ingest(items, page)
            last = page.get("cursor")
            if isinstance(last, int) and last > seq:
                seq = last
                await self.db(partial(directory.set_sync_cursor, hub=key, seq=last))
            next_url = page.get("next")
            page_url = next_url if isinstance(next_url, str) and items else None
        return changed

    async def _revocations(self, items: list[Any], page: dict[str, Any]) -> int:
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
                    endorsement_store.record_revocation(db, rid, authority, when, item)
                    for rid, authority, when, item in checked
                )

        return await self.db(apply)

    async def _ingest(self, items: list[Any], page: dict[str, Any]) -> int:
        """Verify each listing, then keep what is new, in the page's order.

        A listing is checked against its author's actor when this node holds it fresh;
        otherwise against the key the hub says it checked it with (`authorKeys`), and kept
        unconfirmed until `confirm_keys` has seen the author's actor publish that key.
        Without either, the author's actor is fetched (a few at a time).
        """
        limit = asyncio.Semaphore(SYNC_FETCHES)
        hub_keys = page.get("authorKeys")
        hub_keys = hub_keys if isinstance(hub_keys, dict) else {}
        authors = [
            item["attributedTo"]
            for item in items
            if isinstance(item, dict) and isinstance(item.get("attributedTo"), str)
        ]
        listed = await self.db(partial(directory.listing_keys, actors=authors))

        async def check(item: Any) -> _Checked | None:
            if not isinstance(item, dict):
                return None
            try:
                if item.get("type") == PROFILE_TYPE:
                    profile_from_document(item)
                    known = listed.get(item["attributedTo"])
                    claimed = hub_keys.get(read_proof(item)["verificationMethod"])
                    proof, confirmed_at = await verify_by_author(
                        self.actors,
                        item,
                        item["attributedTo"],
                        known,
                        self.clock().timestamp(),
                        hub_key=claimed if isinstance(claimed, str) else None,
                        fetches=limit,
                    )
                    async with limit:
                        held = await check_carried(self.actors, item, proof.public_key)
                    return _Checked("profile", item, held, proof, confirmed_at)
                if item.get("type") == "Tombstone":
                    async with limit:
                        if await self._gone(item):
                            return _Checked("tombstone", item)
            except (ProtocolError, FetchFailed, KeyError, TypeError) as exc:
                log.info("directory entry %s skipped: %s", item.get("id"), exc)
            return None

        results = await asyncio.gather(*(check(item) for item in items))
        checked = [result for result in results if result is not None]
        now = self.clock().timestamp()

        def apply(db: Database) -> int:
            changed = 0
            with db.atomic():
                for entry in checked:
                    item = entry.item
                    if entry.kind == "profile" and directory.store_profile(
                        db, item, now, entry.held, entry.proof, entry.key_confirmed_at
                    ):
                        if entry.key_confirmed_at is not None:
                            # A hub relays a listing on its own word only once confirmed.
                            self.profile_stored(db, item, None)
                        changed += 1
                    elif entry.kind == "tombstone":
                        changed += directory.remove_profile(
                            db, item["attributedTo"], str(item.get("deleted", "")), now
                        )
            return changed

        return await self.db(apply)

    async def confirm_keys(self) -> tuple[int, int]:
        """Fetch the authors of unconfirmed listings (a few at a time) and confirm each
        listing whose key its author publishes; a listing whose author publishes another
        key, or no longer exists, is dropped. An author that cannot be reached now is tried
        again next round. Returns (confirmed, dropped)."""
        confirmed = dropped = 0
        after = 0
        limit = asyncio.Semaphore(SYNC_FETCHES)
        while True:
            batch = await self.db(partial(directory.unconfirmed, after=after, limit=200))
            if not batch:
                return confirmed, dropped
            after = batch[-1].rowid
            ok, bad = await self._confirm_batch(batch, limit)
            confirmed += ok
            dropped += bad

    async def _confirm_batch(
        self, batch: list[directory.Unconfirmed], limit: asyncio.Semaphore
    ) -> tuple[int, int]:
        async def confirm(actor_id: str, key_id: str, key: str) -> bool | None:
            try:
                async with limit:
                    # Not kept in the actor cache: the confirmed key, kept with the
                    # listing, is all later profiles need.
                    actor = await self.actors.get(actor_id, cache=False)
                return find_assertion_key(actor, key_id) == decode_ed25519_public(key)
            except FetchFailed as exc:
                return False if exc.status in (404, 410) else None
            except ProtocolError:
                return False

        outcomes = await asyncio.gather(
            *(confirm(row.actor, row.key_id, row.author_key) for row in batch)
        )
        now = self.clock().timestamp()

        def apply(db: Database) -> tuple[int, int]:
            ok = bad = 0
            with db.atomic():
                for row, outcome in zip(batch, outcomes, strict=True):
                    if outcome is True:
                        document = directory.confirm_key(
                            db, row.actor, row.key_id, row.author_key, now
                        )
                        if document is not None:
                            self.profile_stored(db, document, None)
                            ok += 1
                    elif outcome is False or now - row.received_at > UNCONFIRMED_FOR:
                        # Refused by its author, or unreachable for a day: a school that
                        # exists comes back with its next version.
                        bad += directory.forget_listing(db, row.actor, row.author_key)
            return ok, bad

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
