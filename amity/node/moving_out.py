"""`amity school move`: the old node hands a school over to its new actor.

The new actor must name the old one in its alsoKnownAs (it was started from the school's
export). The account is marked moved (its actor answers with `movedTo` from then on, so
late peers can follow the trail), a Move signed by the old account goes to its followers
and partners, and the old listing is withdrawn (the new node publishes its own).
"""

from __future__ import annotations

from typing import Any

from ..federation import partnership_store as store
from ..federation import relations
from ..protocol.errors import ProtocolError
from ..protocol.move import also_known_as, move_activity
from ..protocol.partnership import OPEN_STATES
from ..protocol.proofs import find_assertion_key
from . import account_moves, outbox
from .errors import NodeError
from .node import Node


def check_can_move(node: Node, handle: str) -> Node:
    """The node acting for the school `handle`, if it can move (before any network work)."""
    school = node.for_school(handle)  # NodeError naming `amity school list` if unknown
    already = account_moves.moved_to(school.store.db, handle)
    if already is not None:
        raise NodeError(f"{handle} has moved to {already} already")
    if school.kind != "school":
        raise NodeError(f"{handle} is a {school.kind}; only schools move out")
    return school


def move_account(node: Node, handle: str, target: dict[str, Any]) -> dict[str, Any]:
    """Mark the school `handle` moved to `target` (its new actor document, fetched) and
    queue the Move; returns the Move. Refuses, changing nothing, what cannot be moved."""
    node = check_can_move(node, handle)
    db, urls = node.store.db, node.urls
    new = target.get("id")
    if not isinstance(new, str) or new == urls.id:
        raise NodeError("the new actor must be another actor than the school's own")
    if urls.id not in also_known_as(target):
        raise NodeError(
            f"{new} does not name {urls.id} in its alsoKnownAs; start the new node with "
            "amity init --from EXPORT (amity school export makes one)"
        )
    try:
        same_key = find_assertion_key(target, f"{new}#ed25519-key") == node.keys.ed25519_public
    except ProtocolError:
        same_key = False
    if not same_key:
        raise NodeError(
            f"{new} does not publish this school's key: the partnerships it signed would not "
            "carry over; start the new node from this school's export"
        )
    now, stamp = node.now(), node.clock().timestamp()
    move = move_activity(outbox.new_activity_id(urls), urls.id, new, [urls.followers], now)
    partners = [
        inbox
        for proposal in store.proposals(db, handle, OPEN_STATES)
        for inbox in proposal.inboxes.values()
    ]
    inboxes = sorted({*relations.follower_inboxes(db, handle), *partners})
    with db.atomic():
        account_moves.set_moved_to(db, handle, new)
        outbox.send(db, handle, move, inboxes, now, stamp)
    if node.profile() is not None:
        node.withdraw_profile()
    return move


def moved_view(node: Node, handle: str) -> Node | None:
    """A view acting for the hosted school `handle` that moved away, so its actor keeps
    answering (with `movedTo`); None when it did not move or its keys are gone."""
    if account_moves.moved_to(node.store.db, handle) is None or node.key_cache is None:
        return None
    try:
        keys = node.key_cache.get(handle)
    except NodeError:
        return None
    return node.view(handle, keys)
