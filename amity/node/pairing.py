"""Pairing rounds on an authority or hub: the opted-in schools of its directory (and those
it hosts) handed to protocol/pairing.py, and the round's pairs sent as proposals."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..federation import endorsement_store
from ..federation.blocklist import block_targets
from ..protocol.actor import ActorUrls
from ..protocol.errors import ProtocolError
from ..protocol.matching import MatchContext, School, school_from_profile
from ..protocol.pairing import Pair, RoundReport, pairing_round
from ..protocol.pairing_candidates import Progress
from ..protocol.pairing_score import PairScorer, pair_explainer
from ..protocol.profile_document import profile_from_document
from . import partnerships
from .clock import format_time, read_time
from .errors import NodeError
from .liveness import STALE_AFTER
from .node import Node

ROUND_KINDS = ("authority", "hub")
# Import-format fields as the published profile object names them (profile_document.py).
_FIELDS = {
    "country": "country",
    "timezone": "timezone",
    "languages": "languages",
    "ages": "ages",
    "subjects": "subjects",
    "modes": "modes",
    "school_days": "schoolDays",
    "school_hours": "schoolHours",
    "terms": "terms",
    "capacity": "capacity",
}


@dataclass(frozen=True)
class RoundInput:
    """The schools of a round and where each came from."""

    schools: list[School]
    names: dict[str, str]
    hosted: frozenset[str]  # actors this node hosts
    documents: dict[str, dict[str, Any]]  # each school's signed profile object


def check_round_node(node: Node) -> None:
    """NodeError unless this node may run pairing rounds."""
    if node.config.kind not in ROUND_KINDS:
        raise NodeError(
            f"this node is a {node.config.kind}; only authority and hub nodes run pairing "
            'rounds (a school takes part by setting "pairing_rounds": true in its profile)'
        )


def _school(actor: str, document: dict[str, Any], extra: dict[str, Any]) -> School:
    profile = {field: document.get(key) for field, key in _FIELDS.items() if key in document}
    if "name" in document:
        profile["name"] = document["name"]
    else:
        profile["name_map"] = document["nameMap"]
    return school_from_profile(actor, profile, **extra)


def round_input(node: Node, countries: Sequence[str]) -> RoundInput:
    """The opted-in schools, in `countries` if any are given: the directory's listings that
    are neither paused, stale, withdrawn, blocked nor unconfirmed (their key known only from a
    hub), and the schools this node hosts. Capacity is the free capacity the profile states."""
    db = node.store.db
    moment = node.clock()
    now, stale_before = format_time(moment), format_time(moment - STALE_AFTER)
    where = [
        "deleted_at IS NULL",
        "paused = 0",
        "key_confirmed_at IS NOT NULL",
        "updated >= ?",
        "json_extract(document, '$.pairingRounds') = 1",
    ]
    args: list[Any] = [stale_before]
    if countries:
        where.append(f"country IN ({', '.join('?' for _ in countries)})")
        args += list(countries)
    rows = db.execute(
        f"SELECT actor, document FROM directory WHERE {' AND '.join(where)} ORDER BY actor", args
    ).fetchall()
    blocks = {row[0] for row in db.execute("SELECT target FROM blocks")}
    found: dict[str, dict[str, Any]] = {}
    for actor, text in rows:
        if blocks and blocks & block_targets(actor):
            continue
        found[actor] = json.loads(text)
    hosted: set[str] = set()
    for handle, data, doc_text in db.execute(
        "SELECT handle, data, document FROM profiles WHERE deleted_at IS NULL"
    ).fetchall():
        profile, document = json.loads(data), json.loads(doc_text)
        if profile.get("pairing_rounds") is not True or document.get("paused") is True:
            continue
        if countries and profile["country"] not in countries:
            continue
        actor = ActorUrls(node.config.base_url, handle).id
        found[actor] = document
        hosted.add(actor)
    endorsed = endorsement_store.endorsed_by(db, list(found), now)
    schools, names = [], {}
    for actor, document in sorted(found.items()):
        extra = {
            "endorsed_by": frozenset(endorsed.get(actor, [])),
            "last_active": read_time(document.get("updated")),
        }
        school = _school(actor, document, extra)
        schools.append(school)
        names[actor] = school.name
    return RoundInput(schools, names, frozenset(hosted), found)


def run_round(
    node: Node, countries: Sequence[str], week: date, progress: Progress | None = None
) -> tuple[RoundInput, RoundReport]:
    """The round over the opted-in schools for `week` (nothing is sent)."""
    check_round_node(node)
    given = round_input(node, countries)
    # Blocked schools are left out above, so the context blocks nobody (PairScorer).
    ctx = MatchContext(
        week=week,
        now=node.clock(),
        trusted=frozenset(endorsement_store.trusted(node.store.db)),
    )
    report = pairing_round(
        given.schools, PairScorer(given.schools, ctx), pair_explainer(ctx), week, progress=progress
    )
    return given, report


def check_can_send(node: Node) -> None:
    """NodeError when this node cannot send a round's proposals (checked before a round)."""
    check_round_node(node)


def send_proposals(
    node: Node,
    given: RoundInput,
    pairs: list[Pair],
    actors: dict[str, dict[str, Any] | str],
) -> list[dict[str, Any]]:
    """Send each pair a proposal made by this node (partnerships.arrange), which both
    schools accept as usual; `actors` holds each school's fetched actor, or why it could
    not be fetched. One result per pair: the proposal's short id, or why it was not sent.

    SENDING CALL SITE: the one place a round's pairs become proposals."""
    check_can_send(node)
    results: list[dict[str, Any]] = []
    for pair in pairs:
        result: dict[str, Any] = {"schools": [pair.a, pair.b], "proposal": None, "error": None}
        results.append(result)
        first, second = actors.get(pair.a), actors.get(pair.b)
        if not isinstance(first, dict) or not isinstance(second, dict):
            failed = pair.a if not isinstance(first, dict) else pair.b
            result["error"] = f"{failed}: {actors.get(failed) or 'actor not fetched'}"
            continue
        try:
            proposal = partnerships.arrange(
                node,
                (first, profile_from_document(given.documents[pair.a])),
                (second, profile_from_document(given.documents[pair.b])),
            )
        except (NodeError, ProtocolError) as exc:
            result["error"] = str(exc)
            continue
        result["proposal"] = proposal.short
    return results
