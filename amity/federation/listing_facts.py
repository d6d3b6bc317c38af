"""What matching reads of the directory: each listing's facts as one row, the listings'
version and changes (so an index of them can be kept up to date), and the signed
documents of listings whose key is confirmed (a hub hands on only those)."""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

# What matching reads; the few fields of the signed document it needs are taken out by
# SQLite, which parses each document once and hands each row over as one JSON text
# (parsing whole documents in Python would cost more than the matching itself).
_MATCH_FACTS = (
    "json_array(d.actor, d.name, d.country, d.timezone, json(d.instruction), "
    "json(d.learning), d.age_min, d.age_max, json(d.subjects), json(d.modes), d.paused, "
    "d.updated, json_extract(d.document, '$.schoolDays', '$.schoolHours', '$.terms', "
    "'$.capacity'))"
)


def match_rows(
    db: Database,
    exclude_country: str,
    ages: tuple[int, int],
    instruction: list[str],
    languages: list[str],
) -> list[dict[str, Any]]:
    """The listings that may match a school of another country than `exclude_country`,
    with pupils of `ages`, teaching in `instruction` and using `languages` (taught or
    learned): a working language must be possible. Paused listings are left out. The
    matching engine checks every constraint again; this only narrows."""
    rows = db.execute(
        f"SELECT {_MATCH_FACTS} FROM directory d WHERE d.deleted_at IS NULL AND d.paused = 0 "
        "AND d.country != ? AND d.age_min <= ? AND d.age_max >= ? AND ("
        "EXISTS (SELECT 1 FROM json_each(d.instruction) i "
        "WHERE i.value IN (SELECT value FROM json_each(?)))"
        " OR EXISTS (SELECT 1 FROM json_each(d.learning) l "
        "WHERE l.value IN (SELECT value FROM json_each(?))))",
        [
            exclude_country,
            ages[1],
            ages[0],
            json.dumps(sorted(set(languages))),
            json.dumps(sorted(set(instruction))),
        ],
    ).fetchall()
    return [_match_row(text) for (text,) in rows]


def listing_rows(db: Database) -> list[dict[str, Any]]:
    """Every listing that may match some school, as `match_rows` gives them: all but the
    paused ones (for an index of the whole directory, node/matching.py)."""
    rows = db.execute(
        f"SELECT {_MATCH_FACTS} FROM directory d WHERE d.deleted_at IS NULL AND d.paused = 0"
    ).fetchall()
    return [_match_row(text) for (text,) in rows]


def match_row(db: Database, actor: str) -> dict[str, Any] | None:
    """`actor`'s listing as `match_rows` gives it, paused or not; None if none is held."""
    row = db.execute(
        f"SELECT {_MATCH_FACTS} FROM directory d WHERE d.actor = ? AND d.deleted_at IS NULL",
        [actor],
    ).fetchone()
    return _match_row(row[0]) if row else None


def _match_row(text: str) -> dict[str, Any]:
    """A listing's facts as validated when it was stored."""
    (actor, name, country, timezone, instruction, learning, age_min, age_max, subjects, modes,
     paused, updated, (days, hours, terms, capacity)) = json.loads(text)  # fmt: skip
    return {
        "actor": actor,
        "name": name,
        "country": country,
        "timezone": timezone,
        "instruction": instruction,
        "learning": learning,
        "ages": (int(age_min), int(age_max)),
        "subjects": subjects,
        "modes": modes,
        "paused": bool(paused),
        "updated": updated,
        "school_days": days,
        "school_hours": hours,
        "terms": terms or [],
        "capacity": int(capacity),
    }


def listing_changes(db: Database, seq: int) -> list[tuple[int, str, float, dict[str, Any] | None]]:
    """The rows stored from `seq` on, oldest first: (seq, actor, received_at, the listing as
    `match_rows` gives it, or None for a withdrawn or paused one)."""
    rows = db.execute(
        f"SELECT d.seq, d.actor, d.received_at, d.deleted_at IS NULL AND d.paused = 0, "
        f"CASE WHEN d.deleted_at IS NULL THEN {_MATCH_FACTS} END "
        "FROM directory d WHERE d.seq >= ? ORDER BY d.seq",
        [seq],
    ).fetchall()
    return [(r[0], r[1], r[2], _match_row(r[4]) if r[3] else None) for r in rows]


def listing_actors(db: Database) -> set[str]:
    """Every actor with a row in the directory: listed, paused or withdrawn."""
    return {row[0] for row in db.execute("SELECT actor FROM directory")}


def listings_version(db: Database) -> tuple[Any, ...]:
    """A value that changes whenever a listing is stored, replaced or dropped: the number
    of rows and the latest change (every store takes a new `seq`; a drop lowers the count;
    a drop then a store re-using its `seq` has a new `received_at`)."""
    count = db.execute("SELECT count(*) FROM directory").fetchone()[0]
    last = db.execute(
        "SELECT seq, actor, received_at FROM directory ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return (count, *(last or ()))


def actors_on_host(db: Database, host: str) -> list[str]:
    """The listed schools whose actor lives on `host` (for NAME@HOST look-ups)."""
    rows = db.execute(
        "SELECT actor FROM directory WHERE host = ? AND deleted_at IS NULL ORDER BY actor",
        [host],
    ).fetchall()
    return [r[0] for r in rows]


def confirmed_documents(db: Database, actors: list[str]) -> dict[str, dict[str, Any]]:
    """The signed profile documents of those of `actors` listed with a key their author's
    actor was seen publishing (what `changes_since` hands on too)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(actors), 500):
        chunk = actors[start : start + 500]
        rows = db.execute(
            "SELECT actor, document FROM directory WHERE deleted_at IS NULL "
            f"AND key_confirmed_at IS NOT NULL AND actor IN ({', '.join('?' for _ in chunk)})",
            chunk,
        ).fetchall()
        found.update((actor, json.loads(document)) for actor, document in rows)
    return found
