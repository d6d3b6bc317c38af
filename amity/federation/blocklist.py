"""Blocked actors and domains (blocks).

Every function takes the sqlite-utils Database and runs on the node's database thread.
"""

from __future__ import annotations

from sqlite_utils import Database

from ..protocol.activities import host_of
from ..protocol.errors import ProtocolError


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


def block_targets(*urls: str) -> set[str]:
    """What a block may name for these URLs: each URL, its host[:port] and its host."""
    targets = set(urls)
    for url in urls:
        try:
            host = host_of(url)
        except ProtocolError:  # a malformed URL cannot be on a blocked host
            continue
        targets.add(host)
        targets.add(host.split(":")[0])
    return targets


def is_blocked(db: Database, *urls: str) -> bool:
    """True when any of `urls` is a blocked actor or lives on a blocked domain."""
    targets = block_targets(*urls)
    marks = ",".join("?" * len(targets))
    row = db.execute(
        f"SELECT 1 FROM blocks WHERE target IN ({marks}) LIMIT 1", list(targets)
    ).fetchone()
    return row is not None
