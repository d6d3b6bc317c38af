"""Partnerships as a school (or an authority arranging pairs) takes part in them: propose,
answer, list, leave. Every change is one transaction with the activity it queues, so it
survives restarts and reaches a partner that is down for days (the delivery queue).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from ..federation import actor_cache, blocklist
from ..federation import partnership_store as store
from ..federation.partnership_store import Proposal
from ..protocol import partnership_activities as acts
from ..protocol.activities import host_of
from ..protocol.actor import ActorUrls
from ..protocol.errors import MalformedDocument, ProtocolError
from ..protocol.partnership import (
    STARTER_PROJECTS,
    add_proof,
    complete,
    expiry_of,
    partnership_document,
    working_languages,
)
from ..protocol.profile import display_name
from ..protocol.profile_document import profile_from_document
from ..protocol.proofs import verify_with_actor
from ..protocol.suggest import close_field
from . import outbox
from .charter import current_charter
from .clock import format_time, parse_time
from .errors import NodeError
from .node import Node
from .partnership_lists import describe, list_partnerships, list_proposals, undelivered

__all__ = [
    "accept",
    "active_partnerships",
    "arrange",
    "check_can_propose",
    "check_project",
    "decline",
    "describe",
    "known_partner",
    "leave",
    "list_partnerships",
    "list_proposals",
    "proposal_history",
    "propose",
    "undelivered",
]

proposal_history = store.proposal_history
active_partnerships = store.active_partnerships


def known_partner(node: Node, target: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The actor and profile this node already holds for `target` (an actor URL or
    NAME@HOST): its cached actor document and its directory listing, the listing's proof
    checked against that actor's key. Lets a school propose to one whose node is down."""
    db = node.store.db
    if "://" in target:
        cached = actor_cache.cached_actor(db, target)
    else:
        name, _, host = target.lstrip("@").rpartition("@")
        row = db.execute(
            "SELECT id FROM remote_actors WHERE host = ? "
            "AND json_extract(document, '$.preferredUsername') = ?",
            [host.lower(), name],
        ).fetchone()
        cached = actor_cache.cached_actor(db, row[0]) if row else None
    if cached is None:
        return None
    actor = cached[0]
    row = db.execute(
        "SELECT document FROM directory WHERE actor = ? AND deleted_at IS NULL", [actor["id"]]
    ).fetchone()
    if row is None:
        return None
    document = json.loads(row[0])
    try:
        verify_with_actor(document, actor)
        return actor, profile_from_document(document)
    except ProtocolError:
        return None


def check_project(name: str | None) -> str | None:
    """A starter project template name, or a NodeError listing them (with a guess)."""
    if name is None or name in STARTER_PROJECTS:
        return name
    guess = close_field(name, tuple(STARTER_PROJECTS))
    hint = f"; did you mean {guess!r}?" if guess else ""
    raise NodeError(
        f"--project {name!r} is not a starter project{hint} (one of: "
        + ", ".join(STARTER_PROJECTS)
        + ")"
    )


def _message(text: str | None) -> str | None:
    try:
        return acts.clean_message(text)
    except MalformedDocument as exc:
        raise NodeError(f"--message: {exc}") from exc


def _school_name(actor: dict[str, Any], profile: dict[str, Any]) -> str:
    return display_name(profile) if profile else str(actor.get("id"))


def _inbox(actor: dict[str, Any]) -> str:
    inbox = actor.get("inbox")
    if not isinstance(inbox, str):
        raise NodeError(f"{actor.get('id')} has no inbox")
    return inbox


def free_places(node: Node, handle: str) -> tuple[int, int]:
    """(capacity in the school's profile, places taken by partnerships and proposals)."""
    profile = node.store.profile(handle)
    capacity = int(profile.data.get("capacity", 0)) if profile else 0
    return capacity, store.places_taken(node.store.db, handle)


def _check_partner(
    node: Node, actor: dict[str, Any], profile: dict[str, Any], own: dict[str, Any]
) -> str:
    """Refuse a school this one cannot propose to; returns its name."""
    name = _school_name(actor, profile)
    if actor.get("nodeKind") != "school":
        raise NodeError(f"{actor.get('id')} is not an Amity school")
    if blocklist.is_blocked(node.store.db, actor["id"]):
        raise NodeError(f"{actor['id']} is blocked here; unblock it first")
    if own.get("country") == profile.get("country"):
        raise NodeError(
            f"{name} is in {profile.get('country')} too: partners are schools in other countries"
        )
    if int(profile.get("capacity", 0)) <= 0:
        raise NodeError(f"{name} takes no partners (its profile's capacity is 0)")
    return name


def check_can_propose(node: Node) -> None:
    """Refuse, before any network work, a node that cannot propose (not a school, or no
    profile yet)."""
    if node.kind != "school":
        raise NodeError(
            f"this node is a {node.kind}; schools propose partnerships "
            "(an authority arranges a pair with a pairing round)"
        )
    if node.profile() is None:
        raise NodeError("this school has no profile yet; amity profile import FILE first")


def propose(
    node: Node,
    partner: dict[str, Any],
    partner_profile: dict[str, Any],
    *,
    message: str | None = None,
    project: str | None = None,
) -> Proposal:
    """Sign a Partnership with `partner` (its actor and verified profile) and queue the
    Offer; refuses, changing nothing, whatever would make the proposal void."""
    check_can_propose(node)
    handle, urls, db = node.handle, node.urls, node.store.db
    own = node.profile()
    assert own is not None
    if partner.get("id") == urls.id:
        raise NodeError("a school cannot partner with itself")
    project = check_project(project)
    text = _message(message)
    name = _check_partner(node, partner, partner_profile, own.data)
    now, stamp = node.now(), node.clock().timestamp()
    store.expire_due(db, stamp)
    existing = store.open_between(db, handle, urls.id, partner["id"])
    if existing is not None:
        raise NodeError(
            f"a proposal with {name} is already {existing.state} (ID {existing.short}); "
            "amity proposals shows it"
        )
    capacity, taken = free_places(node, handle)
    if taken >= capacity:
        raise NodeError(
            f"this school has no free capacity ({taken} of {capacity} places taken by "
            "partnerships and proposals); raise capacity in the profile or leave one"
        )
    languages = working_languages(own.data, partner_profile)
    if not languages:
        raise NodeError(f"this school and {name} share no working language")
    document = partnership_document(
        f"{urls.id}/partnerships/{uuid.uuid4()}",
        proposer=urls.id,
        partners=(urls.id, partner["id"]),
        languages=languages,
        charter=current_charter(),
        published=now,
        starter_project=project,
        message=text,
    )
    signed = add_proof(document, node.keys.ed25519_seed, urls.ed25519_key_id, now)
    inbox = _inbox(partner)
    proposal = Proposal(
        handle=handle,
        id=signed["id"],
        short=store.short_id(signed["id"]),
        role="outgoing",
        proposer=urls.id,
        partner=partner["id"],
        partner_name=name,
        state="pending",
        signed=True,
        document=signed,
        offer_id=outbox.new_activity_id(urls),
        inboxes={partner["id"]: inbox},
        end_time=parse_time(expiry_of(now)).timestamp(),
        created_at=stamp,
        changed_at=stamp,
        reason=None,
    )
    _queue_offer(node, proposal, [partner["id"]])
    return proposal


def arrange(
    node: Node,
    first: tuple[dict[str, Any], dict[str, Any]],
    second: tuple[dict[str, Any], dict[str, Any]],
    *,
    message: str | None = None,
    project: str | None = None,
) -> Proposal:
    """An authority (or hub) proposes that two other schools (each its actor and verified
    profile) partner: it signs first, both accept as usual (used by pairing rounds)."""
    if node.config.kind not in ("authority", "hub"):
        raise NodeError("only an authority or a hub arranges a partnership of two schools")
    (a, a_profile), (b, b_profile) = first, second
    if a.get("id") == b.get("id"):
        raise NodeError("a pair needs two different schools")
    _check_partner(node, b, b_profile, a_profile)
    _check_partner(node, a, a_profile, b_profile)
    languages = working_languages(a_profile, b_profile)
    if not languages:
        raise NodeError("the two schools share no working language")
    urls, db = node.urls, node.store.db
    now, stamp = node.now(), node.clock().timestamp()
    store.expire_due(db, stamp)
    if store.open_between(db, urls.handle, a["id"], b["id"]) is not None:
        raise NodeError("this pair already has a proposal or partnership arranged here")
    document = partnership_document(
        f"{urls.id}/partnerships/{uuid.uuid4()}",
        proposer=urls.id,
        partners=(a["id"], b["id"]),
        languages=languages,
        charter=current_charter(),
        published=now,
        starter_project=check_project(project),
        message=_message(message),
    )
    signed = add_proof(document, node.keys.ed25519_seed, urls.ed25519_key_id, now)
    proposal = Proposal(
        handle=urls.handle,
        id=signed["id"],
        short=store.short_id(signed["id"]),
        role="arranged",
        proposer=urls.id,
        partner=a["id"],
        partner_name=f"{display_name(a_profile)} and {display_name(b_profile)}",
        state="pending",
        signed=True,
        document=signed,
        offer_id=outbox.new_activity_id(urls),
        inboxes={a["id"]: _inbox(a), b["id"]: _inbox(b)},
        end_time=parse_time(expiry_of(now)).timestamp(),
        created_at=stamp,
        changed_at=stamp,
        reason=None,
    )
    _queue_offer(node, proposal, [a["id"], b["id"]])
    return proposal


def _queue_offer(node: Node, proposal: Proposal, to: list[str]) -> None:
    db, now = node.store.db, node.now()
    offer = acts.offer(
        proposal.offer_id,
        proposal.proposer,
        proposal.document,
        to,
        now,
        expiry_of(proposal.document["published"]),
    )
    with db.atomic():
        store.insert(db, proposal, host_of(proposal.proposer))
        outbox.send(
            db,
            proposal.handle,
            offer,
            list(proposal.inboxes.values()),
            now,
            node.clock().timestamp(),
        )


def resolve(node: Node, typed: str) -> Proposal:
    """The proposal a person means by `typed` (a short ID, any unique prefix of it, or the
    full id); NodeError saying how to find the right one."""
    db = node.store.db
    store.expire_due(db, node.clock().timestamp())
    found = store.find(db, node.handle, typed)
    if not found:
        hint = f" (give at least {store.MIN_PREFIX} characters)" if len(typed) < 4 else ""
        raise NodeError(f"no proposal {typed!r} here{hint}; amity proposals lists them")
    if len(found) > 1:
        raise NodeError(f"{typed!r} matches {len(found)} proposals; give more of its ID")
    return found[0]


_STATE_WORDS = {
    "pending": "is waiting for the other school",
    "accepted": "is accepted already",
    "declined": "was declined",
    "expired": "has expired",
    "withdrawn": "was withdrawn",
    "left": "has ended (a school left it)",
}


def _was(proposal: Proposal) -> str:
    """The state of `proposal` in words, for a refusal."""
    return _STATE_WORDS.get(proposal.state, f"is {proposal.state}")


def _expired_line(proposal: Proposal) -> str:
    when = format_time(datetime.fromtimestamp(proposal.end_time, UTC))
    return f"proposal {proposal.short} expired at {when} (14 days unanswered)"


def accept(node: Node, typed: str) -> Proposal:
    """Accept an incoming proposal: this school's proof joins the set, and the Accept
    carrying the partnership goes to the other parties."""
    proposal = resolve(node, typed)
    if proposal.role != "incoming":
        raise NodeError(f"proposal {proposal.short} was made here; the other school accepts it")
    if proposal.state == "expired":
        raise NodeError(_expired_line(proposal))
    if proposal.state != "pending" or proposal.signed:
        raise NodeError(f"proposal {proposal.short} {_was(proposal)}; nothing to accept")
    db = node.store.db
    if blocklist.is_blocked(db, proposal.proposer, proposal.partner):
        raise NodeError(f"{proposal.proposer} is blocked here; unblock it first")
    capacity, taken = free_places(node, proposal.handle)
    if taken >= capacity:
        raise NodeError(
            f"this school has no free capacity ({taken} of {capacity} places taken); "
            "raise capacity in the profile or leave a partnership first"
        )
    urls, now = node.urls, node.now()
    signed = add_proof(proposal.document, node.keys.ed25519_seed, urls.ed25519_key_id, now)
    ref = acts.offer_ref(proposal.offer_id, proposal.proposer, proposal.id)
    activity = acts.accept(
        outbox.new_activity_id(urls), urls.id, ref, signed, list(proposal.inboxes), now
    )
    state = "accepted" if complete(signed) else "pending"
    _change(node, proposal, state, activity, document=signed, signed=True)
    return store.get(db, proposal.handle, proposal.id) or proposal


def decline(node: Node, typed: str, reason: str | None = None) -> Proposal:
    """Decline an incoming proposal; the Reject (with `reason`) goes to the other parties."""
    proposal = resolve(node, typed)
    if proposal.role != "incoming":
        raise NodeError(
            f"proposal {proposal.short} was made here; "
            f"withdraw it with amity leave {proposal.short}"
        )
    if proposal.state == "expired":
        raise NodeError(_expired_line(proposal))
    if proposal.state != "pending":
        raise NodeError(f"proposal {proposal.short} {_was(proposal)}; nothing to decline")
    try:
        text = acts.clean_reason(reason)
    except MalformedDocument as exc:
        raise NodeError(f"--reason: {exc}") from exc
    urls, now = node.urls, node.now()
    ref = acts.offer_ref(proposal.offer_id, proposal.proposer, proposal.id)
    activity = acts.reject(
        outbox.new_activity_id(urls), urls.id, ref, list(proposal.inboxes), now, text
    )
    _change(node, proposal, "declined", activity, reason=text or "declined")
    return store.get(node.store.db, proposal.handle, proposal.id) or proposal


def leave(node: Node, typed: str) -> Proposal:
    """End a partnership in force, or withdraw a proposal made here: a Leave goes to the
    other parties, who end it too."""
    proposal = resolve(node, typed)
    if proposal.state == "accepted":
        state = "left"
    elif proposal.state == "pending" and proposal.signed:
        state = "withdrawn"  # made here, or accepted here while the other has not yet
    elif proposal.state == "pending":
        raise NodeError(
            f"proposal {proposal.short} waits for this school's answer: "
            f"amity accept {proposal.short} or amity decline {proposal.short}"
        )
    else:
        raise NodeError(f"proposal {proposal.short} {_was(proposal)}; nothing to leave")
    urls, now = node.urls, node.now()
    activity = acts.leave(
        outbox.new_activity_id(urls), urls.id, proposal.id, list(proposal.inboxes), now
    )
    _change(node, proposal, state, activity, reason="left here" if state == "left" else None)
    return store.get(node.store.db, proposal.handle, proposal.id) or proposal


def _change(
    node: Node,
    proposal: Proposal,
    state: str,
    activity: dict[str, Any],
    *,
    document: dict[str, Any] | None = None,
    signed: bool | None = None,
    reason: str | None = None,
) -> None:
    db: Database = node.store.db
    stamp = node.clock().timestamp()
    with db.atomic():
        store.set_state(db, proposal, state, stamp, reason=reason, document=document, signed=signed)
        outbox.send(
            db, proposal.handle, activity, list(proposal.inboxes.values()), node.now(), stamp
        )


def end_overbooked(node: Node, handle: str, partnership_id: str) -> None:
    """End at once a partnership a late Accept completed when the school had no free
    place left (called inside the inbox's transaction): a Leave goes to the others."""
    db = node.store.db
    proposal = store.get(db, handle, partnership_id)
    if proposal is None or proposal.state != "accepted":
        return
    urls = ActorUrls(node.config.base_url, handle)
    activity = acts.leave(
        outbox.new_activity_id(urls), urls.id, proposal.id, list(proposal.inboxes), node.now()
    )
    _change(node, proposal, "left", activity, reason="no free place when the late answer came")
