"""Who may follow this node's accounts, and through which inboxes.

Three rules keep one update from turning into a flood of POSTs: a follower's inboxes are on
its actor's own host (so a Follow cannot point deliveries at a third party), one host
reaches an account through a few distinct inboxes at most, and one host has a bounded
number of followers. On top, the node's follow policy says which Follows wait for the
operator; those wait in `follow_requests`, bounded per host and in all, and expire.
Every row is keyed by the local account's handle.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from ..protocol.activities import host_of
from ..protocol.actor import ACTOR_TYPES as AMITY_ACTOR_TYPES
from ..protocol.errors import MalformedDocument

POLICIES = ("accept-all", "amity", "approve-all")
DEFAULT_POLICY = "amity"
MAX_URL_LENGTH = 2048
NAME_PATTERN = re.compile(r"[\w.-]{1,64}")


@dataclass(frozen=True)
class FollowLimits:
    """Caps per local account (docs/protocol.md, section 13)."""

    followers_per_host: int = 1000
    inboxes_per_host: int = 4
    pending_per_host: int = 20
    pending_total: int = 500
    pending_seconds: float = 30 * 86400.0


class FollowRefused(Exception):
    """The Follow cannot be taken (or approved) under the caps; the reason says which,
    `limit` names the cap (a FollowLimits field)."""

    def __init__(self, reason: str, limit: str) -> None:
        super().__init__(reason)
        self.limit = limit


@dataclass(frozen=True)
class FollowerInboxes:
    """Where a follower is reached: `inbox` for what the account publishes (its shared
    inbox when it has one on its own host), `personal` for the Accept or Reject."""

    inbox: str
    personal: str


@dataclass(frozen=True)
class FollowRequest:
    """A Follow waiting for the operator's approval."""

    handle: str
    actor: str
    name: str
    inbox: str
    personal_inbox: str
    follow: dict[str, Any]
    received_at: float

    @property
    def host(self) -> str:
        return host_of(self.actor)

    @property
    def address(self) -> str:
        """NAME@HOST, as the operator may type it."""
        return f"{self.name}@{self.host}" if self.name else self.actor


def follower_inboxes(actor: dict[str, Any]) -> FollowerInboxes:
    """The inboxes of a would-be follower; MalformedDocument when its own inbox is missing
    or on another host. A shared inbox on another host is ignored: the personal one is
    used instead, so a Follow never sends anything to a host that did not ask."""
    actor_id = str(actor.get("id"))
    host = host_of(actor_id)
    personal = actor.get("inbox")
    if not isinstance(personal, str):
        raise MalformedDocument("follower has no inbox")
    if len(personal) > MAX_URL_LENGTH or host_of(personal) != host:
        raise MalformedDocument(f"the follower's inbox must be on its own host {host}")
    endpoints = actor.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    if isinstance(shared, str) and len(shared) <= MAX_URL_LENGTH and host_or_none(shared) == host:
        return FollowerInboxes(shared, personal)
    return FollowerInboxes(personal, personal)


def claims_amity(actor: dict[str, Any]) -> bool:
    """Whether the actor says it is an Amity node: `nodeKind` one of the kinds, with the
    `type` Amity gives that kind. Anyone can write this; the per-host caps still apply."""
    kind = actor.get("nodeKind")
    return isinstance(kind, str) and AMITY_ACTOR_TYPES.get(kind) == actor.get("type")


def needs_approval(policy: str, actor: dict[str, Any]) -> bool:
    if policy == "accept-all":
        return False
    if policy == "amity":
        return not claims_amity(actor)
    return True


def minimal_follow(activity: dict[str, Any]) -> dict[str, Any]:
    """What an Accept or Reject needs of a held Follow, without the rest of its body."""
    return {k: activity[k] for k in ("@context", "id", "type", "actor", "object") if k in activity}


def is_follower(db: Database, handle: str, actor: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM followers WHERE handle = ? AND actor = ?", [handle, actor]
    ).fetchone()
    return row is not None


def check_caps(db: Database, handle: str, actor: str, inbox: str, limits: FollowLimits) -> None:
    """FollowRefused when `actor` becoming a follower through `inbox` would pass a cap of
    its host (its own row, if it already follows, does not count)."""
    host = host_of(actor)
    count, inboxes, has_inbox = db.execute(
        "SELECT count(*), count(DISTINCT inbox), coalesce(max(inbox = ?), 0) FROM followers "
        "WHERE handle = ? AND host = ? AND actor != ?",
        [inbox, handle, host, actor],
    ).fetchone()
    if count >= limits.followers_per_host:
        raise FollowRefused(
            f"{host} already has {count} followers of this account, the most one host may have",
            "followers_per_host",
        )
    if not has_inbox and inboxes >= limits.inboxes_per_host:
        raise FollowRefused(
            f"{host} already reaches this account through {inboxes} inboxes, the most one "
            "host may use; give its actors a shared inbox (endpoints.sharedInbox)",
            "inboxes_per_host",
        )


# -- follow requests ---------------------------------------------------------------------


def hold(db: Database, request: FollowRequest, limits: FollowLimits) -> None:
    """Keep `request` for the operator (a repeat replaces the earlier one); FollowRefused
    when its host, or the account, has as many waiting as allowed. Expired ones go first."""
    prune_requests(db, request.received_at - limits.pending_seconds)
    on_host, total = db.execute(
        "SELECT coalesce(sum(host = ?), 0), count(*) FROM follow_requests "
        "WHERE handle = ? AND actor != ?",
        [request.host, request.handle, request.actor],
    ).fetchone()
    if on_host >= limits.pending_per_host:
        raise FollowRefused(
            f"{request.host} already has {on_host} follow requests waiting for approval",
            "pending_per_host",
        )
    if total >= limits.pending_total:
        raise FollowRefused(
            f"{total} follow requests are already waiting for approval", "pending_total"
        )
    db.table("follow_requests").upsert(
        {
            "handle": request.handle,
            "actor": request.actor,
            "host": request.host,
            "name": request.name,
            "inbox": request.inbox,
            "personal_inbox": request.personal_inbox,
            "follow": json.dumps(request.follow, ensure_ascii=False),
            "received_at": request.received_at,
        },
        pk=("handle", "actor"),
    )


def pending_requests(db: Database, handle: str, since: float) -> list[FollowRequest]:
    """The requests waiting for `handle` that arrived after `since` (older ones expired),
    oldest first."""
    rows = db.execute(
        "SELECT handle, actor, name, inbox, personal_inbox, follow, received_at "
        "FROM follow_requests WHERE handle = ? AND received_at > ? ORDER BY received_at, actor",
        [handle, since],
    ).fetchall()
    return [FollowRequest(r[0], r[1], r[2] or "", r[3], r[4], json.loads(r[5]), r[6]) for r in rows]


def drop_request(db: Database, handle: str, actor: str) -> None:
    db.execute("DELETE FROM follow_requests WHERE handle = ? AND actor = ?", [handle, actor])


def prune_requests(db: Database, before: float) -> int:
    """Forget requests that arrived before `before`; how many went."""
    return db.execute("DELETE FROM follow_requests WHERE received_at <= ?", [before]).rowcount


def display_name(actor: dict[str, Any]) -> str:
    """The actor's preferredUsername, for NAME@HOST; empty unless it is a short word (so a
    name cannot carry spaces, '@' or terminal control characters)."""
    name = actor.get("preferredUsername")
    return name if isinstance(name, str) and NAME_PATTERN.fullmatch(name) else ""


def host_or_none(url: str) -> str | None:
    """The host of `url`, or None when it is not an http(s) URL."""
    try:
        return host_of(url)
    except MalformedDocument:
        return None
