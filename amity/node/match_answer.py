"""A hub's answer to a match query: its directory ranked for the querying school with the
matching engine, each candidate with its signed profile as the hub holds it."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from ..federation import listing_facts
from ..federation.match_query import MAX_ANSWER_BYTES
from ..protocol.matching import School, school_from_profile
from ..protocol.profile_document import profile_from_document
from .clock import read_time
from .matching import ranked
from .node import Node

_ROW_FIELDS = (
    "name", "country", "timezone", "ages", "subjects", "modes", "school_days", "school_hours",
    "terms", "capacity",
)  # fmt: skip


def school_from_document(
    document: dict[str, Any], endorsed_by: frozenset[str] = frozenset()
) -> School:
    """The School a signed profile document describes (its proof checked by the caller);
    `endorsed_by`: the authorities whose endorsement of it counts (checked too)."""
    return school_from_profile(
        document["attributedTo"],
        profile_from_document(document),
        endorsed_by=endorsed_by,
        last_active=read_time(document.get("updated")),
    )


def listed_querier(node: Node, actor: str) -> dict[str, Any] | None:
    """The querying school's profile as this node's directory holds it, if it does."""
    return listing_facts.confirmed_documents(node.store.db, [actor]).get(actor)


def answer(node: Node, querier: School, week: date, limit: int) -> dict[str, Any]:
    """The match answer for `querier`: the best `limit` listings for `week`, as long as
    the answer stays under MAX_ANSWER_BYTES."""
    db = node.store.db
    # Ranked like this node's own suggestions (its directory's index, its blocks and trust);
    # a few more than asked, as listings whose key is only a hub's word are not handed on.
    matches = ranked(node, querier, week, 2 * limit)
    documents = listing_facts.confirmed_documents(db, [m.other.actor for m in matches])
    candidates: list[dict[str, Any]] = []
    size = 0
    for match in matches:
        document = documents.get(match.other.actor)
        if document is None:  # its key is only a hub's word so far: not handed on
            continue
        item = {
            "actor": match.other.actor,
            "score": match.score,
            "reasons": list(match.reasons),
            "profile": document,
        }
        size += len(json.dumps(item, ensure_ascii=False).encode())
        if size > MAX_ANSWER_BYTES:
            break
        candidates.append(item)
        if len(candidates) == limit:
            break
    return {"actor": querier.actor, "week": week.isoformat(), "candidates": candidates}
