"""The operator's answer to Follows the follow policy held: list, approve, reject."""

from __future__ import annotations

from ..federation import follows, relations
from ..federation.follows import FollowLimits, FollowRequest
from . import outbox
from .errors import NodeError
from .node import Node


def limits(node: Node) -> FollowLimits:
    return FollowLimits(followers_per_host=node.config.followers_per_host)


def pending(node: Node) -> list[FollowRequest]:
    """The requests waiting for this node's account, oldest first (expired ones left out)."""
    since = node.clock().timestamp() - limits(node).pending_seconds
    return follows.pending_requests(node.store.db, node.handle, since)


def find(node: Node, target: str) -> FollowRequest:
    """The pending request of `target`: an actor URL, or NAME@HOST as listed (the actor's
    preferredUsername and host; no network needed); NodeError when there is none."""
    requests = pending(node)
    if "://" in target:
        found = [r for r in requests if r.actor == target]
    else:
        name, _, host = target.lstrip("@").partition("@")
        found = [
            r
            for r in requests
            if host and r.host == host.lower() and r.name.casefold() == name.casefold()
        ]
    if not found:
        raise NodeError(
            f"no pending follow request from {target} (amity followers --pending lists them)"
        )
    if len(found) > 1:
        raise NodeError(
            f"{target} names {len(found)} pending requests ({', '.join(r.actor for r in found)});"
            " give the actor URL"
        )
    return found[0]


def approve(node: Node, target: str) -> FollowRequest:
    """Make the requester a follower and queue the Accept, within its host's caps."""
    request = find(node, target)
    db = node.store.db
    urls = node.urls
    with db.atomic():
        try:
            follows.check_caps(db, urls.handle, request.actor, request.inbox, limits(node))
        except follows.FollowRefused as exc:
            hint = ""
            if exc.limit == "followers_per_host":
                hint = " (raise followers_per_host in amity.toml's [federation] to allow more)"
            raise NodeError(f"cannot approve {request.actor}: {exc}{hint}") from exc
        relations.add_follower(
            db, urls.handle, request.actor, request.inbox, str(request.follow["id"]), node.now()
        )
        _answer(node, request, accept=True)
    return request


def reject(node: Node, target: str) -> FollowRequest:
    """Drop the request and queue a Reject, so the requester knows."""
    request = find(node, target)
    with node.store.db.atomic():
        _answer(node, request, accept=False)
    return request


def _answer(node: Node, request: FollowRequest, *, accept: bool) -> None:
    """The request leaves the pending list and its Accept or Reject is queued."""
    follows.drop_request(node.store.db, node.urls.handle, request.actor)
    outbox.answer_follow(
        node.store.db,
        node.urls,
        request.follow,
        request.personal_inbox,
        node.now(),
        node.clock().timestamp(),
        accept=accept,
    )
