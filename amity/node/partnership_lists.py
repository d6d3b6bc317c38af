"""What a school's proposals and partnerships look like to its teacher: the lists (with
expiry applied on the node's clock), why an Offer was not delivered, the `--json` shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..federation import partnership_store as store
from ..federation.partnership_store import Proposal
from .clock import format_time
from .node import Node


def list_proposals(node: Node) -> list[Proposal]:
    """Every proposal of this school (incoming, outgoing, arranged), newest first, with
    expiry applied on this node's clock."""
    db = node.store.db
    with db.atomic():
        store.expire_due(db, node.clock().timestamp())
    return store.proposals(db, node.handle)


def list_partnerships(node: Node) -> list[Proposal]:
    """This school's partnerships in force, and those that ended."""
    return [p for p in list_proposals(node) if p.state in ("accepted", "left")]


def undelivered(node: Node, rows: list[Proposal]) -> dict[str, str]:
    """Why the Offer of a pending proposal made here was not delivered (a dead delivery:
    the partner's node refused it, say for want of capacity), by partnership id."""
    found: dict[str, str] = {}
    for proposal in rows:
        if proposal.state != "pending" or proposal.role == "incoming":
            continue
        row = node.store.db.execute(
            "SELECT last_error FROM deliveries WHERE activity_id = ? AND state = 'dead' "
            "AND last_error IS NOT NULL ORDER BY id LIMIT 1",
            [proposal.offer_id],
        ).fetchone()
        if row is not None:
            found[proposal.id] = str(row[0])
    return found


def describe(proposal: Proposal, problem: str | None = None) -> dict[str, Any]:
    """One proposal as `--json` shows it; `problem`: why its Offer was not delivered."""
    doc = proposal.document
    return {
        "id": proposal.short,
        "partnership": proposal.id,
        "role": proposal.role,
        "state": proposal.state,
        "partner": proposal.partner,
        "partner_name": proposal.partner_name,
        "proposer": proposal.proposer,
        "partners": doc.get("partners"),
        "working_languages": doc.get("workingLanguages"),
        "charter": doc.get("charter"),
        "starter_project": doc.get("starterProject"),
        "message": doc.get("content"),
        "proofs": len(doc.get("proof", [])),
        "expires": format_time(datetime.fromtimestamp(proposal.end_time, UTC)),
        "reason": proposal.reason,
        "not_delivered": problem,
        "document": doc,
    }
