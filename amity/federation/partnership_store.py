"""The partnerships table: proposals and partnerships per local school, and what others
read from it (capacity used, proposal history).

Every function takes the sqlite-utils Database and runs on the node's database thread.
Every change of state goes through `set_state`, which checks the life cycle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from ..protocol.partnership import OPEN_STATES, check_transition
from . import endorsement_store, limits

SHORT_LENGTH = 8  # hex digits of the id a person types; any unique prefix of 4+ works
MIN_PREFIX = 4


@dataclass(frozen=True)
class Proposal:
    """One row: a partnership as one local school holds it."""

    handle: str
    id: str
    short: str
    role: str  # outgoing, incoming or arranged
    proposer: str
    partner: str
    partner_name: str
    state: str
    signed: bool
    document: dict[str, Any]
    offer_id: str
    inboxes: dict[str, str]  # actor id -> inbox, for every other party
    end_time: float
    created_at: float
    changed_at: float
    reason: str | None


def short_id(partnership_id: str) -> str:
    """The id shown to a person: the first hex digits of the SHA-256 of the full id (ids are
    chosen by other nodes, so their own text may be long or alike)."""
    return hashlib.sha256(partnership_id.encode()).hexdigest()[:SHORT_LENGTH]


def insert(db: Database, proposal: Proposal, host: str) -> None:
    db.table("partnerships").insert(
        {
            "handle": proposal.handle,
            "id": proposal.id,
            "short": proposal.short,
            "role": proposal.role,
            "proposer": proposal.proposer,
            "partner": proposal.partner,
            "partner_name": proposal.partner_name,
            "host": host,
            "state": proposal.state,
            "signed": int(proposal.signed),
            "document": json.dumps(proposal.document, ensure_ascii=False),
            "offer_id": proposal.offer_id,
            "inboxes": json.dumps(proposal.inboxes),
            "end_time": proposal.end_time,
            "created_at": proposal.created_at,
            "changed_at": proposal.changed_at,
            "reason": proposal.reason,
        }
    )


_COLUMNS = (
    "handle, id, short, role, proposer, partner, state, signed, document, offer_id, inboxes, "
    "end_time, created_at, changed_at, reason, partner_name"
)


def _proposal(row: Any) -> Proposal:
    return Proposal(
        handle=row[0],
        id=row[1],
        short=row[2],
        role=row[3],
        proposer=row[4],
        partner=row[5],
        state=row[6],
        signed=bool(row[7]),
        document=json.loads(row[8]),
        offer_id=row[9],
        inboxes=json.loads(row[10]),
        end_time=float(row[11]),
        created_at=float(row[12]),
        changed_at=float(row[13]),
        reason=row[14],
        partner_name=row[15] or row[5],
    )


def get(db: Database, handle: str, partnership_id: str) -> Proposal | None:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM partnerships WHERE handle = ? AND id = ?",
        [handle, partnership_id],
    ).fetchone()
    return None if row is None else _proposal(row)


def holders(db: Database, partnership_id: str) -> list[Proposal]:
    """Every local school's row of one partnership (a node may host both schools)."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM partnerships WHERE id = ? ORDER BY handle", [partnership_id]
    ).fetchall()
    return [_proposal(row) for row in rows]


def proposals(db: Database, handle: str, states: tuple[str, ...] | None = None) -> list[Proposal]:
    """One school's rows, newest first; only those in `states` when given."""
    where, args = "handle = ?", [handle]
    if states:
        where += f" AND state IN ({', '.join('?' * len(states))})"
        args += list(states)
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM partnerships WHERE {where} ORDER BY created_at DESC, id", args
    ).fetchall()
    return [_proposal(row) for row in rows]


def find(db: Database, handle: str, typed: str) -> list[Proposal]:
    """The school's rows whose short id starts with `typed` (or whose id is `typed`)."""
    typed = typed.strip().lower()
    if len(typed) < MIN_PREFIX and "://" not in typed:
        return []
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM partnerships WHERE handle = ? AND (id = ? OR short LIKE ?)",
        [handle, typed, typed.replace("%", "").replace("_", "") + "%"],
    ).fetchall()
    return [_proposal(row) for row in rows]


def set_state(
    db: Database,
    proposal: Proposal,
    state: str,
    now: float,
    *,
    reason: str | None = None,
    document: dict[str, Any] | None = None,
    signed: bool | None = None,
) -> None:
    """Move one row to `state` (checked against the life cycle); `document` replaces the
    held object (more proofs), `signed` notes this school's own proof."""
    if state != proposal.state:
        check_transition(proposal.state, state)
    db.execute(
        "UPDATE partnerships SET state = ?, changed_at = ?, reason = coalesce(?, reason), "
        "document = ?, signed = ? WHERE handle = ? AND id = ?",
        [
            state,
            now,
            reason,
            json.dumps(document or proposal.document, ensure_ascii=False),
            int(proposal.signed if signed is None else signed),
            proposal.handle,
            proposal.id,
        ],
    )


def expire_due(db: Database, now: float) -> int:
    """Pending proposals whose Offer's endTime has passed become expired (each node on its
    own clock; no activity is sent)."""
    return db.execute(
        "UPDATE partnerships SET state = 'expired', changed_at = ? "
        "WHERE state = 'pending' AND end_time <= ?",
        [now, now],
    ).rowcount


def open_between(db: Database, handle: str, first: str, second: str) -> Proposal | None:
    """A pending or accepted partnership of `handle` between the schools `first` and
    `second` (in either order), if there is one."""
    for proposal in proposals(db, handle, OPEN_STATES):
        partners = set(proposal.document.get("partners", []))
        if proposal.proposer not in partners and not proposal.signed:
            continue  # arranged by a third party and not taken up: it blocks nothing
        if partners == {first, second}:
            return proposal
    return None


def places_taken(db: Database, handle: str) -> int:
    """Places of the school's capacity in use: partnerships in force, and proposals that
    carry its proof (it proposed, or accepted an arranged pair the other has not yet)."""
    row = db.execute(
        "SELECT count(*) FROM partnerships WHERE handle = ? AND role != 'arranged' AND "
        "(state = 'accepted' OR (state = 'pending' AND signed = 1))",
        [handle],
    ).fetchone()
    return int(row[0])


def active_partnerships(db: Database, handle: str) -> int:
    """How many partnerships of the school are in force."""
    row = db.execute(
        "SELECT count(*) FROM partnerships WHERE handle = ? AND role != 'arranged' "
        "AND state = 'accepted'",
        [handle],
    ).fetchone()
    return int(row[0])


def proposal_history(
    db: Database, actors: list[str] | None = None, now: float | None = None
) -> dict[str, tuple[int, int]]:
    """Per remote school: (answered, expired) counts of the proposals this node's schools
    (or its authority) sent it; with `now`, a pending one past its endTime counts as
    expired. Actors never asked are left out; `actors` None: every school asked."""
    found: dict[str, tuple[int, int]] = {}
    if actors is None:
        rows = db.execute(
            "SELECT partner, state, end_time FROM partnerships WHERE role = 'outgoing'"
        ).fetchall()
    else:
        rows = []
        for start in range(0, len(actors), 500):
            chunk = actors[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows += db.execute(
                f"SELECT partner, state, end_time FROM partnerships "
                f"WHERE role = 'outgoing' AND partner IN ({marks})",
                chunk,
            ).fetchall()
    for partner, state, end_time in rows:
        answered, expired = found.get(partner, (0, 0))
        if state in ("accepted", "declined", "left"):
            answered += 1
        elif state == "expired" or (state == "pending" and now is not None and end_time <= now):
            expired += 1
        found[partner] = (answered, expired)
    return found


def quota_refusal(db: Database, proposer: str, host: str, handles: list[str]) -> str | None:
    """Why a stranger's new proposal to the schools `handles` finds no room here, or None."""
    for handle in handles:
        waiting = db.execute(
            "SELECT count(*) FROM partnerships WHERE handle = ? AND state = 'pending' "
            "AND role = 'incoming'",
            [handle],
        ).fetchone()[0]
        if waiting >= limits.PENDING_PROPOSALS_PER_SCHOOL:
            return (
                f"this school has {waiting} proposals waiting for an answer "
                f"(at most {limits.PENDING_PROPOSALS_PER_SCHOOL})"
            )
    total = db.execute(
        "SELECT count(*) FROM partnerships WHERE host = ? AND role = 'incoming'", [host]
    ).fetchone()[0]
    if total >= limits.PARTNERSHIPS_PER_HOST:
        return f"this node keeps at most {limits.PARTNERSHIPS_PER_HOST} proposals from {host}"
    if proposer in endorsement_store.trusted(db):
        return None
    pending_actor = db.execute(
        "SELECT count(*) FROM partnerships WHERE proposer = ? AND state = 'pending' "
        "AND role = 'incoming'",
        [proposer],
    ).fetchone()[0]
    if pending_actor >= limits.PENDING_PROPOSALS_PER_ACTOR:
        return (
            f"{proposer} already has {pending_actor} proposals waiting here "
            f"(at most {limits.PENDING_PROPOSALS_PER_ACTOR})"
        )
    pending_host = db.execute(
        "SELECT count(*) FROM partnerships WHERE host = ? AND role = 'incoming' "
        "AND state = 'pending'",
        [host],
    ).fetchone()[0]
    if pending_host >= limits.PENDING_PROPOSALS_PER_HOST:
        return (
            f"{host} already has {pending_host} proposals waiting here "
            f"(at most {limits.PENDING_PROPOSALS_PER_HOST})"
        )
    return None
