"""Partner suggestions for this node's school: its profile, the directory, its blocks and
the authorities it trusts, handed to the matching engine (protocol/matching.py)."""

from __future__ import annotations

import gc
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from typing import Any

from sqlite_utils import Database

from ..federation import endorsement_store, listing_facts, partnership_store
from ..federation.blocklist import block_targets
from ..protocol.live_window import coming_monday, in_reach, monday_of
from ..protocol.match_index import LayeredIndex, MatchIndex
from ..protocol.matching import (
    Match,
    MatchContext,
    School,
    evaluate,
    exclusions,
    school_from_profile,
)
from ..protocol.partnership import OPEN_STATES
from .clock import format_time, parse_time, read_time
from .errors import NodeError
from .node import Node

# Partnership states that hold a place, and that answer a proposal (STYLE.md's life cycle).


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_week(text: str, example: date) -> date:
    """The Monday `text` (YYYY-MM-DD) names; NodeError naming the Monday meant otherwise
    (`example`: a Monday to show, such as the coming one)."""
    try:
        # fromisoformat also reads week dates (2026-W51-1): only YYYY-MM-DD is meant.
        day = date.fromisoformat(text) if _DAY.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None:
        raise NodeError(f"--week {text!r}: give a Monday as YYYY-MM-DD, e.g. {example}")
    if day.weekday() != 0:
        raise NodeError(
            f"--week {text}: is a {day.strftime('%A')}, not a Monday; "
            f"did you mean {monday_of(day).isoformat()}?"
        )
    if not in_reach(day, example):
        raise NodeError(f"--week {text}: give a week within ten years of {example}")
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
    if node.kind != "school":
        raise NodeError(f"this node is a {node.kind}; `amity match` suggests partners for a school")
    stored = node.profile()
    if stored is None:
        raise NodeError(
            "this node has no school profile yet; import one with: "
            f"amity profile import FILE.json --data {node.config.data_dir}"
        )
    # Partnerships and this school's own pending proposals hold places.
    taken = partnership_store.places_taken(node.store.db, node.handle)
    return school_from_profile(
        node.urls.id,
        stored.data,
        capacity=max(0, int(stored.data["capacity"]) - taken),
        last_active=parse_time(stored.updated),
    )


def context(node: Node, week: date, candidates: list[str]) -> MatchContext:
    """The week, the node's time, which of `candidates` it blocks or already has a
    partnership or proposal with (both are left out), whom it trusts."""
    db = node.store.db
    targets = {row[0] for row in db.execute("SELECT target FROM blocks")}
    blocked = {a for a in candidates if targets and targets & block_targets(a)}
    return MatchContext(
        week=week,
        now=node.clock(),
        blocked=frozenset(blocked | open_partners(node)),
        trusted=frozenset(endorsement_store.trusted(db)),
    )


def open_partners(node: Node) -> frozenset[str]:
    """The schools this node's school has a pending proposal or a partnership with:
    suggesting them again could only lead to a duplicate proposal."""
    me = node.urls.id
    found: set[str] = set()
    for proposal in partnership_store.proposals(node.store.db, node.handle, OPEN_STATES):
        partners = set(proposal.document.get("partners", []))
        if me in partners:
            found |= partners - {me}
    return frozenset(found)


def suggestions(
    node: Node, week: date, limit: int, *, once: bool = False
) -> tuple[School, list[Match]]:
    """This node's school and its best `limit` candidates for `week`, best first. `once`:
    the process ranks only this once (`amity match`), so the directory's index is not
    built; the listings SQLite's pre-filter lets through are ranked instead."""
    me = own_school(node)
    return me, (ranked_once if once else ranked)(node, me, week, limit)


def ranked(node: Node, me: School, week: date, limit: int) -> list[Match]:
    """The best `limit` schools of this node's directory as partners for `me` in `week`,
    best first: `matching.rank` over the directory, through its index (built once per
    process, and again when a listing changes)."""
    cached = _directory_index(node)
    targets = frozenset(row[0] for row in node.store.db.execute("SELECT target FROM blocks"))
    return _rank_in(node, cached.index, me, week, limit, cached.blocked(targets))


def ranked_once(node: Node, me: School, week: date, limit: int) -> list[Match]:
    """`ranked`'s result, for a process that ranks once: only the listings that pass
    SQLite's pre-filter (listing_facts.match_rows) are read and indexed, and not kept."""
    with _no_collection():
        rows = listing_facts.match_rows(
            node.store.db,
            me.country,
            me.ages,
            list(me.instruction),
            [*me.instruction, *me.learning],
        )
        index = MatchIndex([_school_of_row(row) for row in rows if row["actor"] != me.actor])
    targets = frozenset(row[0] for row in node.store.db.execute("SELECT target FROM blocks"))
    blocked = frozenset(
        s.actor for s in index.schools if targets and targets & block_targets(s.actor)
    )
    return _rank_in(node, index, me, week, limit, blocked)


def _rank_in(
    node: Node,
    index: MatchIndex | LayeredIndex,
    me: School,
    week: date,
    limit: int,
    blocked: frozenset[str],
) -> list[Match]:
    """Rank `index` for `me`, with this node's trust, endorsements and answer history."""
    db = node.store.db
    ctx = MatchContext(
        week=week,
        now=node.clock(),
        blocked=blocked | open_partners(node),
        trusted=frozenset(endorsement_store.trusted(db)),
    )
    now = format_time(node.clock())
    endorsed = {
        actor: frozenset(authorities)
        for actor, authorities in endorsement_store.endorsed_schools(db, now).items()
    }
    history = partnership_store.proposal_history(db, now=node.clock().timestamp())
    return index.rank(me, ctx, limit, endorsed, history)


@dataclass
class _CachedIndex:
    """A directory's index as of `version` (listing_facts.listings_version): the index built
    from every listing, the listings changed since (None: dropped), which of its schools
    each set of block targets covers, and what tells whether it can be brought up to date
    from the rows stored since: the directory's actors and rows then, and its last row."""

    version: tuple[Any, ...]
    base: MatchIndex
    actors: set[str]
    changes: dict[str, School | None] = field(default_factory=dict)
    _blocked: dict[frozenset[str], frozenset[str]] = field(default_factory=dict)

    @cached_property
    def index(self) -> MatchIndex | LayeredIndex:
        return LayeredIndex(self.base, self.changes) if self.changes else self.base

    def blocked(self, targets: frozenset[str]) -> frozenset[str]:
        found = self._blocked.get(targets)
        if found is None:
            found = frozenset(
                s.actor for s in self.index.schools if targets and targets & block_targets(s.actor)
            )
            self._blocked = {targets: found}  # the blocks rarely change: keep the last
        return found


# One index per database file in this process (a serving node, or a process asking many
# times), brought up to date when a listing changes; a few data directories at most.
_INDEXES: dict[str, _CachedIndex] = {}
_INDEXES_KEPT = 4
_INDEXES_LOCK = threading.Lock()
# Changed listings kept beside the index before it is built again from every listing.
_CHANGES_KEPT = 2000


@contextmanager
def _no_collection() -> Iterator[None]:
    """No garbage collection inside: building an index makes many small objects, none of
    them garbage, and collecting while it does only costs time."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _directory_index(node: Node) -> _CachedIndex:
    """The index of this node's directory, built when first asked, brought up to date
    from the rows stored since when it changed, or built again."""
    db = node.store.db
    key = str(node.config.data_dir.resolve())
    version = listing_facts.listings_version(db)
    cached = _INDEXES.get(key)
    if cached is not None and cached.version == version:
        return cached
    with _no_collection():
        found = _brought_up_to_date(db, cached, version) if cached is not None else None
        if found is None:
            actors = listing_facts.listing_actors(db)
            schools = [_school_of_row(row) for row in listing_facts.listing_rows(db)]
            found = _CachedIndex(version, MatchIndex(schools), actors)
    with _INDEXES_LOCK:
        if key not in _INDEXES and len(_INDEXES) >= _INDEXES_KEPT:
            _INDEXES.pop(next(iter(_INDEXES)))
        _INDEXES[key] = found
    return found


def _brought_up_to_date(
    db: Database, cached: _CachedIndex, version: tuple[Any, ...]
) -> _CachedIndex | None:
    """`cached` with the rows stored since it was made; None when that cannot tell the
    whole change (a row dropped: the count is off; the last row seen is not there) or
    when the changes are many."""
    if len(cached.version) < 4 or len(version) < 4:
        return None
    count, seq, actor, received = cached.version
    rows = listing_facts.listing_changes(db, seq)
    if not rows or rows[0][:3] != (seq, actor, received):
        return None
    newer = rows[1:]
    new_actors = {row[1] for row in newer} - cached.actors
    if version[0] != count + len(new_actors) or len(cached.changes) + len(newer) > _CHANGES_KEPT:
        return None
    changes = dict(cached.changes)
    for _, listed, _, row in newer:
        changes[listed] = _school_of_row(row) if row is not None else None
    return _CachedIndex(version, cached.base, cached.actors | new_actors, changes)


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
    row = listing_facts.match_row(node.store.db, actor)
    if row is None:  # withdrawn since it was found
        raise NodeError(f"{target} is no longer in this node's directory")
    other = _schools(node, [row])[0]
    ctx = context(node, week, [actor])
    partnered = actor in ctx.blocked and actor in open_partners(node)
    if partnered:  # not blocked: say what it is instead
        ctx = replace(ctx, blocked=ctx.blocked - {actor})
    found = exclusions(me, other, ctx)
    if partnered:
        found.append(
            "You already have a partnership or a pending proposal with this school "
            "(see: amity proposals)."
        )
    if row["paused"]:
        found.append(f"{other.name} has paused its listing (on holiday, or full).")
    match = None if found else evaluate(me, other, ctx)
    return me, Explanation(actor, other.name, found, match)


def resolve_listed(db: Database, target: str) -> str:
    """The actor id of a school in the directory named by URL or NAME@HOST."""
    if target.startswith(("http://", "https://")):
        if listing_facts.match_row(db, target) is not None:
            return target
    else:
        name, _, host = target.removeprefix("acct:").lstrip("@").partition("@")
        if name and host:
            for actor in listing_facts.actors_on_host(db, host.lower()):
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
    history = partnership_store.proposal_history(db, now=node.clock().timestamp())
    return [
        _school_of_row(row, frozenset(endorsed[row["actor"]]), history.get(row["actor"], (0, 0)))
        for row in rows
    ]


def _school_of_row(
    row: dict[str, Any],
    endorsed_by: frozenset[str] = frozenset(),
    answers: tuple[int, int] = (0, 0),
) -> School:
    """The School a directory row describes; `answers`: (proposals answered, expired)."""
    profile = {
        name: row[name]
        for name in (
            "name", "country", "timezone", "ages", "subjects", "modes", "school_days",
            "school_hours", "terms", "capacity",
        )
    }  # fmt: skip
    profile["languages"] = {"instruction": row["instruction"], "learning": row["learning"]}
    return school_from_profile(
        row["actor"],
        profile,
        endorsed_by=endorsed_by,
        last_active=read_time(row["updated"]),
        proposals_answered=answers[0],
        proposals_expired=answers[1],
    )
