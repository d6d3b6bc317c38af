"""What this node's account sends: activities built, recorded and queued in one transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlite_utils import Database

from ..federation import delivery_queue, relations
from ..protocol import activities
from ..protocol.actor import ActorUrls


def new_activity_id(urls: ActorUrls) -> str:
    return f"{urls.id}/activities/{uuid.uuid4()}"


def send(
    db: Database,
    handle: str,
    activity: dict[str, Any],
    inboxes: list[str],
    published: str,
    queued_at: float,
) -> None:
    """Record `activity` in the outbox and queue it to `inboxes` (call inside a transaction)."""
    delivery_queue.enqueue(db, handle, activity, inboxes, queued_at, published)


def send_to_followers(
    db: Database,
    urls: ActorUrls,
    activity: dict[str, Any],
    published: str,
    queued_at: float,
) -> None:
    send(
        db, urls.handle, activity, relations.follower_inboxes(db, urls.handle), published, queued_at
    )


def answer_follow(
    db: Database,
    urls: ActorUrls,
    follow: dict[str, Any],
    inbox: str,
    published: str,
    queued_at: float,
    *,
    accept: bool,
) -> None:
    """Queue an Accept (or a Reject) of `follow` to the follower's own inbox."""
    answer = activities.accept if accept else activities.reject
    send(
        db,
        urls.handle,
        answer(new_activity_id(urls), urls.id, follow),
        [inbox],
        published,
        queued_at,
    )


def update_object(
    db: Database,
    urls: ActorUrls,
    obj: dict[str, Any],
    published: str,
    queued_at: float,
    node_handle: str | None = None,
) -> None:
    """Tell every follower, and every hub this account or the node's first account
    (`node_handle`) follows, that `obj` changed."""
    activity = activities.update(new_activity_id(urls), urls.id, obj, urls.followers, published)
    inboxes = relations.follower_inboxes(db, urls.handle) + relations.followed_hub_inboxes(
        db, urls.handle, also=node_handle
    )
    send(db, urls.handle, activity, inboxes, published, queued_at)
