"""The inbox's partnership handlers: Offer, Accept and Reject of an Offer, Leave.

Each checks what needs the network first (the proposer's proof against its actor's key,
the schools' profiles), then returns an effect that re-checks the quotas and the life
cycle inside the inbox's transaction. Refusals are 4xx with a reason and change nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from sqlite_utils import Database

from ..protocol.activities import IncomingActivity, host_of
from ..protocol.errors import BadSignature, MalformedDocument, UnknownKey
from ..protocol.httpsig import MAX_CLOCK_SKEW
from ..protocol.partnership import (
    Partnership,
    complete,
    merge_proofs,
    offer_end_time,
    parse_time,
    proof_created,
    proof_set,
    proof_signers,
    read_partnership,
    signer_of,
    unsecured,
)
from ..protocol.partnership_activities import (
    MAX_OFFER_BYTES,
    MAX_REASON,
    answered_partnership,
    answers_offer,
)
from ..protocol.profile import display_name
from ..protocol.proofs import verify_with_actor
from ..protocol.text import clean_text
from . import blocklist
from . import partnership_store as store
from .actors import RemoteActors
from .inbox_types import InboxHooks, Rejected, Sender
from .partnership_store import Proposal
from .runner import DbRunner
from .school_profiles import fetch_school_profile

Effect = Callable[[Database], object]
Handler = Callable[[IncomingActivity, Sender], Awaitable[Effect | None]]


def free_places(db: Database, hooks: InboxHooks, handle: str) -> int:
    """The school's capacity (from its profile) minus the places it has taken."""
    profile = hooks.school_profile(db, handle)
    capacity = int(profile.get("capacity", 0)) if profile else 0
    return capacity - store.places_taken(db, handle)


class PartnershipInbox:
    """Applies the partnership activities addressed to this node's schools."""

    def __init__(
        self,
        db: DbRunner,
        actors: RemoteActors,
        *,
        local_actors: Mapping[str, str],
        clock: Callable[[], datetime],
        hooks: InboxHooks,
    ) -> None:
        self.db = db
        self.actors = actors
        self.local_actors = local_actors  # actor id -> handle
        self.clock = clock
        self.hooks = hooks

    async def _verify_own_proof(self, doc: dict[str, Any], sender: Sender, actor: str) -> None:
        """`actor`'s proof on `doc` verifies with its published key (fetched again once,
        should it have rotated); 401 otherwise."""
        base = unsecured(doc)
        proof = next((p for p in proof_set(doc) if signer_of(p) == actor), None)
        if proof is None:
            raise Rejected(401, f"the partnership carries no proof by {actor}")
        signed = {**base, "proof": proof}
        try:
            verify_with_actor(signed, sender.actor_document)
        except (BadSignature, UnknownKey):
            try:
                verify_with_actor(signed, await self.actors.get(actor, refresh=True))
            except (BadSignature, UnknownKey) as exc:
                raise Rejected(401, f"the proof of {actor} does not verify: {exc}") from exc

    async def offer(self, activity: IncomingActivity, sender: Sender) -> Effect:
        """A proposal to one (or both) of this node's schools: kept as pending."""
        size = len(json.dumps(activity.document, ensure_ascii=False).encode())
        if size > MAX_OFFER_BYTES:
            raise Rejected(400, f"Offer is {size} bytes; this node takes at most {MAX_OFFER_BYTES}")
        partnership = read_partnership(activity.object)
        if partnership.proposer != activity.actor:
            raise MalformedDocument("an Offer's partnership must be attributed to its actor")
        if proof_signers(partnership.document) != {partnership.proposer}:
            raise MalformedDocument("a new proposal carries its proposer's proof only")
        handles = [
            self.local_actors[p]
            for p in partnership.partners
            if p in self.local_actors and p != partnership.proposer
        ]
        if not handles:
            raise MalformedDocument("the partnership names no school of this node")
        now = self.clock()
        end = offer_end_time(activity.document, partnership.published, now)
        host = host_of(activity.actor)
        refusal = await self.db(
            partial(store.quota_refusal, proposer=activity.actor, host=host, handles=handles)
        )
        if refusal is not None:
            raise Rejected(429, refusal, retry_after=3600.0)
        await self._verify_own_proof(partnership.document, sender, activity.actor)
        if partnership.arranged and sender.actor_document.get("nodeKind") not in (
            "authority",
            "hub",
        ):
            raise Rejected(403, "only an authority or a hub proposes a pair of other schools")
        inboxes = {activity.actor: _inbox_of(sender.actor_document)}
        profiles: dict[str, dict[str, Any]] = {}
        for school in partnership.partners:
            if school in self.local_actors:
                continue
            actor = (
                sender.actor_document if school == activity.actor else await self.actors.get(school)
            )
            if actor.get("nodeKind") != "school":
                raise Rejected(403, f"{school} is not an Amity school")
            inboxes[school] = _inbox_of(actor)
            profiles[school] = await fetch_school_profile(
                lambda url: self.actors.fetch(url, cache=False), actor
            )
        end_at = parse_time(end).timestamp()
        stamp = now.timestamp()

        def effect(db: Database) -> None:
            store.expire_due(db, stamp)
            reason = store.quota_refusal(db, activity.actor, host, handles)
            if reason is not None:
                raise Rejected(429, reason, retry_after=3600.0)
            for handle in handles:
                own = self.hooks.school_profile(db, handle)
                if own is None:
                    raise Rejected(403, "this school has no profile; it takes no proposals")
                school = next(p for p in partnership.partners if self.local_actors.get(p) == handle)
                other = partnership.other_partner(school)
                other_profile = profiles.get(other) or self.hooks.school_profile(
                    db, self.local_actors.get(other, "")
                )
                if blocklist.is_blocked(db, other):
                    raise Rejected(403, f"{other} is blocked here")
                country = own.get("country")
                if other_profile is not None and other_profile.get("country") == country:
                    raise Rejected(403, f"both schools are in {country}: partners are abroad")
                if free_places(db, self.hooks, handle) <= 0:
                    raise Rejected(403, "this school has no free capacity for a partnership")
                if store.get(db, handle, partnership.id) is not None:
                    raise Rejected(409, "this proposal was received before")
                if store.open_between(db, handle, *partnership.partners) is not None:
                    raise Rejected(409, "a proposal or partnership between them already exists")
                store.insert(
                    db,
                    Proposal(
                        handle=handle,
                        id=partnership.id,
                        short=store.short_id(partnership.id),
                        role="incoming",
                        proposer=partnership.proposer,
                        partner=other,
                        partner_name=display_name(other_profile) if other_profile else other,
                        state="pending",
                        signed=False,
                        document=partnership.document,
                        offer_id=activity.id,
                        inboxes={a: i for a, i in inboxes.items() if a != school},
                        end_time=end_at,
                        created_at=stamp,
                        changed_at=stamp,
                        reason=None,
                    ),
                    host,
                )

        return effect

    async def _held(self, partnership_id: str, actor: str) -> list[tuple[Proposal, Partnership]]:
        """This node's rows of the partnership `actor` is a party to (and not itself)."""
        rows = await self.db(partial(store.holders, partnership_id=partnership_id))
        held = []
        for row in rows:
            partnership = read_partnership(row.document)
            if actor in partnership.required_signers and self.local_actors.get(actor) != row.handle:
                held.append((row, partnership))
        if not held:
            raise Rejected(409, f"no proposal {partnership_id} of {actor} is held here")
        return held

    async def accept(self, activity: IncomingActivity, sender: Sender) -> Effect:
        """A school accepted: its proof joins the set; once every party has signed, the
        partnership is in force on this side too."""
        size = len(json.dumps(activity.document, ensure_ascii=False).encode())
        if size > MAX_OFFER_BYTES:
            raise Rejected(
                400, f"Accept is {size} bytes; this node takes at most {MAX_OFFER_BYTES}"
            )
        partnership_id = answered_partnership(activity.document)
        result = activity.document.get("result")
        accepted = read_partnership(result)
        if accepted.id != partnership_id:
            raise MalformedDocument("the Accept's result is another partnership")
        held = await self._held(partnership_id, activity.actor)
        if activity.actor not in accepted.partners:
            raise MalformedDocument("only a school of the partnership accepts it")
        await self._verify_own_proof(accepted.document, sender, activity.actor)
        for row, _ in held:
            if unsecured(row.document) != unsecured(accepted.document):
                raise MalformedDocument("the accepted partnership differs from the one proposed")
        own = [p for p in proof_set(accepted.document) if signer_of(p) == activity.actor]
        created = proof_created(accepted.document, activity.actor) or ""
        stamp = self.clock().timestamp()
        if created and _later(created, stamp + MAX_CLOCK_SKEW.total_seconds()):
            # A proof dated ahead could claim an answer "made in time" for ever.
            raise MalformedDocument("the Accept's proof is dated in the future")

        def effect(db: Database) -> None:
            store.expire_due(db, stamp)
            for row, _ in held:
                current = store.get(db, row.handle, row.id)
                if current is None or current.state not in ("pending", "expired"):
                    continue  # already in force, or ended: a repeat changes nothing
                if current.state == "expired" and (
                    _later(created, current.end_time)
                    or stamp > current.end_time + LATE_ACCEPT_GRACE
                ):
                    continue  # accepted too late, or its Accept came too long after
                merged = merge_proofs(
                    current.document, {**unsecured(accepted.document), "proof": own}
                )
                state = "accepted" if complete(merged) else current.state
                # Its place was given up when it expired; it may have been taken since.
                overbooked = (
                    current.role != "arranged"  # an arranging authority holds no places
                    and current.state == "expired"
                    and state == "accepted"
                    and free_places(db, self.hooks, row.handle) <= 0
                )
                store.set_state(db, current, state, stamp, document=merged)
                if overbooked:
                    self.hooks.partnership_overbooked(db, row.handle, row.id)

        return effect

    async def reject(self, activity: IncomingActivity, sender: Sender) -> Effect:
        """A party declined: the proposal is declined on this side too."""
        partnership_id = answered_partnership(activity.document)
        held = await self._held(partnership_id, activity.actor)
        content = activity.document.get("content")
        reason = None
        if isinstance(content, str):  # kept shortened, never refused for its length
            reason = clean_text(content[: 4 * MAX_REASON], multiline=True).strip()[:MAX_REASON]
        stamp = self.clock().timestamp()

        def effect(db: Database) -> None:
            store.expire_due(db, stamp)
            for row, _ in held:
                current = store.get(db, row.handle, row.id)
                if current is not None and current.state == "pending":
                    store.set_state(db, current, "declined", stamp, reason=reason or "declined")

        return effect

    async def leave(self, activity: IncomingActivity, sender: Sender) -> Effect:
        """A party left: a partnership in force ends, a pending proposal is withdrawn."""
        partnership_id = activity.object_id
        if partnership_id is None:
            raise MalformedDocument("Leave names no partnership")
        held = await self._held(partnership_id, activity.actor)
        stamp = self.clock().timestamp()

        def effect(db: Database) -> None:
            for row, _ in held:
                current = store.get(db, row.handle, row.id)
                if current is None:
                    continue
                if current.state == "accepted":
                    store.set_state(db, current, "left", stamp, reason=f"{activity.actor} left")
                elif current.state == "pending":
                    store.set_state(
                        db, current, "withdrawn", stamp, reason=f"{activity.actor} withdrew"
                    )

        return effect


# An Accept made in time may arrive after the Offer's endTime while the proposer's node
# is down: the sender retries for about 3 days (federation/backoff.py); later it is void.
LATE_ACCEPT_GRACE = 4 * 86400.0


def _later(created: str, end_time: float) -> bool:
    try:
        return parse_time(created).timestamp() > end_time
    except MalformedDocument:
        return True


def _inbox_of(actor: dict[str, Any]) -> str:
    inbox = actor.get("inbox")
    if not isinstance(inbox, str):
        raise MalformedDocument(f"{actor.get('id')} has no inbox")
    host_of(inbox)
    return inbox


def route(handlers: dict[str, Handler], partnerships: PartnershipInbox) -> None:
    """Add the partnership handlers to an inbox's dispatch table: Offer and Leave, and
    Accept and Reject when they answer an Offer (the others still answer Follows)."""
    follow_accept, follow_reject = handlers["Accept"], handlers["Reject"]

    async def accept(activity: IncomingActivity, sender: Sender) -> Effect | None:
        if answers_offer(activity.document):
            return await partnerships.accept(activity, sender)
        return await follow_accept(activity, sender)

    async def reject(activity: IncomingActivity, sender: Sender) -> Effect | None:
        if answers_offer(activity.document):
            return await partnerships.reject(activity, sender)
        return await follow_reject(activity, sender)

    handlers.update(
        {
            "Offer": partnerships.offer,
            "Accept": accept,
            "Reject": reject,
            "Leave": partnerships.leave,
        }
    )
