"""Who follows this node's accounts and whom they follow (followers, following).

Every function takes the sqlite-utils Database and runs on the node's database thread.
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

from ..protocol.activities import host_of


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


def followed_hub_inboxes(db: Database, handle: str, also: str | None = None) -> list[str]:
    """Inboxes of the hubs this account follows (accepted), which relay its profile, and
    those `also` follows (a hosted school's node follows hubs once, for all its schools)."""
    rows = db.execute(
        """
        SELECT DISTINCT coalesce(r.shared_inbox, r.inbox) FROM following f
        JOIN remote_actors r ON r.id = f.actor
        WHERE f.handle IN (?, ?) AND f.state = 'accepted'
          AND json_extract(r.document, '$.nodeKind') = 'hub'
        ORDER BY 1
        """,
        [handle, also or handle],
    ).fetchall()
    return [row[0] for row in rows if row[0]]


def followed_hubs(db: Database, handle: str, also: str | None = None) -> list[dict[str, Any]]:
    """Actor documents of the hubs this account (or `also`, the node's first account)
    follows (accepted), each once."""
    rows = db.execute(
        """
        SELECT r.document FROM following f JOIN remote_actors r ON r.id = f.actor
        WHERE f.handle IN (?, ?) AND f.state = 'accepted'
          AND json_extract(r.document, '$.nodeKind') = 'hub'
        GROUP BY r.id ORDER BY min(f.created)
        """,
        [handle, also or handle],
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


def answer_follow(db: Database, follow_id: str, actor: str, state: str) -> str | None:
    """Mark our Follow `follow_id` to `actor` accepted or rejected; returns the handle of
    the account that followed, None if there is no such Follow."""
    row = db.execute(
        "SELECT handle FROM following WHERE follow_id = ? AND actor = ?", [follow_id, actor]
    ).fetchone()
    if row is None:
        return None
    db.execute(
        "UPDATE following SET state = ? WHERE follow_id = ? AND actor = ?",
        [state, follow_id, actor],
    )
    return str(row[0])


def following_state(db: Database, handle: str, actor: str) -> str | None:
    row = db.execute(
        "SELECT state FROM following WHERE handle = ? AND actor = ?", [handle, actor]
    ).fetchone()
    return row[0] if row else None


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
