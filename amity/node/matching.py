"""Partner suggestions for this node's school: its profile, the directory, its blocks and
the authorities it trusts, handed to the matching engine (protocol/matching.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlite_utils import Database

from ..federation import directory, endorsement_store
from ..federation.blocklist import block_targets
from ..protocol.live_window import coming_monday, monday_of
from ..protocol.matching import (
    Match,
    MatchContext,
    School,
    evaluate,
    exclusions,
    rank,
    school_from_profile,
)
from .clock import format_time, parse_time
from .errors import NodeError
from .node import Node

# Partnership states that hold a place, and that answer a proposal (STYLE.md's life cycle).
_HOLDS_PLACE = ("accepted",)
_ANSWERED = ("accepted", "declined", "ended")
_EXPIRED = ("expired",)


def parse_week(text: str) -> date:
    """The Monday `text` (YYYY-MM-DD) names; NodeError naming the Monday meant otherwise."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise NodeError(f"--week {text!r}: give a Monday as YYYY-MM-DD, e.g. 2026-12-07") from None
    if day.weekday() != 0:
        raise NodeError(
            f"--week {text}: is a {day.strftime('%A')}, not a Monday; "
            f"did you mean {monday_of(day).isoformat()}?"
        )
    return day


def default_week(node: Node) -> date:
    """The coming week's Monday, by the node's clock."""
    return coming_monday(node.clock())


@dataclass(frozen=True)
class Explanation:
    """Why a school is or is not a candidate: the constraints it fails, or its match."""

    actor: str
    name: str
    exclusions: list[str]
    match: Match | None

    def to_json(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "name": self.name,
            "candidate": self.match is not None,
            "exclusions": self.exclusions,
            "match": self.match.to_json() if self.match else None,
        }


def own_school(node: Node) -> School:
    """This node's school as matching reads it (free places: capacity less partnerships)."""
    if node.config.kind != "school":
        raise NodeError(
            f"this node is a {node.config.kind}; `amity match` suggests partners for a school"
        )
    stored = node.profile()
    if stored is None:
        raise NodeError(
            "this node has no school profile yet; import one with: "
            f"amity profile import FILE.json --data {node.config.data_dir}"
        )
    taken = _partnership_count(node.store.db, node.config.handle, _HOLDS_PLACE)
    return school_from_profile(
        node.urls.id,
        stored.data,
        capacity=max(0, int(stored.data["capacity"]) - taken),
        last_active=parse_time(stored.updated),
    )


def context(node: Node, week: date, candidates: list[str]) -> MatchContext:
    """The week, the node's time, which of `candidates` it blocks, whom it trusts."""
    db = node.store.db
    targets = {row[0] for row in db.execute("SELECT target FROM blocks")}
    return MatchContext(
        week=week,
        now=node.clock(),
        blocked=frozenset(a for a in candidates if targets and targets & block_targets(a)),
        trusted=frozenset(endorsement_store.trusted(db)),
    )


def suggestions(node: Node, week: date, limit: int) -> tuple[School, list[Match]]:
    """This node's school and its best `limit` candidates for `week`, best first."""
    me = own_school(node)
    rows = directory.match_rows(
        node.store.db,
        me.country,
        me.ages,
        list(me.instruction),
        [*me.instruction, *me.learning],
    )
    others = _schools(node, [row for row in rows if row["actor"] != me.actor])
    ctx = context(node, week, [school.actor for school in others])
    return me, rank(me, others, ctx, limit)


def explain(node: Node, target: str, week: date) -> tuple[School, Explanation]:
    """Every constraint that excludes `target` (an actor URL or NAME@HOST in the
    directory), or its full match."""
    me = own_school(node)
    blocked = _blocked_target(node.store.db, target)
    if blocked is not None:
        # A block drops the school's listing, so the directory no longer names it.
        sentence = f"You block this school (amity unblock {blocked} lifts the block)."
        return me, Explanation(target, target, [sentence], None)
    actor = resolve_listed(node.store.db, target)
    if actor == me.actor:
        raise NodeError(f"{target} is this node's own school; name another school")
    row = directory.match_row(node.store.db, actor)
    if row is None:  # withdrawn since it was found
        raise NodeError(f"{target} is no longer in this node's directory")
    other = _schools(node, [row])[0]
    ctx = context(node, week, [actor])
    found = exclusions(me, other, ctx)
    if row["paused"]:
        found.append(f"{other.name} has paused its listing (on holiday, or full).")
    match = None if found else evaluate(me, other, ctx)
    return me, Explanation(actor, other.name, found, match)


def resolve_listed(db: Database, target: str) -> str:
    """The actor id of a school in the directory named by URL or NAME@HOST."""
    if target.startswith(("http://", "https://")):
        if directory.match_row(db, target) is not None:
            return target
    else:
        name, _, host = target.removeprefix("acct:").lstrip("@").partition("@")
        if name and host:
            for actor in directory.actors_on_host(db, host.lower()):
                if actor.rstrip("/").rsplit("/", 1)[-1] == name:
                    return actor
        else:
            raise NodeError(f"{target!r}: name a school by actor URL or as NAME@HOST")
    raise NodeError(
        f"{target} is not in this node's directory; `amity directory` lists the schools it knows"
    )


def _blocked_target(db: Database, target: str) -> str | None:
    """The block (actor URL or domain) that covers `target` (a URL or NAME@HOST), or None."""
    targets = {row[0] for row in db.execute("SELECT target FROM blocks")}
    if not targets:
        return None
    if target.startswith(("http://", "https://")):
        covering = block_targets(target) & targets
    else:
        name, _, host = target.removeprefix("acct:").lstrip("@").partition("@")
        host = host.lower()
        covering = {t for t in targets if t in (host, host.split(":")[0])}
        covering |= {
            t
            for t in targets
            if "://" in t and t.rstrip("/").rsplit("/", 1)[-1] == name and block_targets(t) & {host}
        }
    return min(covering) if covering else None


def _schools(node: Node, rows: list[dict[str, Any]]) -> list[School]:
    """Schools from directory rows, with the endorsements that count now and what this
    node knows of how each answered its school's proposals."""
    db = node.store.db
    endorsed = endorsement_store.endorsed_by(
        db, [r["actor"] for r in rows], format_time(node.clock())
    )
    history = _answer_history(db, node.config.handle)
    schools = []
    for row in rows:
        profile = {
            field: row[field]
            for field in (
                "name", "country", "timezone", "ages", "subjects", "modes", "school_days",
                "school_hours", "terms", "capacity",
            )
        }  # fmt: skip
        profile["languages"] = {"instruction": row["instruction"], "learning": row["learning"]}
        answered, expired = history.get(row["actor"], (0, 0))
        schools.append(
            school_from_profile(
                row["actor"],
                profile,
                endorsed_by=frozenset(endorsed[row["actor"]]),
                last_active=_when(row["updated"]),
                proposals_answered=answered,
                proposals_expired=expired,
            )
        )
    return schools


def _when(text: object) -> datetime | None:
    """A listing's `updated` time (xsd:dateTime, as checked when it was stored)."""
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def _has_partnerships(db: Database) -> bool:
    """The partnerships table (issue 9 item 4) is there with the columns read here."""
    if "partnerships" not in db.table_names():
        return False
    return {"handle", "partner", "role", "state"} <= set(db["partnerships"].columns_dict)


def _partnership_count(db: Database, handle: str, states: tuple[str, ...]) -> int:
    if not _has_partnerships(db):
        return 0
    marks = ", ".join("?" for _ in states)
    row = db.execute(
        f"SELECT count(*) FROM partnerships WHERE handle = ? AND state IN ({marks})",
        [handle, *states],
    ).fetchone()
    return int(row[0])


def _answer_history(db: Database, handle: str) -> dict[str, tuple[int, int]]:
    """For each school this school proposed to: (proposals answered, proposals expired)."""
    if not _has_partnerships(db):
        return {}
    found: dict[str, tuple[int, int]] = {}
    marks_a = ", ".join("?" for _ in _ANSWERED)
    marks_e = ", ".join("?" for _ in _EXPIRED)
    rows = db.execute(
        f"SELECT partner, sum(state IN ({marks_a})), sum(state IN ({marks_e})) "
        "FROM partnerships WHERE handle = ? AND role = 'outgoing' GROUP BY partner",
        [*_ANSWERED, *_EXPIRED, handle],
    ).fetchall()
    for partner, answered, expired in rows:
        found[partner] = (int(answered or 0), int(expired or 0))
    return found
