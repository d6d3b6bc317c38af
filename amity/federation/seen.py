"""Activities already received (seen_activities), so a repeat is dropped.

Every function takes the sqlite-utils Database and runs on the node's database thread.
"""

from __future__ import annotations

from sqlite_utils import Database


def mark_seen(db: Database, activity_id: str, kind: str, actor: str, now: float) -> bool:
    """Record the id; False when it was already there (the activity is a repeat)."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO seen_activities (id, type, actor, received_at) VALUES (?, ?, ?, ?)",
        [activity_id, kind, actor, now],
    )
    return cursor.rowcount == 1
