"""`amity match --via HUB`, and the hubs a school follows when its own directory is short:
their suggestions, checked and matched here, merged with the node's own."""

from __future__ import annotations

import asyncio
from datetime import date

import click

from ..federation.match_query import ANSWERING_KINDS
from ..node.errors import NodeError
from ..node.node import Node
from ..node.remote_match import ask_hubs, followed_hubs, merge
from ..protocol.matching import Match, School
from .remote import fetch_remote_actor


def with_hub_suggestions(
    node: Node,
    me: School,
    matches: list[Match],
    week: date,
    limit: int,
    via: str | None,
    allow_private_network: bool,
) -> list[Match]:
    """`matches` merged with what `via` (or, when fewer than `limit` were found, the hubs
    this school follows) suggests; a hub that fails is a warning on stderr."""
    if via is not None:
        hub = asyncio.run(fetch_remote_actor(node, via, allow_private_network))
        if hub.get("nodeKind") not in ANSWERING_KINDS:
            raise NodeError(
                f"--via {via}: is a {hub.get('nodeKind') or 'node of another kind'}, "
                "not a hub; name a hub or an authority"
            )
        hubs = [str(hub["id"])]
    elif len(matches) < limit:
        hubs = followed_hubs(node)
    else:
        hubs = []
    if not hubs:
        return matches
    found = asyncio.run(ask_hubs(node, hubs, week, limit, allow_private_network))
    for warning in found.warnings:
        click.echo(f"warning: {warning}", err=True)
    if found.dropped:
        click.echo(
            f"warning: dropped {len(found.dropped)} suggested profile(s) whose proof or "
            "content did not check out:",
            err=True,
        )
        for reason in found.dropped:
            click.echo(f"  {reason}", err=True)
    return merge(node, me, matches, found.schools, week, limit)
