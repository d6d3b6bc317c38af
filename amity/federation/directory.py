"""The directory: the latest verified profile of each school, searchable, with sync cursors.

Every function takes the node's sqlite-utils Database (node/schema.py makes the tables).
A profile enters only after its proof was checked; the caller does that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from ..protocol.endorsement import Endorsement
from ..protocol.multikey import decode_ed25519_public, encode_ed25519_public
from ..protocol.profile import display_name
from ..protocol.profile_document import profile_from_document
from ..protocol.proofs import ProofInfo
from ..protocol.text import clean_text
from . import limits
from .endorsement_store import COUNTS, endorsed_by, replace_for_school, trusted
from .limits import row_host

# How long a key seen in an author's actor is trusted for that author's later profiles
# without asking again. Amity re-publishes weekly; an actor announcing new keys (`amity keys
# rotate`) ends the trust at once for the nodes that hear it.
KEY_TRUST = 30 * 24 * 3600.0


def _next_seq(db: Database) -> int:
    return int(db.execute("SELECT coalesce(max(seq), 0) + 1 FROM directory").fetchone()[0])


def store_profile(
    db: Database,
    document: dict[str, Any],
    now: float,
    endorsements: list[Endorsement] | None = None,
    proof: ProofInfo | None = None,
    key_confirmed_at: float | None = None,
) -> bool:
    """Keep `document` as its school's listing if it is newer than what is held, with the
    `endorsements` it carries that the caller checked and the `proof` (key) it was checked
    with; `key_confirmed_at` is when the author's actor was seen publishing that key (None
    while it is only a hub's word for it).

    False when the same or a newer version, or a later deletion, is already there: the
    caller then neither counts it as news nor relays it.
    """
    actor, updated = document["attributedTo"], document["updated"]
    row = db.execute(
        "SELECT updated, deleted_at FROM directory WHERE actor = ?", [actor]
    ).fetchone()
    if row is not None and (row[0] >= updated or (row[1] is not None and row[1] >= updated)):
        return False
    text = json.dumps(document, ensure_ascii=False)
    if listing_refusal(db, actor, len(text.encode()), known=row is not None) is not None:
        return False
    profile = profile_from_document(document)
    db.execute(
        """
        INSERT OR REPLACE INTO directory (actor, profile_id, document, updated, deleted_at, seq,
            received_at, name, country, locality, timezone, instruction, learning, age_min,
            age_max, subjects, modes, description, paused, key_id, author_key,
            key_confirmed_at, host)
        VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            actor,
            document["id"],
            text,
            updated,
            _next_seq(db),
            now,
            display_name(profile),
            profile["country"],
            profile.get("locality", ""),
            profile["timezone"],
            json.dumps(profile["languages"]["instruction"]),
            json.dumps(profile["languages"]["learning"]),
            profile["ages"][0],
            profile["ages"][1],
            json.dumps(profile["subjects"]),
            json.dumps(profile["modes"]),
            profile.get("description", ""),
            1 if document.get("paused") is True else 0,
            proof.verification_method if proof else None,
            encode_ed25519_public(proof.public_key) if proof else None,
            key_confirmed_at,
            row_host(actor),
        ],
    )
    replace_for_school(db, actor, endorsements or [])
    return True


def remove_profile(db: Database, actor: str, deleted_at: str, now: float) -> bool:
    """Replace a school's listing by a tombstone; False if it was already gone by then."""
    row = db.execute(
        "SELECT updated, deleted_at, profile_id FROM directory WHERE actor = ?", [actor]
    ).fetchone()
    if row is not None and (row[1] is not None or row[0] > deleted_at):
        return False
    if row is None and listing_refusal(db, actor, 0, known=False) is not None:
        return False
    profile_id = row[2] if row else f"{actor}/profile"
    db.execute(
        """
        INSERT OR REPLACE INTO directory (actor, profile_id, document, updated, deleted_at, seq,
            received_at, name, country, locality, timezone, instruction, learning, age_min,
            age_max, subjects, modes, description, host)
        VALUES (?, ?, NULL, ?, ?, ?, ?, '', '', '', '', '[]', '[]', 0, 0, '[]', '[]', '', ?)
        """,
        [actor, profile_id, deleted_at, deleted_at, _next_seq(db), now, row_host(actor)],
    )
    replace_for_school(db, actor, [])
    return True


def listing_refusal(db: Database, actor: str, size: int, known: bool) -> str | None:
    """Why a listing of `size` bytes from `actor` cannot be kept, or None: too large, or
    (for an actor not `known` here) its host has LISTINGS_PER_HOST rows already."""
    if size > limits.MAX_LISTING_BYTES:
        return f"profile object is {size} bytes, more than {limits.MAX_LISTING_BYTES}"
    if known:
        return None
    host = row_host(actor)
    held = db.execute("SELECT count(*) FROM directory WHERE host = ?", [host]).fetchone()[0]
    if held >= limits.LISTINGS_PER_HOST:
        return f"this node already lists {limits.LISTINGS_PER_HOST} schools of {host}"
    return None


def is_listed(db: Database, actor: str) -> bool:
    """True if the directory holds a row (listing or tombstone) for `actor`."""
    return db.execute("SELECT 1 FROM directory WHERE actor = ?", [actor]).fetchone() is not None


def listing_of(db: Database, profile_id: str) -> str | None:
    """The school whose current listing is the profile `profile_id`."""
    row = db.execute(
        "SELECT actor FROM directory WHERE profile_id = ? AND deleted_at IS NULL", [profile_id]
    ).fetchone()
    return row[0] if row else None


def changes_since(db: Database, seq: int, limit: int) -> list[dict[str, Any]]:
    """Listings and tombstones changed after `seq`, oldest change first, for directory sync.
    A listing whose key is only a hub's word is not handed on until it is confirmed (it then
    gets a new `seq`)."""
    rows = db.execute(
        "SELECT seq, actor, profile_id, document, deleted_at, key_id, author_key FROM directory "
        "WHERE seq > ? AND (deleted_at IS NOT NULL OR key_confirmed_at IS NOT NULL) "
        "ORDER BY seq LIMIT ?",
        [seq, limit],
    ).fetchall()
    return [
        {
            "seq": r[0],
            "actor": r[1],
            "profile_id": r[2],
            "document": json.loads(r[3]) if r[3] else None,
            "deleted_at": r[4],
            "key_id": r[5],
            "author_key": r[6],
        }
        for r in rows
    ]


def distrust_key(db: Database, actor: str) -> None:
    """The actor announced new keys: the next profile is checked against its actor."""
    db.execute(
        "UPDATE directory SET key_confirmed_at = 0 WHERE actor = ? AND key_confirmed_at > 0",
        [actor],
    )


@dataclass(frozen=True)
class ListingKey:
    """The key a school's listing was checked with, and when its actor was seen with it."""

    key_id: str
    key: bytes
    confirmed_at: float | None

    def trusted(self, key_id: str, now: float) -> bool:
        return (
            self.key_id == key_id
            and self.confirmed_at is not None
            and self.confirmed_at >= now - KEY_TRUST
        )


def listing_keys(db: Database, actors: list[str]) -> dict[str, ListingKey]:
    """The listing keys of those of `actors` that are listed (one query for a whole page)."""
    found: dict[str, ListingKey] = {}
    for start in range(0, len(actors), 500):
        chunk = actors[start : start + 500]
        rows = db.execute(
            "SELECT actor, key_id, author_key, key_confirmed_at FROM directory "
            f"WHERE actor IN ({', '.join('?' for _ in chunk)}) AND author_key IS NOT NULL",
            chunk,
        ).fetchall()
        for actor, key_id, key, confirmed_at in rows:
            found[actor] = ListingKey(key_id, decode_ed25519_public(key), confirmed_at)
    return found


@dataclass(frozen=True)
class Unconfirmed:
    rowid: int
    actor: str
    key_id: str
    author_key: str
    received_at: float


def unconfirmed(db: Database, after: int, limit: int) -> list[Unconfirmed]:
    """Listings whose key is only a hub's word, after rowid `after`."""
    rows = db.execute(
        "SELECT rowid, actor, key_id, author_key, received_at FROM directory "
        "WHERE key_confirmed_at IS NULL AND deleted_at IS NULL AND rowid > ? "
        "ORDER BY rowid LIMIT ?",
        [after, limit],
    ).fetchall()
    return [Unconfirmed(int(r[0]), r[1], r[2], r[3], float(r[4])) for r in rows]


def confirm_key(
    db: Database, actor: str, key_id: str, author_key: str, now: float
) -> dict[str, Any] | None:
    """The author's actor publishes the key its listing was checked with: the listing is
    confirmed, and moves to the end of the change feed so followers now get it. Returns
    the listing's document (None if it changed meanwhile)."""
    row = db.execute(
        "SELECT document FROM directory WHERE actor = ? AND key_id = ? AND author_key = ? "
        "AND key_confirmed_at IS NULL AND deleted_at IS NULL",
        [actor, key_id, author_key],
    ).fetchone()
    if row is None:
        return None
    db.execute(
        "UPDATE directory SET key_confirmed_at = ?, seq = ? WHERE actor = ?",
        [now, _next_seq(db), actor],
    )
    return dict(json.loads(row[0]))


def forget_listing(db: Database, actor: str, author_key: str) -> bool:
    """Drop a listing whose key its author does not publish (a hub's word proved wrong).
    No tombstone: the school may still publish a genuine profile, which is then taken."""
    gone = db.execute(
        "DELETE FROM directory WHERE actor = ? AND author_key = ? AND key_confirmed_at IS NULL",
        [actor, author_key],
    ).rowcount
    if gone:
        replace_for_school(db, actor, [])
    return gone > 0


def count_listings(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM directory WHERE deleted_at IS NULL").fetchone()[0])


def sync_cursor(db: Database, hub: str) -> int:
    row = db.execute("SELECT seq FROM sync_cursors WHERE hub = ?", [hub]).fetchone()
    return int(row[0]) if row else 0


def set_sync_cursor(db: Database, hub: str, seq: int) -> None:
    db.execute("INSERT OR REPLACE INTO sync_cursors (hub, seq) VALUES (?, ?)", [hub, seq])


@dataclass
class Filters:
    """What `amity directory` narrows listings by; empty means no filter."""

    country: str | None = None
    language: str | None = None  # taught in, or being learned
    teaches: str | None = None  # a language of instruction
    learns: str | None = None  # a language being learned
    age: int | None = None
    subject: str | None = None
    mode: str | None = None
    text: str | None = None
    exclude: list[str] = field(default_factory=list)  # actor ids
    updated_since: str | None = None  # leaves out stale listings (not refreshed since then)
    include_paused: bool = False
    endorsed_by: str | None = None  # an authority's actor id
    verified: bool = False  # endorsed by an authority this node trusts
    now: str = ""  # endorsements are judged at this time (xsd:dateTime)


def search(db: Database, filters: Filters, limit: int, offset: int) -> list[dict[str, Any]]:
    """Listings matching every filter, by name."""
    where: list[str] = ["d.deleted_at IS NULL"]
    args: list[Any] = []
    if filters.country:
        where.append("d.country = ?")
        args.append(filters.country.upper())
    if filters.language:
        where.append(
            "(EXISTS (SELECT 1 FROM json_each(d.instruction) WHERE lower(value) = lower(?))"
            " OR EXISTS (SELECT 1 FROM json_each(d.learning) WHERE lower(value) = lower(?)))"
        )
        args += [filters.language, filters.language]
    for column, value in (("instruction", filters.teaches), ("learning", filters.learns)):
        if value:
            where.append(
                f"EXISTS (SELECT 1 FROM json_each(d.{column}) WHERE lower(value) = lower(?))"
            )
            args.append(value)
    if filters.age is not None:
        where.append("d.age_min <= ? AND d.age_max >= ?")
        args += [filters.age, filters.age]
    for column, value in (("subjects", filters.subject), ("modes", filters.mode)):
        if value:
            where.append(f"EXISTS (SELECT 1 FROM json_each(d.{column}) WHERE value = ?)")
            args.append(value)
    if not filters.include_paused:
        where.append("d.paused = 0")
    if filters.updated_since:
        where.append("d.updated >= ?")
        args.append(filters.updated_since)
    if filters.endorsed_by:
        where.append(
            f"EXISTS (SELECT 1 FROM endorsements e WHERE e.school = d.actor "
            f"AND e.authority = ? AND {COUNTS})"
        )
        args += [filters.endorsed_by, filters.now]
    if filters.verified:
        where.append(
            "EXISTS (SELECT 1 FROM endorsements e JOIN trusted_authorities t "
            f"ON t.actor = e.authority WHERE e.school = d.actor AND {COUNTS})"
        )
        args.append(filters.now)
    for actor in filters.exclude:
        where.append("d.actor != ?")
        args.append(actor)
    if filters.text:
        # As a list subquery, so SQLite can start from a narrower filter (a country's
        # index) when there is one, rather than from every listing the words match.
        where.append("d.rowid IN (SELECT rowid FROM directory_fts WHERE directory_fts MATCH ?)")
        args.append(_fts_query(filters.text))
    rows = db.execute(
        "SELECT d.actor, d.document, d.received_at, d.key_confirmed_at IS NOT NULL "
        "FROM directory d "
        f"WHERE {' AND '.join(where)} ORDER BY d.name, d.actor LIMIT ? OFFSET ?",
        [*args, limit, offset],
    ).fetchall()
    return [
        {"actor": r[0], "document": json.loads(r[1]), "received_at": r[2], "confirmed": r[3]}
        for r in rows
    ]


def _fts_query(text: str) -> str:
    """Each word as a quoted prefix term, so user input is never FTS5 syntax."""
    words = [w.replace('"', '""') for w in text.split()]
    return " ".join(f'"{w}"*' for w in words if w)


def summaries(
    db: Database, rows: list[dict[str, Any]], now: str, stale_before: str
) -> list[dict[str, Any]]:
    """Listings from `search` as `amity directory --json` shows them, with their
    endorsements judged at `now`."""
    endorsed = endorsed_by(db, [row["actor"] for row in rows], now)
    trusted_here = trusted(db)
    listings = []
    for row in rows:
        item = summary(row["document"], stale_before)
        item["endorsed_by"] = endorsed[row["actor"]]
        item["verified"] = any(a in trusted_here for a in item["endorsed_by"])
        item["key_confirmed"] = bool(row.get("confirmed", 1))
        listings.append(item)
    return listings


def summary(document: dict[str, Any], stale_before: str) -> dict[str, Any]:
    """A listing's own facts, as `amity directory --json` shows them; its texts cleaned of
    invisible controls (the signed document keeps them: it cannot be changed)."""
    locality = document.get("locality")
    return {
        "actor": document["attributedTo"],
        "name": display_name(
            {"name": document["name"]} if "name" in document else {"name_map": document["nameMap"]}
        ),
        "country": document["country"],
        "locality": clean_text(locality) if isinstance(locality, str) else None,
        "timezone": document["timezone"],
        "languages": document["languages"],
        "ages": document["ages"],
        "subjects": document.get("subjects", []),
        "modes": document["modes"],
        "school_days": document.get("schoolDays", []),
        "school_hours": document.get("schoolHours"),
        "terms": document.get("terms", []),
        "capacity": document.get("capacity"),
        "description": clean_text(document.get("summary", ""), multiline=True),
        "updated": document["updated"],
        "last_active": document["updated"],
        "stale": document["updated"] < stale_before,
        "paused": document.get("paused") is True,
    }
