"""Moving an account to another node: the ActivityPub `Move`, as Mastodon sends it for an
account migration, and the actor fields that show it (`alsoKnownAs`, `movedTo`).

A Move's actor and object are the old actor, its target the new one; the new actor's
`alsoKnownAs` names the old one and the old actor's `movedTo` names the new one, so each
side confirms the other. Continuity of what the old actor signed comes from the key: it
moves with the account, so a proof made under the old actor id verifies with the key the
new actor publishes (`verify_as_alias`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .activities import MAX_ID_LENGTH, host_of
from .contexts import ACTIVITYSTREAMS
from .errors import MalformedDocument, UnknownKey
from .proofs import ProofInfo, find_assertion_key, read_proof, verify_document

MOVE_TYPE = "Move"
MAX_MOVE_BYTES = 4096  # a Move is a few URLs
MAX_ALIASES = 8  # entries of an actor's alsoKnownAs looked at
MAX_MOVE_CHAIN = 3  # moves one account may have made before this one (A -> B -> C -> D)


@dataclass(frozen=True)
class Move:
    """What a checked Move says: `old` moved to `new`."""

    id: str
    old: str
    new: str


def move_activity(
    activity_id: str, old: str, new: str, to: list[str], published: str
) -> dict[str, Any]:
    """The Move the old actor sends its followers and partners."""
    return {
        "@context": ACTIVITYSTREAMS,
        "id": activity_id,
        "type": MOVE_TYPE,
        "actor": old,
        "object": old,
        "target": new,
        "to": to,
        "published": published,
    }


def read_move(document: Any) -> Move:
    """The Move `document` describes; MalformedDocument naming what is wrong."""
    if not isinstance(document, dict) or document.get("type") != MOVE_TYPE:
        raise MalformedDocument("not a Move")
    activity_id, actor = document.get("id"), document.get("actor")
    obj, target = document.get("object"), document.get("target")
    if isinstance(obj, dict):
        obj = obj.get("id")
    if isinstance(target, dict):
        target = target.get("id")
    for field, value in (
        ("id", activity_id),
        ("actor", actor),
        ("object", obj),
        ("target", target),
    ):
        if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
            raise MalformedDocument(f"Move {field} must be a URL")
        host_of(value)
    assert isinstance(activity_id, str) and isinstance(actor, str) and isinstance(target, str)
    if obj != actor:
        raise MalformedDocument("a Move's object must be its actor: an account moves only itself")
    if target == actor:
        raise MalformedDocument("a Move's target must be another actor than the one moving")
    return Move(activity_id, actor, target)


def also_known_as(actor: Mapping[str, Any]) -> list[str]:
    """The actor ids `actor`'s alsoKnownAs names (one string or a list; the first
    MAX_ALIASES entries, what is not a URL skipped)."""
    value = actor.get("alsoKnownAs")
    entries = value if isinstance(value, list) else [value]
    found = []
    for entry in entries[:MAX_ALIASES]:
        if isinstance(entry, dict):
            entry = entry.get("id")
        if isinstance(entry, str) and len(entry) <= MAX_ID_LENGTH:
            try:
                host_of(entry)
            except MalformedDocument:
                continue
            found.append(entry)
    return found


def moved_to(actor: Mapping[str, Any]) -> str | None:
    """The actor `actor` says it moved to, if any."""
    value = actor.get("movedTo")
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
        return None
    try:
        host_of(value)
    except MalformedDocument:
        return None
    return value


def check_target(move: Move, target: Mapping[str, Any]) -> None:
    """Refuse a Move whose target's actor document (as fetched from its own host) is not
    the target, or does not name the moving actor in its alsoKnownAs."""
    if target.get("id") != move.new:
        raise MalformedDocument(f"the Move's target {move.new} answered as another actor")
    if move.old not in also_known_as(target):
        raise MalformedDocument(
            f"the Move's target {move.new} does not name {move.old} in its alsoKnownAs"
        )


def verify_as_alias(document: Mapping[str, Any], actor: Mapping[str, Any]) -> ProofInfo:
    """Verify `document`'s proof, made under one of `actor`'s former ids (named in its
    alsoKnownAs), with the key `actor` publishes now under the same fragment: the key
    moved with the account. UnknownKey when the proof's signer is not a former id."""
    proof = read_proof(dict(document))
    method = proof["verificationMethod"]
    signer, _, fragment = method.partition("#")
    if signer not in also_known_as(actor) or not fragment:
        raise UnknownKey(f"{signer} is not a former id of {actor.get('id')}")
    key = find_assertion_key(dict(actor), f"{actor.get('id')}#{fragment}")
    return verify_document(dict(document), key)
