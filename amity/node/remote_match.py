"""Suggestions from beyond this node's directory: the hubs' answers to a match query, each
profile checked against its author's key, matched here with the local engine and merged
with the node's own suggestions."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date

from ..federation import directory, endorsement_store, relations
from ..federation.actors import RemoteActors
from ..federation.client import FederationClient
from ..federation.errors import AddressRefused, FetchFailed
from ..federation.match_query import (
    ANSWERING_KINDS,
    MAX_CANDIDATES,
    MAX_HUBS,
    Suggested,
    ask_hub,
    check_answer,
)
from ..federation.runner import DbRunner
from ..protocol.errors import ProtocolError
from ..protocol.matching import Match, School, rank
from .match_answer import school_from_document
from .matching import context
from .node import Node


@dataclass
class HubResults:
    """The schools the hubs suggested whose profiles verified, and what went wrong."""

    schools: list[School] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # a hub that did not answer
    dropped: list[str] = field(default_factory=list)  # a profile that failed its checks


def followed_hubs(node: Node) -> list[str]:
    """The hubs this node's school follows (accepted), at most MAX_HUBS."""
    hubs = relations.followed_hubs(node.store.db, node.handle, also=node.config.handle)
    return [hub["id"] for hub in hubs][:MAX_HUBS]


async def ask_hubs(
    node: Node, hubs: list[str], week: date, limit: int, allow_private_network: bool
) -> HubResults:
    """Ask each of `hubs` (actor URLs) for the best `limit` candidates for this node's school
    in `week`; keep the profiles that verify with their authors' keys."""
    results = HubResults()
    runner = DbRunner(node.store.db)
    try:
        async with FederationClient(
            allow_private_network=allow_private_network, clock=node.clock
        ) as client:
            actors = RemoteActors(runner, client, node.signer, clock=node.clock)
            answers = await asyncio.gather(
                *(_ask(node, actors, hub, week, limit, results) for hub in hubs[:MAX_HUBS])
            )
    finally:
        runner.close()
    seen = {node.urls.id}
    for suggested in answers:
        for item in suggested:
            author = item.document["attributedTo"]
            if author in seen or item.document.get("paused") is True:
                continue
            seen.add(author)
            results.schools.append(school_from_document(item.document, item.endorsed_by))
    return results


async def _ask(
    node: Node, actors: RemoteActors, hub: str, week: date, limit: int, results: HubResults
) -> list[Suggested]:
    try:
        actor = await actors.get(hub)
        if actor.get("nodeKind") not in ANSWERING_KINDS:
            raise FetchFailed(f"{hub} is not a hub or an authority")
        candidates = await ask_hub(
            actors.client, hub, node.signer(), node.urls.id, min(limit, MAX_CANDIDATES), week
        )
        trusted = frozenset(await actors.db(endorsement_store.trusted))  # its thread
        checked = await check_answer(
            actors, actors.db, candidates, node.urls.id, trusted, node.clock()
        )
    except (FetchFailed, ProtocolError) as exc:
        hint = ""
        if isinstance(exc, AddressRefused):
            hint = "; add --allow-private-network to talk to a node there"
        elif isinstance(exc, FetchFailed) and exc.status == 401:
            hint = " (the hub checks the query's signature with this node's key: is it serving?)"
        results.warnings.append(f"hub {hub} gave no suggestions: {exc}{hint}")
        return []
    if checked.dropped:
        results.dropped += [f"from {hub}: {reason}" for reason in checked.dropped]
    return checked.profiles


def merge(
    node: Node, me: School, local: list[Match], remote: list[School], week: date, limit: int
) -> list[Match]:
    """The best `limit` of the node's own suggestions and the hubs' schools, by actor, each
    once, ranked by the local engine; a school this node's directory lists is judged by its
    own listing."""
    others = {match.other.actor: match.other for match in local}
    db = node.store.db
    for school in remote:
        if school.actor not in others and not directory.is_listed(db, school.actor):
            others[school.actor] = school
    ctx = context(node, week, list(others))
    return rank(me, others.values(), ctx, limit)
