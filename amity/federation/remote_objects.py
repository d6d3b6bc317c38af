"""Objects other nodes sent (remote_objects), and their tombstones.

Every function takes the sqlite-utils Database and runs on the node's database thread.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from .relations import remove_follower


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
