"""Endorsements as a node takes part in them: an authority issues and revokes them, a school
keeps the ones it is given and carries them in its profile, any node trusts authorities."""

from __future__ import annotations

import json
import uuid
from typing import Any

from ..federation import endorsement_store, relations
from ..protocol import activities
from ..protocol.endorsement import Endorsement, endorsement_document
from ..protocol.errors import MalformedDocument
from ..protocol.multikey import decode_ed25519_public
from ..protocol.proofs import assertion_methods, sign_document
from . import outbox
from .errors import NodeError
from .node import Node


def school_key(actor: dict[str, Any]) -> str:
    """The Ed25519 key (multibase) a school signs its profile with, from its actor."""
    for method in assertion_methods(actor):
        if (
            method.get("type") == "Multikey"
            and method.get("controller") == actor.get("id")
            and isinstance(method.get("publicKeyMultibase"), str)
        ):
            try:
                decode_ed25519_public(method["publicKeyMultibase"])
            except MalformedDocument:
                continue
            return str(method["publicKeyMultibase"])
    raise NodeError(f"{actor.get('id')} publishes no Ed25519 key to endorse")


def endorse(node: Node, school: dict[str, Any], expires: str | None) -> dict[str, Any]:
    """Issue a signed endorsement of `school` (its actor document, as fetched) and queue it
    to the school; returns the endorsement."""
    if node.config.kind != "authority":
        raise NodeError(f"this node is a {node.config.kind}; only authorities endorse schools")
    if school.get("nodeKind") != "school":
        raise NodeError(f"{school.get('id')} is not an Amity school")
    inbox = school.get("inbox")
    if not isinstance(inbox, str):
        raise NodeError(f"{school.get('id')} has no inbox")
    now = node.now()
    if expires is not None and expires <= now:
        raise NodeError(f"--expires {expires} is not in the future")
    urls = node.urls
    document = endorsement_document(
        f"{urls.id}/endorsements/{uuid.uuid4()}",
        authority=urls.id,
        school=school["id"],
        key_multibase=school_key(school),
        published=now,
        expires=expires,
    )
    signed = sign_document(document, node.keys.ed25519_seed, urls.ed25519_key_id, now)
    create = activities.create(outbox.new_activity_id(urls), urls.id, signed, [school["id"]], now)
    db = node.store.db
    with db.atomic():
        db.table("issued_endorsements").insert(
            {
                "id": signed["id"],
                "school": school["id"],
                "school_inbox": inbox,
                "issued": now,
                "expires": expires,
                "revoked_at": None,
                "document": json.dumps(signed),
            }
        )
        outbox.send(db, urls.handle, create, [inbox], now, node.clock().timestamp())
    return signed


def revoke(node: Node, school_id: str) -> list[str]:
    """Revoke every endorsement of `school_id` still in force: a signed Delete of each to
    the school, this authority's followers and the hubs it follows; returns their ids."""
    if node.config.kind != "authority":
        raise NodeError(f"this node is a {node.config.kind}; only authorities revoke")
    db = node.store.db
    rows = db.execute(
        "SELECT id, school_inbox FROM issued_endorsements WHERE school = ? AND revoked_at IS NULL",
        [school_id],
    ).fetchall()
    if not rows:
        raise NodeError(f"this authority holds no endorsement of {school_id} to revoke")
    urls = node.urls
    now = node.now()
    with db.atomic():
        audience = relations.follower_inboxes(db, urls.handle) + relations.followed_hub_inboxes(
            db, urls.handle
        )
        for endorsement_id, school_inbox in rows:
            delete = activities.delete(
                outbox.new_activity_id(urls),
                urls.id,
                endorsement_id,
                urls.followers,
                now,
                former_type="Endorsement",
            )
            signed = sign_document(delete, node.keys.ed25519_seed, urls.ed25519_key_id, now)
            db.execute(
                "UPDATE issued_endorsements SET revoked_at = ? WHERE id = ?", [now, endorsement_id]
            )
            endorsement_store.record_revocation(db, endorsement_id, urls.id, now, signed)
            outbox.send(
                db,
                urls.handle,
                signed,
                sorted({school_inbox, *audience}),
                now,
                node.clock().timestamp(),
            )
    return [row[0] for row in rows]


def issued(node: Node) -> list[dict[str, Any]]:
    """What this authority has issued, newest first."""
    rows = node.store.db.execute(
        "SELECT id, school, issued, expires, revoked_at FROM issued_endorsements "
        "ORDER BY issued DESC, id"
    ).fetchall()
    keys = ("id", "school", "issued", "expires", "revoked_at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def receive(node: Node, endorsement: Endorsement) -> bool:
    """Keep an authority's checked endorsement of this school; the liveness task carries it
    in the next profile version (published within seconds). False when it is not for this
    school and its key, or there is no room for it."""
    if node.kind != "school" or endorsement.school != node.urls.id:
        return False
    if endorsement.key != node.keys.ed25519_public:
        return False  # issued for a key this school no longer signs with
    db = node.store.db
    trusted = endorsement.authority in endorsement_store.trusted(db)
    return endorsement_store.add_held(db, endorsement, node.now(), room_for_trusted=trusted)


def trust(node: Node, authority: dict[str, Any]) -> bool:
    """Count `authority`'s endorsements here, and follow it so its revocations arrive as
    they happen; False if it was already trusted."""
    if authority.get("nodeKind") != "authority":
        raise NodeError(f"{authority.get('id')} is not an Amity authority")
    db = node.store.db
    with db.atomic():
        added = endorsement_store.trust(db, authority["id"], node.now())
        if node.following_state(authority["id"]) is None:
            node.follow(authority)
    return added
