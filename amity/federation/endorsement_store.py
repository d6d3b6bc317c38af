"""Endorsements a node holds, revocations it has seen, and the authorities it trusts.

An endorsement counts for a school when its authority's proof verifies, it names the key
the school's current profile is signed with, it has not expired and no revocation of it
has been seen. It makes the school "verified" on this node when this node trusts the
authority (`amity trust`).
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

from ..protocol.endorsement import MAX_ENDORSEMENTS, Endorsement
from . import limits
from .limits import row_host


def replace_for_school(db: Database, school: str, endorsements: list[Endorsement]) -> None:
    """The endorsements carried by `school`'s current profile, replacing earlier ones."""
    db.execute("DELETE FROM endorsements WHERE school = ?", [school])
    for e in endorsements:
        db.execute(
            "INSERT OR REPLACE INTO endorsements "
            "(id, school, authority, published, expires, document) VALUES (?, ?, ?, ?, ?, ?)",
            [e.id, school, e.authority, e.published, e.expires, json.dumps(e.document)],
        )


def add_held(
    db: Database, endorsement: Endorsement, received_at: str, room_for_trusted: bool
) -> bool:
    """Keep an endorsement delivered to one of this node's schools, replacing an earlier one
    from the same authority. At most MAX_ENDORSEMENTS are held per school: when full, a new
    authority is refused, unless `room_for_trusted` and one held is from an authority this
    node does not trust (that one goes). False when refused."""
    school = endorsement.school
    held = db.execute(
        "SELECT count(*) FROM held_endorsements WHERE school = ?", [school]
    ).fetchone()[0]
    known = db.execute(
        "SELECT 1 FROM held_endorsements WHERE school = ? AND authority = ?",
        [school, endorsement.authority],
    ).fetchone()
    if not known and held >= MAX_ENDORSEMENTS:
        untrusted = db.execute(
            "SELECT id FROM held_endorsements WHERE school = ? AND authority NOT IN "
            "(SELECT actor FROM trusted_authorities) ORDER BY received_at LIMIT 1",
            [school],
        ).fetchone()
        if not room_for_trusted or untrusted is None:
            return False
        db.execute("DELETE FROM held_endorsements WHERE id = ?", [untrusted[0]])
    db.execute(
        "DELETE FROM held_endorsements WHERE school = ? AND authority = ?",
        [school, endorsement.authority],
    )
    db.execute(
        "INSERT OR REPLACE INTO held_endorsements "
        "(id, school, authority, expires, document, received_at) VALUES (?, ?, ?, ?, ?, ?)",
        [
            endorsement.id,
            school,
            endorsement.authority,
            endorsement.expires,
            json.dumps(endorsement.document),
            received_at,
        ],
    )
    return True


def held_documents(db: Database, now: str, school: str | None = None) -> list[dict[str, Any]]:
    """The signed endorsements a school of this node (`school`, else any) holds that still
    count at `now`."""
    where = COUNTS + (" AND e.school = ?" if school is not None else "")
    rows = db.execute(
        f"SELECT e.document FROM held_endorsements e WHERE {where} ORDER BY e.received_at, e.id",
        [now] if school is None else [now, school],
    ).fetchall()
    return [json.loads(row[0]) for row in rows]


# SQL condition on an `endorsements e` row: not expired at the bound time, not revoked.
COUNTS = (
    "(e.expires IS NULL OR e.expires > ?) "
    "AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.id = e.id)"
)


def endorsed_by(db: Database, schools: list[str], now: str) -> dict[str, list[str]]:
    """For each school, the authorities whose endorsement counts at `now`."""
    found: dict[str, list[str]] = {school: [] for school in schools}
    for start in range(0, len(schools), 500):
        chunk = schools[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = db.execute(
            f"SELECT DISTINCT e.school, e.authority FROM endorsements e "
            f"WHERE e.school IN ({marks}) AND {COUNTS} ORDER BY e.authority",
            [*chunk, now],
        ).fetchall()
        for school, authority in rows:
            found[school].append(authority)
    return found


def endorsed_schools(db: Database, now: str) -> dict[str, list[str]]:
    """Every school with an endorsement that counts at `now`, and its authorities."""
    found: dict[str, list[str]] = {}
    rows = db.execute(
        f"SELECT DISTINCT e.school, e.authority FROM endorsements e WHERE {COUNTS} "
        "ORDER BY e.authority",
        [now],
    ).fetchall()
    for school, authority in rows:
        found.setdefault(school, []).append(authority)
    return found


def record_revocation(
    db: Database, endorsement_id: str, authority: str, when: str, document: dict[str, Any]
) -> bool:
    """Remember that `authority` revoked `endorsement_id`; False if already known, or not
    kept (revocation_refusal).

    Only the endorsement's own authority can revoke it: a revocation is tied to the
    authority's host by the id, which is checked when the endorsement itself is read.
    """
    if db.execute("SELECT 1 FROM revocations WHERE id = ?", [endorsement_id]).fetchone():
        return False
    text = json.dumps(document)
    if revocation_refusal(db, authority, len(text.encode())) is not None:
        return False
    seq = db.execute("SELECT coalesce(max(seq), 0) + 1 FROM revocations").fetchone()[0]
    db.execute(
        "INSERT INTO revocations (id, authority, revoked_at, seq, document, host) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [endorsement_id, authority, when, seq, text, row_host(authority)],
    )
    return True


def revocation_refusal(db: Database, authority: str, size: int) -> str | None:
    """Why a revocation of `size` bytes from `authority` cannot be kept, or None."""
    if size > limits.MAX_REVOCATION_BYTES:
        return f"revocation is {size} bytes, more than {limits.MAX_REVOCATION_BYTES}"
    host = row_host(authority)
    held = db.execute("SELECT count(*) FROM revocations WHERE host = ?", [host]).fetchone()[0]
    if held >= limits.REVOCATIONS_PER_HOST:
        return f"this node already keeps {limits.REVOCATIONS_PER_HOST} revocations from {host}"
    return None


def revocations_since(db: Database, seq: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
    """Revocations recorded after `seq`, oldest first, with their cursor."""
    rows = db.execute(
        "SELECT seq, document FROM revocations WHERE seq > ? ORDER BY seq LIMIT ?", [seq, limit]
    ).fetchall()
    return [(int(row[0]), json.loads(row[1])) for row in rows]


def count_revocations(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM revocations").fetchone()[0])


def trusted(db: Database) -> set[str]:
    return {row[0] for row in db.execute("SELECT actor FROM trusted_authorities")}


def trust(db: Database, authority: str, since: str) -> bool:
    """Trust `authority`; False if it already was."""
    if db.execute("SELECT 1 FROM trusted_authorities WHERE actor = ?", [authority]).fetchone():
        return False
    db.execute("INSERT INTO trusted_authorities (actor, since) VALUES (?, ?)", [authority, since])
    return True


def distrust(db: Database, authority: str) -> bool:
    return db.execute("DELETE FROM trusted_authorities WHERE actor = ?", [authority]).rowcount > 0


def trusted_rows(db: Database) -> list[dict[str, Any]]:
    rows = db.execute("SELECT actor, since FROM trusted_authorities ORDER BY since, actor")
    return [{"actor": row[0], "since": row[1]} for row in rows]


def revoked_among(db: Database, ids: list[str]) -> set[str]:
    """Those of the endorsement `ids` whose revocation this node has seen."""
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = db.execute(f"SELECT id FROM revocations WHERE id IN ({marks})", chunk)
        found.update(row[0] for row in rows)
    return found
