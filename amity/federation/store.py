"""The federation's rows in the node's SQLite database (tables made by node/schema.py).

Every function takes the sqlite-utils Database and runs on the node's database thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from ..protocol.activities import host_of
from ..protocol.errors import ProtocolError
from . import limits


@dataclass(frozen=True)
class Delivery:
    """One activity on its way to one inbox."""

    id: int
    activity_id: str
    handle: str
    inbox: str
    host: str
    body: bytes
    attempts: int


# -- remote actors -----------------------------------------------------------------------


def cached_actor(db: Database, actor_id: str) -> tuple[dict[str, Any], float] | None:
    row = db.execute(
        "SELECT document, fetched_at FROM remote_actors WHERE id = ?", [actor_id]
    ).fetchone()
    return (json.loads(row[0]), row[1]) if row else None


def cache_actor(db: Database, document: dict[str, Any], fetched_at: float) -> bool:
    """Cache an actor's document; False when it is not kept (over MAX_ACTOR_BYTES, or its
    host has ACTORS_PER_HOST that this node still needs)."""
    endpoints = document.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    text = json.dumps(document)
    if len(text) > limits.MAX_ACTOR_BYTES:
        return False
    host = row_host(document["id"])
    with db.atomic():
        if not _room_for_actor(db, document["id"], host):
            return False
        db.table("remote_actors").upsert(
            {
                "id": document["id"],
                "document": text,
                "inbox": document.get("inbox"),
                "shared_inbox": shared if isinstance(shared, str) else None,
                "fetched_at": fetched_at,
                "host": host,
            },
            pk="id",
        )
    return True


# SQL condition on a `remote_actors r` row: nothing this node holds refers to the actor.
UNREFERENCED_ACTOR = (
    "NOT EXISTS (SELECT 1 FROM following f WHERE f.actor = r.id) "
    "AND NOT EXISTS (SELECT 1 FROM followers f WHERE f.actor = r.id) "
    "AND NOT EXISTS (SELECT 1 FROM directory d WHERE d.actor = r.id)"
)


def _room_for_actor(db: Database, actor_id: str, host: str) -> bool:
    """True if `actor_id` is cached already or its host has room, made if need be by
    dropping the host's unreferenced actor fetched longest ago."""
    if db.execute("SELECT 1 FROM remote_actors WHERE id = ?", [actor_id]).fetchone():
        return True
    held = db.execute("SELECT count(*) FROM remote_actors WHERE host = ?", [host]).fetchone()[0]
    if held < limits.ACTORS_PER_HOST:
        return True
    oldest = db.execute(
        f"SELECT r.id FROM remote_actors r WHERE r.host = ? AND {UNREFERENCED_ACTOR} "
        "ORDER BY r.fetched_at LIMIT 1",
        [host],
    ).fetchone()
    if oldest is None:
        return False
    db.execute("DELETE FROM remote_actors WHERE id = ?", [oldest[0]])
    return True


def row_host(url: str) -> str:
    """The host a row is counted under for quotas ("" for what is not an http(s) URL)."""
    try:
        return host_of(url)
    except ProtocolError:
        return ""


# -- seen activities ---------------------------------------------------------------------


def mark_seen(db: Database, activity_id: str, kind: str, actor: str, now: float) -> bool:
    """Record the id; False when it was already there (the activity is a repeat)."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO seen_activities (id, type, actor, received_at) VALUES (?, ?, ?, ?)",
        [activity_id, kind, actor, now],
    )
    return cursor.rowcount == 1


# -- followers and following -------------------------------------------------------------


def add_follower(
    db: Database, handle: str, actor: str, inbox: str, follow_id: str, now: str
) -> None:
    db.table("followers").upsert(
        {
            "handle": handle,
            "actor": actor,
            "host": host_of(actor),  # followers are counted per host (federation/follows.py)
            "inbox": inbox,
            "follow_id": follow_id,
            "created": now,
        },
        pk=("handle", "actor"),
    )


def remove_follower(db: Database, handle: str | None, actor: str) -> None:
    """The actor no longer follows (or asks to follow) `handle`, or any account (None)."""
    if handle is None:
        db.execute("DELETE FROM followers WHERE actor = ?", [actor])
        db.execute("DELETE FROM follow_requests WHERE actor = ?", [actor])
    else:
        db.execute("DELETE FROM followers WHERE handle = ? AND actor = ?", [handle, actor])
        db.execute("DELETE FROM follow_requests WHERE handle = ? AND actor = ?", [handle, actor])


def follower_inboxes(db: Database, handle: str, exclude: list[str] | None = None) -> list[str]:
    """Distinct inboxes to reach every follower (one POST per shared inbox), leaving out
    inboxes whose followers are all in `exclude`."""
    skip = exclude or []
    if not skip:
        rows = db.execute(
            "SELECT DISTINCT inbox FROM followers WHERE handle = ? ORDER BY inbox", [handle]
        ).fetchall()
        return [row[0] for row in rows]
    marks = ",".join("?" * len(skip))
    rows = db.execute(
        f"SELECT inbox FROM followers WHERE handle = ? GROUP BY inbox "
        f"HAVING sum(actor NOT IN ({marks})) > 0 ORDER BY inbox",
        [handle, *skip],
    ).fetchall()
    return [row[0] for row in rows]


def followed_hub_inboxes(db: Database, handle: str) -> list[str]:
    """Inboxes of the hubs this account follows (accepted), which relay its profile."""
    rows = db.execute(
        """
        SELECT coalesce(r.shared_inbox, r.inbox) FROM following f
        JOIN remote_actors r ON r.id = f.actor
        WHERE f.handle = ? AND f.state = 'accepted'
          AND json_extract(r.document, '$.nodeKind') = 'hub'
        """,
        [handle],
    ).fetchall()
    return [row[0] for row in rows if row[0]]


def followed_hubs(db: Database, handle: str) -> list[dict[str, Any]]:
    """Actor documents of the hubs this account follows (accepted)."""
    rows = db.execute(
        """
        SELECT r.document FROM following f JOIN remote_actors r ON r.id = f.actor
        WHERE f.handle = ? AND f.state = 'accepted'
          AND json_extract(r.document, '$.nodeKind') = 'hub'
        ORDER BY f.created
        """,
        [handle],
    ).fetchall()
    return [json.loads(row[0]) for row in rows]


def list_actors(
    db: Database, table: str, handle: str, offset: int, limit: int
) -> tuple[int, list[str]]:
    """(total, page of actor ids) of `followers` or `following` (accepted only), oldest first."""
    where = "handle = ?" + (" AND state = 'accepted'" if table == "following" else "")
    total = db.execute(f"SELECT count(*) FROM {table} WHERE {where}", [handle]).fetchone()[0]
    rows = db.execute(
        f"SELECT actor FROM {table} WHERE {where} ORDER BY created, actor LIMIT ? OFFSET ?",
        [handle, limit, offset],
    ).fetchall()
    return total, [row[0] for row in rows]


def relations(db: Database, table: str, handle: str) -> list[dict[str, Any]]:
    """Every row of `followers` or `following` for `amity followers` / `amity following`."""
    state = ", state" if table == "following" else ""
    rows = db.execute(
        f"SELECT actor, created{state} FROM {table} WHERE handle = ? ORDER BY created, actor",
        [handle],
    ).fetchall()
    keys = ("actor", "since", "state")
    return [dict(zip(keys, row, strict=False)) for row in rows]


def set_following(
    db: Database, handle: str, actor: str, follow_id: str, state: str, now: str
) -> None:
    db.table("following").upsert(
        {"handle": handle, "actor": actor, "follow_id": follow_id, "state": state, "created": now},
        pk=("handle", "actor"),
    )


def answer_follow(db: Database, follow_id: str, actor: str, state: str) -> bool:
    """Mark our Follow `follow_id` to `actor` accepted or rejected; False if there is none."""
    cursor = db.execute(
        "UPDATE following SET state = ? WHERE follow_id = ? AND actor = ?",
        [state, follow_id, actor],
    )
    return cursor.rowcount == 1


def following_state(db: Database, handle: str, actor: str) -> str | None:
    row = db.execute(
        "SELECT state FROM following WHERE handle = ? AND actor = ?", [handle, actor]
    ).fetchone()
    return row[0] if row else None


# -- objects from other nodes ------------------------------------------------------------


def stored_object(db: Database, object_id: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT id, type, attributed_to, document, updated, deleted_at FROM objects WHERE id = ?",
        [object_id],
    ).fetchone()
    if row is None:
        return None
    keys = ("id", "type", "attributed_to", "document", "updated", "deleted_at")
    return dict(zip(keys, row, strict=True))


def tombstone_object(
    db: Database, object_id: str, attributed_to: str, when: str, now: float
) -> None:
    """Replace a stored object by a tombstone (an id never stored leaves nothing to guard)."""
    existing = stored_object(db, object_id)
    if existing is None or existing["attributed_to"] != attributed_to:
        return
    db.table("objects").upsert(
        {
            "id": object_id,
            "type": "Tombstone",
            "attributed_to": attributed_to,
            "document": None,
            "updated": when,
            "deleted_at": when,
            "received_at": now,
        },
        pk="id",
    )


def tombstone_actor(db: Database, actor: str, when: str, now: float) -> None:
    """An actor deleted itself: tombstone all it published and forget it as a follower."""
    for (object_id,) in db.execute(
        "SELECT id FROM objects WHERE attributed_to = ? AND deleted_at IS NULL", [actor]
    ).fetchall():
        tombstone_object(db, object_id, actor, when, now)
    remove_follower(db, None, actor)
    db.execute("DELETE FROM remote_actors WHERE id = ?", [actor])


def report_refusal(db: Database, actor: str) -> str | None:
    """Why a new report from `actor` cannot be kept now (a quota is full), or None."""
    host = row_host(actor)
    for where, args, cap, whose in (
        ("actor = ?", [actor], limits.REPORTS_PER_ACTOR, f"from {actor}"),
        ("host = ?", [host], limits.REPORTS_PER_HOST, f"from {host}"),
        ("1", [], limits.REPORTS_IN_ALL, "in all"),
    ):
        if db.execute(f"SELECT count(*) FROM reports WHERE {where}", args).fetchone()[0] >= cap:
            return f"this node already keeps {cap} reports {whose}; try again later"
    return None


def add_report(
    db: Database, report_id: str, actor: str, document: dict[str, Any], now: float
) -> bool:
    """Keep a Flag for the operator unless a quota is full (report_refusal); False if not."""
    if report_refusal(db, actor) is not None:
        return False
    db.table("reports").insert(
        {
            "id": report_id,
            "actor": actor,
            "document": json.dumps(document, ensure_ascii=False),
            "received_at": now,
            "host": row_host(actor),
        },
        pk="id",
        ignore=True,
    )
    return True


# -- outbox and deliveries ---------------------------------------------------------------


def enqueue(
    db: Database,
    handle: str,
    activity: dict[str, Any],
    inboxes: list[str],
    now: float,
    published: str,
) -> None:
    """Record `activity` in the outbox and queue one delivery per distinct inbox."""
    body = json.dumps(activity, ensure_ascii=False)
    db.table("outbox").insert(
        {
            "id": activity["id"],
            "handle": handle,
            "type": activity["type"],
            "document": body,
            "published": published,
        },
        pk="id",
        ignore=True,
    )
    for inbox in dict.fromkeys(inboxes):
        db.table("deliveries").insert(
            {
                "activity_id": activity["id"],
                "handle": handle,
                "inbox": inbox,
                "host": host_of(inbox),
                "body": body,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": None,
                "created_at": now,
            }
        )


def public_outbox(db: Database, handle: str, offset: int, limit: int) -> tuple[int, list[Any]]:
    """(total, page) of the public activities an account sent (Update, Delete), newest first."""
    where = "handle = ? AND type IN ('Update', 'Delete')"
    total = db.execute(f"SELECT count(*) FROM outbox WHERE {where}", [handle]).fetchone()[0]
    rows = db.execute(
        f"SELECT document FROM outbox WHERE {where} ORDER BY rowid DESC LIMIT ? OFFSET ?",
        [handle, limit, offset],
    ).fetchall()
    return total, [json.loads(row[0]) for row in rows]


def due_deliveries(
    db: Database,
    now: float,
    exclude: set[int],
    limit: int,
    probe_interval: float,
    host_room: Callable[[str], int] | None = None,
) -> list[Delivery]:
    """Pending deliveries whose time has come, to hosts that are available; for a host marked
    unavailable whose probe time has come, only its oldest one (the probe), and the next
    probe is pushed back at once so no second one starts while this one is out. With
    `host_room`, at most that many for each host (what its concurrency limit leaves free)."""
    rows = db.execute(
        f"""
        SELECT d.id, d.host, h.unavailable_since
        FROM deliveries d LEFT JOIN hosts h ON h.host = d.host
        WHERE d.state = 'pending' AND d.next_attempt_at <= ?
          AND (h.unavailable_since IS NULL OR h.next_probe_at <= ?)
          AND d.id NOT IN ({",".join("?" * len(exclude))})
        ORDER BY d.next_attempt_at, d.id
        LIMIT ?
        """,
        [now, now, *exclude, limit * (1 if host_room is None else 4)],
    ).fetchall()
    chosen: list[int] = []
    probed: set[str] = set()
    taken: dict[str, int] = {}
    for delivery_id, host, unavailable_since in rows:
        if host in probed or len(chosen) >= limit:
            continue
        if host_room is not None:
            if taken.get(host, 0) >= host_room(host):
                continue
            taken[host] = taken.get(host, 0) + 1
        if unavailable_since is not None:
            probed.add(host)
            db.execute(
                "UPDATE hosts SET next_probe_at = ? WHERE host = ?", [now + probe_interval, host]
            )
        chosen.append(delivery_id)
    # The rest only for the rows chosen: a fan-out's candidates are many, and alike.
    found = {
        r[0]: Delivery(*r)
        for r in db.execute(
            "SELECT id, activity_id, handle, inbox, host, CAST(body AS BLOB), attempts "
            f"FROM deliveries WHERE id IN ({','.join('?' * len(chosen))})",
            chosen,
        )
    }
    return [found[delivery_id] for delivery_id in chosen]


def next_due_at(db: Database, now: float) -> float | None:
    """The earliest time after `now` at which a pending delivery may fall due (its retry,
    or the next probe of a host marked unavailable): the delivery worker sleeps until then."""
    retry = db.execute(
        "SELECT min(next_attempt_at) FROM deliveries "
        "WHERE state = 'pending' AND next_attempt_at > ?",
        [now],
    ).fetchone()[0]
    probe = db.execute(
        "SELECT min(next_probe_at) FROM hosts "
        "WHERE unavailable_since IS NOT NULL AND next_probe_at > ?",
        [now],
    ).fetchone()[0]
    times = [float(t) for t in (retry, probe) if t is not None]
    return min(times) if times else None


def delivered(db: Database, done: list[tuple[int, str]], now: float) -> None:
    """Success for each (delivery id, host): drop the rows; a host that was unavailable is
    back, so its queue is due now."""
    with db.atomic():
        db.execute(
            f"DELETE FROM deliveries WHERE id IN ({','.join('?' * len(done))})",
            [delivery_id for delivery_id, _ in done],
        )
        for host in sorted({host for _, host in done}):
            host_available(db, host, now)


def host_available(db: Database, host: str, now: float) -> None:
    """`host` answered: if it was marked unavailable, clear that and make its queue due now."""
    row = db.execute("SELECT unavailable_since FROM hosts WHERE host = ?", [host]).fetchone()
    if row is None or row[0] is None:
        return  # the common case, on every inbox request: nothing to write
    db.execute(
        "UPDATE deliveries SET next_attempt_at = ? WHERE host = ? AND state = 'pending'",
        [now, host],
    )
    db.execute(
        "UPDATE hosts SET unavailable_since = NULL, next_probe_at = NULL, last_success = ? "
        "WHERE host = ?",
        [now, host],
    )


def failed(
    db: Database,
    delivery: Delivery,
    error: str,
    next_attempt_at: float | None,
    now: float,
    probe_interval: float,
) -> None:
    """Record a failure: retry at `next_attempt_at`, or (None) mark the delivery dead."""
    with db.atomic():
        if next_attempt_at is None:
            db.execute(
                "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = ? "
                "WHERE id = ?",
                [error, delivery.id],
            )
        else:
            db.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ? WHERE id = ?",
                [error, next_attempt_at, delivery.id],
            )
        row = db.execute(
            "SELECT unavailable_since FROM hosts WHERE host = ?", [delivery.host]
        ).fetchone()
        if row is not None and row[0] is not None:
            db.execute(
                "UPDATE hosts SET next_probe_at = ? WHERE host = ?",
                [now + probe_interval, delivery.host],
            )


def mark_unavailable(db: Database, host: str, now: float, probe_interval: float) -> None:
    db.table("hosts").upsert(
        {"host": host, "unavailable_since": now, "next_probe_at": now + probe_interval},
        pk="host",
    )


def queue_rows(db: Database) -> list[dict[str, Any]]:
    """Every queued or dead delivery, for `amity queue`."""
    rows = db.execute(
        """
        SELECT d.id, d.activity_id, d.inbox, d.state, d.attempts, d.next_attempt_at,
               d.last_error, h.unavailable_since
        FROM deliveries d LEFT JOIN hosts h ON h.host = d.host ORDER BY d.id
        """
    ).fetchall()
    keys = (
        "id",
        "activity",
        "inbox",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "host_unavailable_since",
    )
    return [dict(zip(keys, row, strict=True)) for row in rows]


def retry_deliveries(db: Database, ids: list[int] | None, now: float) -> list[int]:
    """Make deliveries due now with a full retry schedule (attempts back to 0): those of
    `ids`, or (None) every dead or retrying one. A held delivery's host gets its probe now.
    Returns the ids changed."""
    with db.atomic():
        if ids is None:
            rows = db.execute(
                "SELECT id, host FROM deliveries WHERE state = 'dead' OR attempts > 0"
            ).fetchall()
        else:
            marks = ",".join("?" * len(ids))
            rows = db.execute(
                f"SELECT id, host FROM deliveries WHERE id IN ({marks})", ids
            ).fetchall()
        for delivery_id, _host in rows:
            db.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ? "
                "WHERE id = ?",
                [now, delivery_id],
            )
        for host in {row[1] for row in rows}:
            db.execute(
                "UPDATE hosts SET next_probe_at = ? WHERE host = ? AND unavailable_since "
                "IS NOT NULL",
                [now, host],
            )
    return [row[0] for row in rows]


def drop_delivery(db: Database, delivery_id: int) -> bool:
    """Remove a delivery from the queue; False when there is none with that id."""
    with db.atomic():
        return db.execute("DELETE FROM deliveries WHERE id = ?", [delivery_id]).rowcount == 1


def follow_problems(db: Database, handle: str) -> dict[str, str]:
    """Why pending follows of `handle` are not answered yet: the last error of each one's
    Follow delivery, by followed actor."""
    rows = db.execute(
        """
        SELECT f.actor, d.last_error FROM following f
        JOIN deliveries d ON d.activity_id = f.follow_id
        WHERE f.handle = ? AND f.state = 'pending' AND d.last_error IS NOT NULL
        """,
        [handle],
    ).fetchall()
    return {row[0]: row[1] for row in rows}


# -- blocks ------------------------------------------------------------------------------


def add_block(db: Database, target: str, kind: str, now: str) -> None:
    """Block a domain or an actor, and drop what the node holds from it: it is no longer a
    follower, what it published is deleted, and nothing more is queued to it."""
    with db.atomic():
        db.table("blocks").upsert({"target": target, "kind": kind, "created": now}, pk="target")
        if kind == "actor":
            db.execute("DELETE FROM followers WHERE actor = ?", [target])
            db.execute("DELETE FROM follow_requests WHERE actor = ?", [target])
            db.execute("DELETE FROM objects WHERE attributed_to = ?", [target])
            db.execute("DELETE FROM directory WHERE actor = ?", [target])
            db.execute("DELETE FROM remote_actors WHERE id = ?", [target])
            return
        for table, column in (
            ("followers", "actor"),
            ("follow_requests", "actor"),
            ("objects", "id"),
            ("directory", "actor"),
            ("remote_actors", "id"),
        ):
            for (value,) in db.execute(f"SELECT {column} FROM {table}").fetchall():
                if _on_domain(value, target):
                    db.execute(f"DELETE FROM {table} WHERE {column} = ?", [value])
        for (host,) in db.execute("SELECT DISTINCT host FROM deliveries").fetchall():
            if _on_domain(f"http://{host}/", target):
                db.execute("DELETE FROM deliveries WHERE host = ?", [host])


def _on_domain(url: str, domain: str) -> bool:
    try:
        host = host_of(url)
    except ProtocolError:
        return False
    return host == domain or host.split(":")[0] == domain


def remove_block(db: Database, target: str) -> bool:
    return db.execute("DELETE FROM blocks WHERE target = ?", [target]).rowcount == 1


def is_blocked(db: Database, *urls: str) -> bool:
    """True when any of `urls` is a blocked actor or lives on a blocked domain."""
    targets = set(urls)
    for url in urls:
        try:
            host = host_of(url)
        except ProtocolError:  # a malformed URL cannot be on a blocked host
            continue
        targets.add(host)
        targets.add(host.split(":")[0])
    marks = ",".join("?" * len(targets))
    row = db.execute(
        f"SELECT 1 FROM blocks WHERE target IN ({marks}) LIMIT 1", list(targets)
    ).fetchone()
    return row is not None
