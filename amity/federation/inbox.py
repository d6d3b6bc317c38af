"""Inbox processing: authenticate a POSTed activity, then apply it once.

Order of checks: rate limit per source address (429), signature present (401), key not on
a blocked host (403), signature valid with the sender's key, fetched again at most once
per key document in actors.REFETCH_INTERVAL (401; 429 while a fetch must wait), rate
limit per verified signing host (429), well-formed JSON activity (400), neither actor nor
id on a blocked host (403), origin: key owner = actor, activity id on the actor's host
(401); then the activity's effect, applied in one transaction together with its id, so a
repeat does nothing. What costs more than a table look-up (fetching a key, parsing the
body) comes after the cheap refusals, and a request whose signature fails counts only
against its own address.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from sqlite_utils import Database

from ..protocol.activities import IncomingActivity, host_of, read_activity
from ..protocol.endorsement import ENDORSEMENT_TYPE, revoked_endorsement
from ..protocol.errors import (
    BadSignature,
    KeyMismatch,
    MalformedDocument,
    ProtocolError,
)
from ..protocol.jsontext import parse_json
from ..protocol.profile_document import PROFILE_TYPE, profile_from_document
from ..protocol.proofs import ProofInfo, verify_with_actor
from . import (
    actor_cache,
    delivery_queue,
    directory,
    endorsement_store,
    follows,
    limits,
    relations,
    remote_objects,
    reports,
    seen,
)
from .actors import ACTOR_TYPES, RemoteActors
from .author_keys import verify_by_author
from .blocks import BlockList
from .endorsement_verification import check_carried, check_endorsement
from .errors import FetchFailed
from .inbox_signatures import check_without_key, signing_key_id, verify_signature
from .inbox_types import InboxHooks, InboxRequest, InboxResult, Rejected, Sender
from .local_accounts import LocalAccounts
from .moves import MoveInbox
from .partnership_inbox import PartnershipInbox, route
from .ratelimit import RateLimiter, address_key
from .runner import DbRunner

log = logging.getLogger(__name__)
Effect = Callable[[Database], object]


class Inbox:
    """Receives activities for the node's local actors (each inbox and the shared one)."""

    def __init__(
        self,
        db: DbRunner,
        actors: RemoteActors,
        *,
        local_actors: Mapping[str, str],
        clock: Callable[[], datetime],
        limiter: RateLimiter,
        address_limiter: RateLimiter,
        queued: Callable[[], None],
        hooks: InboxHooks,
        follow_policy: str = follows.DEFAULT_POLICY,
        follow_limits: follows.FollowLimits | None = None,
    ) -> None:
        self.db = db
        self.actors = actors
        self.local_actors = local_actors  # actor id -> handle
        self.clock = clock
        self.limiter = limiter  # per verified signing host
        self.address_limiter = address_limiter  # per source address, before verification
        self.queued = queued
        self.hooks = hooks
        self.follow_policy = follow_policy
        self.follow_limits = follow_limits or follows.FollowLimits()
        self.blocks = BlockList(db, clock=clock)
        self.handlers: dict[str, Callable[[IncomingActivity, Sender], Awaitable[Effect | None]]] = {
            "Follow": self._follow,
            "Accept": self._answer("accepted"),
            "Reject": self._answer("rejected"),
            "Undo": self._undo,
            "Create": self._create_or_update,
            "Update": self._create_or_update,
            "Delete": self._delete,
            "Announce": self._announce,
            "Flag": self._flag,
        }
        offers = PartnershipInbox(db, actors, local_actors=local_actors, clock=clock, hooks=hooks)
        route(self.handlers, offers)  # Offer, Leave; Accept and Reject of an Offer
        self.handlers["Move"] = MoveInbox(db, actors, local_actors=local_actors, clock=clock).move

    async def receive(self, request: InboxRequest) -> InboxResult:
        """Process one POST; never raises for bad input, answers with a status instead."""
        try:
            return await self._receive(request)
        except Rejected as exc:
            return InboxResult(exc.status, exc.reason, exc.retry_after)

    async def _receive(self, request: InboxRequest) -> InboxResult:
        wait = self.address_limiter.check(address_key(request.source))
        if wait:
            raise Rejected(429, "too many requests from this address", retry_after=wait)
        key_id = signing_key_id(request.headers)
        key_document = key_id.split("#", 1)[0]
        if await self.blocks.blocked(key_id, key_document):
            raise Rejected(403, "blocked")
        sender = await self._authenticate(request, key_id)
        # Counted only once the signature holds, so no one can spend another's allowance.
        sender_host = _safe_host(sender.key_id)
        wait = self.limiter.check(sender_host)
        if wait:
            raise Rejected(429, "too many requests from this host", retry_after=wait)
        try:
            activity = read_activity(parse_json(request.body))
        except MalformedDocument as exc:
            raise Rejected(400, str(exc)) from exc
        checked = activity.actor == key_document and host_of(activity.id) == host_of(key_id)
        if not checked and await self.blocks.blocked(activity.actor, activity.id):
            raise Rejected(403, "blocked")
        relayed_by_other = sender.owner != activity.actor
        if not relayed_by_other and host_of(activity.id) != host_of(activity.actor):
            raise Rejected(401, "activity id and actor are on different hosts")
        if relayed_by_other and (
            activity.type not in ("Create", "Update")
            or not isinstance(activity.object, dict)
            or "proof" not in activity.object
        ):
            # Only an object with its author's own integrity proof may come from someone else.
            raise Rejected(401, "the signing key does not belong to the activity's actor")
        if isinstance(self.local_actors, LocalAccounts):
            await self.local_actors.fresh()  # a school added or removed by another process
        handler = self.handlers.get(activity.type)
        effect: Effect | None = None
        if handler is not None:
            try:
                effect = await handler(activity, sender)
            except (ProtocolError, FetchFailed) as exc:
                raise Rejected(400, f"{activity.type} refused: {exc}") from exc
        now = self.clock().timestamp()

        def apply(db: Database) -> bool | None:
            if self.blocks.holds(key_id, activity.actor, activity.id):
                return None  # blocked while it was being checked
            delivery_queue.host_available(db, sender_host, now)
            if not seen.mark_seen(db, activity.id, activity.type, activity.actor, now):
                return False
            if effect is not None:
                effect(db)
            return True

        fresh = await self.db.grouped(apply)  # one commit for every request waiting
        if fresh is None:
            raise Rejected(403, "blocked")
        if fresh and effect is not None:
            self.queued()
        return InboxResult(202, "accepted" if fresh else "already processed")

    async def _authenticate(self, request: InboxRequest, key_id: str) -> Sender:
        """The verified sender. What no key could fix (time, Digest, coverage) is refused
        before any key is fetched; a signature that fails with the held key gets one fresh
        fetch (the key may have been rotated), at most once per key document in
        actors.REFETCH_INTERVAL: inside it the sender is told when to try again."""
        now = self.clock()
        try:
            check_without_key(request, now)
        except (BadSignature, MalformedDocument) as exc:
            raise Rejected(401, str(exc)) from exc
        fetches = self.actors.fetches
        tried: Any = None
        for refresh in (False, True):
            try:
                owner, key, document = await self.actors.key(key_id, refresh=refresh)
            except (FetchFailed, ProtocolError) as exc:
                # The stranger learns nothing about the host it named (does it resolve,
                # answer, hold that key?); the operator finds the reason in the log.
                log.info("inbox: cannot get key %s: %s", key_id, exc)
                raise Rejected(401, "cannot verify the signature") from exc
            if key is tried:  # no fresh fetch allowed yet, and none got a newer key
                raise Rejected(
                    429,
                    "the signature does not verify with the key held, which is fetched "
                    f"again at most every {self.actors.refetch_interval:g} s",
                    retry_after=self.actors.refetch_wait(key_id) or 1.0,
                )
            try:
                verify_signature(request, key_id, key, now)
            except KeyMismatch as exc:
                if refresh or self.actors.fetched_since(key_id, fetches):
                    raise Rejected(401, str(exc)) from exc  # the key is as fresh as it gets
                tried = key
                continue
            except (BadSignature, MalformedDocument) as exc:
                raise Rejected(401, str(exc)) from exc
            return Sender(key_id, owner, document)
        raise AssertionError("unreachable")

    # -- handlers: network work first, then an effect for the database transaction -------

    def _local_handle(self, target: Any) -> str:
        handle = self.local_actors.get(target if isinstance(target, str) else "")
        if handle is None:
            raise MalformedDocument("object is not an actor of this node")
        return handle

    async def _follow(self, activity: IncomingActivity, sender: Sender) -> Effect:
        """A follower is taken at once, or held for the operator by the follow policy;
        either way only through inboxes on its own host and within its host's caps."""
        handle = self._local_handle(activity.object)
        actor = sender.actor_document
        inboxes = follows.follower_inboxes(actor)
        hold = follows.needs_approval(self.follow_policy, actor)
        now = self.clock()
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        request = follows.FollowRequest(
            handle,
            activity.actor,
            follows.display_name(actor),
            inboxes.inbox,
            inboxes.personal,
            follows.minimal_follow(activity.document),
            now.timestamp(),
        )

        def effect(db: Database) -> None:
            try:
                follows.check_caps(db, handle, activity.actor, inboxes.inbox, self.follow_limits)
                if hold and not follows.is_follower(db, handle, activity.actor):
                    follows.hold(db, request, self.follow_limits)
                    return
            except follows.FollowRefused as exc:
                raise Rejected(403, f"Follow refused: {exc}") from exc
            follows.drop_request(db, handle, activity.actor)
            relations.add_follower(db, handle, activity.actor, inboxes.inbox, activity.id, stamp)
            self.hooks.accept_follow(db, handle, activity.document, inboxes.personal)

        return effect

    def _answer(self, state: str) -> Callable[[IncomingActivity, Sender], Awaitable[Effect]]:
        async def handler(activity: IncomingActivity, sender: Sender) -> Effect:
            follow_id = activity.object_id
            if follow_id is None:
                raise MalformedDocument(f"{activity.type} names no Follow")

            actor = sender.actor_document if sender.owner == activity.actor else None

            def effect(db: Database) -> None:
                answered = relations.answer_follow(db, follow_id, activity.actor, state)
                if answered is not None and state == "accepted":
                    self.hooks.follow_accepted(db, actor, answered)

            return effect

        return handler

    async def _undo(self, activity: IncomingActivity, sender: Sender) -> Effect | None:
        inner = activity.object
        if not isinstance(inner, dict) or inner.get("type") != "Follow":
            return None  # only Undo of Follow means something here
        if inner.get("actor") != activity.actor:
            raise MalformedDocument("an actor can only undo its own Follow")
        handle = self._local_handle(inner.get("object"))
        return lambda db: relations.remove_follower(db, handle, activity.actor)

    async def _verified_object(
        self, obj: dict[str, Any], author: str
    ) -> tuple[ProofInfo, float | None]:
        """Check `obj`'s integrity proof against its author's key (author_keys.py)."""
        listed = await self.db(partial(directory.listing_keys, actors=[author]))
        return await verify_by_author(
            self.actors, obj, author, listed.get(author), self.clock().timestamp()
        )

    async def _create_or_update(self, activity: IncomingActivity, sender: Sender) -> Effect | None:
        obj = activity.object
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            raise MalformedDocument(f"{activity.type} needs an embedded object with an id")
        if obj.get("type") in ACTOR_TYPES:
            if obj["id"] != activity.actor or sender.owner != activity.actor:
                raise MalformedDocument("an actor can only update itself")
            self.actors.forget(activity.actor)
            fetched_at = self.clock().timestamp()

            def refresh_actor(db: Database) -> None:
                actor_cache.cache_actor(db, obj, fetched_at)
                directory.distrust_key(db, activity.actor)  # its keys may have changed

            return refresh_actor
        author = obj.get("attributedTo")
        if not isinstance(author, str) or host_of(author) != host_of(obj["id"]):
            raise MalformedDocument("object must be attributed to an actor on its own host")
        if obj.get("type") == ENDORSEMENT_TYPE:
            return await self._endorsement(obj)
        if obj.get("type") != PROFILE_TYPE:
            return None  # Amity keeps profiles: anything else is acknowledged, not stored
        # Profiles always carry a proof, so a relayed one is trusted through it.
        proof, seen = await self._verified_object(obj, author)
        return await self._keep(obj, author, activity.actor, proof, seen)

    async def _endorsement(self, obj: dict[str, Any]) -> Effect:
        """An authority endorsing one of this node's schools: kept, to be carried in the
        school's profile."""
        self._local_handle(obj.get("object"))
        endorsement = await check_endorsement(self.actors, obj)
        return lambda db: self.hooks.endorsement_received(db, endorsement)

    async def _delete(self, activity: IncomingActivity, sender: Sender) -> Effect:
        object_id = activity.object_id
        if object_id is None:
            raise MalformedDocument("Delete names no object")
        when = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        now = self.clock().timestamp()
        if object_id == activity.actor:
            self.actors.forget(activity.actor)

            def delete_actor(db: Database) -> None:
                remote_objects.tombstone_actor(db, activity.actor, when, now)
                if directory.is_listed(db, activity.actor):  # nothing to guard otherwise
                    directory.remove_profile(db, activity.actor, when, now)

            return delete_actor
        if host_of(object_id) != host_of(activity.actor):
            raise MalformedDocument("an actor can only delete objects of its own host")
        if revoked_endorsement(activity.document) is not None:
            verify_with_actor(activity.document, sender.actor_document)
            await self._check_room(
                "revocation",
                len(json.dumps(activity.document).encode()),
                limits.MAX_REVOCATION_BYTES,
                partial(endorsement_store.revocation_refusal, authority=activity.actor, size=0),
            )
            return self._revoke(activity.document, activity.actor, activity.actor)

        proven = "proof" in activity.document
        if proven:  # a signed Delete can travel on through hubs
            verify_with_actor(activity.document, sender.actor_document)
        removal = self._remove_listing(activity.document, activity.actor, activity.actor, proven)

        def delete_object(db: Database) -> None:
            remote_objects.tombstone_object(db, object_id, activity.actor, when, now)
            removal(db)

        return delete_object

    def _remove_listing(self, delete: dict[str, Any], author: str, via: str, relay: bool) -> Effect:
        """The effect of a Delete on the directory: the listing goes if the deleted object is
        the author's current profile; a signed Delete is handed on (hubs relay it)."""
        tombstone = delete.get("object")
        object_id = tombstone.get("id") if isinstance(tombstone, dict) else tombstone
        deleted = tombstone.get("deleted") if isinstance(tombstone, dict) else None
        when = deleted if isinstance(deleted, str) else self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        now = self.clock().timestamp()

        def remove(db: Database) -> None:
            if directory.listing_of(db, str(object_id)) != author:
                return
            if directory.remove_profile(db, author, when, now) and relay:
                self.hooks.profile_removed(db, delete, via)

        return remove

    async def _announce(self, activity: IncomingActivity, sender: Sender) -> Effect | None:
        obj = activity.object
        if isinstance(obj, str):
            return None  # a bare link: nothing to keep until someone asks for it
        if isinstance(obj, dict) and obj.get("type") == "Delete" and "proof" in obj:
            # A school's withdrawal or an authority's revocation, relayed by a hub: checked
            # against its author's key.
            author = obj.get("actor")
            if not isinstance(author, str):
                raise MalformedDocument("relayed Delete has no actor")
            revoked = revoked_endorsement(obj)
            if revoked is not None and host_of(revoked) != host_of(author):
                raise MalformedDocument("an authority can only revoke its own endorsements")
            await self._verified_object(obj, author)
            if revoked is not None:
                return self._revoke(obj, author, activity.actor)
            return self._remove_listing(obj, author, activity.actor, relay=True)
        if not isinstance(obj, dict) or not isinstance(obj.get("attributedTo"), str):
            raise MalformedDocument("Announce needs an attributed object")
        if "proof" not in obj or obj.get("type") != PROFILE_TYPE:
            # Only profiles are kept, and only with their author's proof: nothing else is
            # worth a fetch of its author's key.
            return None
        author = obj["attributedTo"]
        proof, seen = await self._verified_object(obj, author)
        return await self._keep(obj, author, activity.actor, proof, seen)

    async def _keep(
        self,
        obj: dict[str, Any],
        author: str,
        via: str,
        proof: ProofInfo | None,
        key_seen: float | None,
    ) -> Effect | None:
        """The effect that stores a checked object: a profile goes to the directory, with
        the endorsements it carries that hold for the key its `proof` verified with."""
        now = self.clock().timestamp()
        if obj.get("type") != PROFILE_TYPE:
            return None  # only profiles are kept (in the directory)
        profile_from_document(obj)  # refuses what a profile may not contain
        assert proof is not None  # profiles are always verified first

        def listing_room(db: Database) -> str | None:
            known = directory.is_listed(db, author)
            return directory.listing_refusal(db, author, 0, known=known)

        size = len(json.dumps(obj, ensure_ascii=False).encode())
        await self._check_room("profile", size, limits.MAX_LISTING_BYTES, listing_room)
        held = await check_carried(self.actors, obj, proof.public_key)

        def keep_profile(db: Database) -> None:
            if directory.store_profile(db, obj, now, held, proof, key_seen):
                self.hooks.profile_stored(db, obj, via)

        return keep_profile

    def _revoke(self, delete: dict[str, Any], authority: str, via: str) -> Effect:
        """The effect of an authority's checked, signed revocation: remembered for good and
        handed on (hubs relay it, an endorsed school drops the endorsement)."""
        endorsement_id = revoked_endorsement(delete)
        assert endorsement_id is not None
        tombstone = delete.get("object")
        deleted = tombstone.get("deleted") if isinstance(tombstone, dict) else None
        when = deleted if isinstance(deleted, str) else self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")

        def revoke(db: Database) -> None:
            if endorsement_store.record_revocation(db, endorsement_id, authority, when, delete):
                self.hooks.endorsement_revoked(db, delete, via)

        return revoke

    async def _flag(self, activity: IncomingActivity, sender: Sender) -> Effect:
        await self._check_room(
            "Flag",
            len(json.dumps(activity.document, ensure_ascii=False).encode()),
            limits.MAX_REPORT_BYTES,
            partial(reports.report_refusal, actor=activity.actor),
        )
        now = self.clock().timestamp()
        return lambda db: reports.add_report(
            db, activity.id, activity.actor, activity.document, now
        )

    async def _check_room(
        self, what: str, size: int, max_size: int, refusal: Callable[[Database], str | None]
    ) -> None:
        """Refuse what is over `max_size` bytes (400), or finds its quota full (429)."""
        if size > max_size:
            raise Rejected(400, f"{what} is {size} bytes; this node keeps at most {max_size}")
        reason = await self.db(refusal)
        if reason is not None:
            raise Rejected(429, reason, retry_after=limits.QUOTA_RETRY_AFTER)

    async def authenticate_get(
        self,
        request: InboxRequest,
        limiter: RateLimiter | None = None,
        address_limiter: RateLimiter | None = None,
    ) -> Sender:
        """The verified signer of a signed GET (a match query), checked in the inbox's order:
        rate limit per source address (429), signature present (401), key not blocked
        (403), signature valid (401), rate limit per verified signing host (429). The
        limiters default to the inbox's own; Rejected says why a request is refused."""
        wait = (address_limiter or self.address_limiter).check(address_key(request.source))
        if wait:
            raise Rejected(429, "too many requests from this address", retry_after=wait)
        key_id = signing_key_id(request.headers)
        if await self.blocks.blocked(key_id, key_id.split("#", 1)[0]):
            raise Rejected(403, "blocked")
        sender = await self._authenticate(request, key_id)
        # Counted only once the signature holds, so no one can spend another's allowance.
        wait = (limiter or self.limiter).check(_safe_host(sender.key_id))
        if wait:
            raise Rejected(429, "too many requests from this host", retry_after=wait)
        return sender


def _safe_host(url: str) -> str:
    try:
        return host_of(url)
    except MalformedDocument:
        return url
