"""The cache of other nodes' actors (remote_actors), with its quotas per host.

Every function takes the sqlite-utils Database and runs on the node's database thread.
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

from ..protocol.actor import is_amity_actor
from . import limits
from .limits import row_host

AMITY_LOOKUP_CHUNK = 500  # inboxes in one query (SQLite's bound on parameters is higher)


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


def amity_inboxes(db: Database, inboxes: list[str]) -> set[str]:
    """Those of `inboxes` that are the inbox or shared inbox, on its own host, of a cached
    Amity actor (looked up through the indexes on both columns, AMITY_LOOKUP_CHUNK inboxes
    a query). An actor naming another server's inbox does not make that server Amity."""
    wanted = list(dict.fromkeys(inboxes))
    found: set[str] = set()
    for start in range(0, len(wanted), AMITY_LOOKUP_CHUNK):
        chunk = wanted[start : start + AMITY_LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        for column in ("inbox", "shared_inbox"):
            rows = db.execute(
                f"SELECT {column}, document FROM remote_actors WHERE {column} IN ({marks}) "
                "AND json_extract(document, '$.nodeKind') IS NOT NULL",
                chunk,
            )
            for inbox, text in rows:
                if inbox in found:
                    continue
                document = json.loads(text)
                if row_host(inbox) == row_host(document["id"]) and is_amity_actor(document):
                    found.add(inbox)
    return found


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
