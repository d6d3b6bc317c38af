"""Hosting schools: adding a school account to a node and removing one again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..federation import delivery_queue, partnership_store
from ..federation.signer import Signer
from ..protocol.actor import ActorUrls
from ..protocol.discovery import HANDLE_PATTERN
from ..protocol.profile import validate_profile
from ..protocol.school_row_checks import HANDLE_RULE, free_handle, suggest_handle
from .clock import format_time, read_time
from .errors import NodeError
from .keys import (
    REMOVED_DIR,
    ActorKeys,
    generate_keys,
    key_paths,
    keys_stamp,
    load_keys,
    retire_keys,
    save_keys,
)
from .school_accounts import ACTIVE, account_row, account_state, check_school
from .school_accounts import REMOVED as REMOVED_ACCOUNT
from .school_accounts import UNKNOWN as UNKNOWN_ACCOUNT

if TYPE_CHECKING:
    from .node import Node

# A removed school's actor is served, with its keys, while the withdrawal it queued is on
# its way, and never longer than this after the removal (then 410).
REMOVED_GRACE = 30 * 86400.0


def check_new_handle(node: Node, handle: str) -> str:
    """`handle` when a new school may take it; NodeError saying why not."""
    if not HANDLE_PATTERN.match(handle):
        meant = suggest_handle(handle)
        hint = ""
        if meant and not _taken(node, meant):
            hint = f"; did you mean {meant!r}?"
        elif meant:  # `Uhuru` when `uhuru` is taken: suggest a free one like it
            hint = f"; {meant!r} is taken already: did you mean {_free_handle(node, meant)!r}?"
        raise NodeError(f"school handle {handle!r}: use {HANDLE_RULE}{hint}")
    state = account_state(node.store.db, handle)
    if state != UNKNOWN_ACCOUNT or node.store.actor(handle):
        free = _free_handle(node, handle)
        if state == REMOVED_ACCOUNT:
            raise NodeError(
                f"{handle!r} was already used by a school removed from this node, and a "
                "handle is never given to another school (its old actor answers 410 Gone); "
                f"choose another, such as {free!r}"
            )
        if handle == node.config.handle:
            raise NodeError(
                f"{handle!r} is already this node's first account; choose another, such as {free!r}"
            )
        raise NodeError(
            f"{handle!r} is already an account on this node (see amity school list); "
            f"choose another, such as {free!r}"
        )
    if any(path.exists() for path in key_paths(node.config.keys_dir, handle)):
        raise NodeError(f"key files for {handle!r} already exist under {node.config.keys_dir}")
    return handle


def _taken(node: Node, handle: str) -> bool:
    return account_state(node.store.db, handle) != UNKNOWN_ACCOUNT or bool(node.store.actor(handle))


def _free_handle(node: Node, handle: str) -> str:
    """`handle-2`, `handle-3`, ...: the first no account of this node has or had."""
    tried: set[str] = set()
    while True:
        candidate = free_handle(handle, tried)
        if not _taken(node, candidate):
            return candidate
        tried.add(candidate)


def add_school(
    node: Node, handle: str, profile: dict[str, Any], keys: ActorKeys | None = None
) -> Node:
    """Create the school account `handle` with its own keys (new ones if None), sign and
    publish its profile (queued to the hubs the node follows); nothing is left on failure.
    Returns the Node acting for it."""

    check_new_handle(node, handle)
    data = validate_profile(profile)
    keys = keys or generate_keys()
    db = node.store.db
    save_keys(node.config.keys_dir, handle, keys)
    assert node.key_cache is not None
    try:
        with db.atomic():
            node.store.add_actor(handle, "school", format_time(node.clock()))
            school = node.view(handle, keys)
            school.publish_profile(data)
    except BaseException:
        for path in key_paths(node.config.keys_dir, handle):
            path.unlink(missing_ok=True)
        raise
    node.key_cache.put(handle, keys, keys_stamp(node.config.keys_dir, handle))
    return school


def remove_school(node: Node, handle: str) -> None:
    """Withdraw the hosted school `handle` everywhere (a signed Delete of its profile to its
    followers and the hubs), mark it removed and move its keys to keys/removed/. Refuses the
    node's first account and a school with a partnership in force."""
    if handle == node.config.handle:
        raise NodeError(
            f"{handle!r} is this node's first account; it cannot be removed "
            "(`amity profile delete` withdraws its profile)"
        )
    check_school(node.store.db, handle)
    school = node.for_school(handle)
    db = node.store.db
    in_force = partnership_store.active_partnerships(db, handle)
    if in_force:
        raise NodeError(
            f"school {handle!r} has {in_force} partnership(s) in force; end each with "
            f"`amity leave ID --school {handle}` (`amity partnerships --school {handle}` "
            "lists them), then remove it"
        )
    with db.atomic():
        _end_open_proposals(school)
        if school.profile() is not None:
            school.withdraw_profile()
        db.execute("UPDATE accounts SET removed_at = ? WHERE handle = ?", [school.now(), handle])
        # Nobody follows or is followed by a school that is gone; its open proposals end.
        db.execute("DELETE FROM followers WHERE handle = ?", [handle])
        db.execute("DELETE FROM follow_requests WHERE handle = ?", [handle])
        db.execute("DELETE FROM following WHERE handle = ?", [handle])
    retire_keys(node.config.keys_dir, handle)
    assert node.key_cache is not None
    node.key_cache.forget(handle)


def _end_open_proposals(school: Node) -> None:
    """Withdraw what the leaving school proposed or accepted, decline what waits for its
    answer: no partnership may come into force with a school that is gone."""
    from . import partnerships

    for proposal in partnership_store.proposals(school.store.db, school.handle, ("pending",)):
        if proposal.role == "arranged":
            continue
        if proposal.signed:
            partnerships.leave(school, proposal.id)
        else:
            partnerships.decline(school, proposal.id, "this school left its node")


def signer_for(node: Node, handle: str) -> Signer:
    """The keys account `handle` signs its deliveries with, from the key cache, without a
    query (the delivery worker asks on the event loop). A removed school's queued
    withdrawal is still signed with its own keys, kept in keys/removed/."""
    assert node.key_cache is not None
    if handle == node.handle:
        return node.signer()
    try:
        keys = node.key_cache.get(handle)
    except NodeError:
        keys = load_keys(node.config.keys_dir / REMOVED_DIR, handle)
    urls = ActorUrls(node.config.base_url, handle)
    return Signer(urls.rsa_key_id, keys.rsa_private, urls.ed25519_key_id, keys.ed25519_private)


def removed_view(node: Node, handle: str) -> Node | None:
    """A view acting for the removed school `handle` while deliveries it queued (its signed
    Delete, its Leaves and Rejects) are still pending, at most REMOVED_GRACE after the
    removal: its actor keeps answering, with its keys and `removed`, so a receiver that
    never cached its key can verify them. None otherwise (the actor answers 410)."""

    db = node.store.db
    row = account_row(db, handle)
    if row is None or row["removed_at"] is None or node.key_cache is None:
        return None
    removed = read_time(row["removed_at"])
    if removed is None or node.clock().timestamp() - removed.timestamp() > REMOVED_GRACE:
        return None
    if not delivery_queue.has_pending(db, handle):
        return None
    try:
        keys = load_keys(node.config.keys_dir / REMOVED_DIR, handle)
    except NodeError:
        return None  # the operator moved them away: no actor to show
    return node.view(handle, keys)


def served_school(node: Node, handle: str) -> tuple[str, Node | None]:
    """(state, view) of the account `handle` as the served app shows it: a view only for
    an active account whose keys are there (keys gone, as when another process removed
    it a moment ago, count as no such actor)."""
    if handle == node.config.handle:
        return ACTIVE, node
    state = account_state(node.store.db, handle)
    if state != ACTIVE:
        return state, None
    try:
        return state, node.for_school(handle)
    except NodeError:
        return UNKNOWN_ACCOUNT, None
