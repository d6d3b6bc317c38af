"""What the commands that talk to other nodes share: finding a remote actor, waiting for
the serving node, showing names."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from ..node.errors import NodeError
from ..node.node import Node
from ..node.serve_lock import is_serving
from ..protocol.text import clean_text

ANSWER_WAIT = 30.0  # seconds `--wait` waits for the serving node to get an answer
LISTEN_WAIT = 10.0  # seconds a node on a private address gets to start listening
POLL = 0.25


private_network_option = click.option(
    "--allow-private-network",
    is_flag=True,
    help="Let the node talk to loopback and private addresses (tests, a school LAN).",
)


def wait_while_serving(data_dir: Path, done: Callable[[], bool]) -> str:
    """Poll `done` until it holds ("done"), for at most ANSWER_WAIT seconds ("timeout"), or
    until the node has not been serving for a few seconds ("not serving"; a node started
    in the background a moment ago gets that long to take its lock)."""
    idle = 0
    for _ in range(int(ANSWER_WAIT / POLL)):
        if done():
            return "done"
        idle = 0 if is_serving(data_dir) else idle + 1
        if idle * POLL >= 5.0:
            return "not serving"
        time.sleep(POLL)
    return "done" if done() else "timeout"


def format_epoch(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def shown_name(actor: dict[str, Any]) -> str:
    """A remote actor's name as the terminal may show it (no bidi controls or escapes)."""
    for key in ("name", "preferredUsername"):
        if isinstance(actor.get(key), str) and clean_text(actor[key]).strip():
            return clean_text(actor[key]).strip()
    return str(actor["id"])


async def fetch_remote_actor(
    node: Node, target: str, allow_private_network: bool
) -> dict[str, Any]:
    """The actor document of a handle or URL, fetched with this node's signature."""
    # Imported here: the HTTP client costs a quarter of a second to load, and most
    # commands never talk to the network.
    from ..federation.actors import ACTOR_TYPES, check_actor
    from ..federation.client import FederationClient, wait_for_listener
    from ..federation.errors import AddressRefused, FetchFailed
    from ..federation.webfinger import resolve_actor_url

    address = private_address(target)
    if address is not None and not allow_private_network:
        raise NodeError(
            f"{address[0]} is a private, loopback or local address; add --allow-private-network "
            "to talk to a node there (a test, a school LAN)"
        )
    if address is not None and not await wait_for_listener(address[1], address[2], 1, 1.0):
        click.echo(f"waiting for {address[0]} to answer...", err=True)
        await wait_for_listener(address[1], address[2], int(LISTEN_WAIT / 0.5), 0.5)
    async with FederationClient(
        allow_private_network=allow_private_network, clock=node.clock
    ) as client:
        try:
            url = await resolve_actor_url(client, target)
            actor = check_actor(await client.get_json(url, node.signer()), url)
        except AddressRefused as exc:
            raise NodeError(
                f"{exc}; add --allow-private-network to talk to a node there (a test, a school LAN)"
            ) from exc
        if actor.get("type") not in ACTOR_TYPES:
            raise FetchFailed(f"{url} is not an actor")
        return actor


def private_address(target: str) -> tuple[str, str, list[int]] | None:
    """For a handle or URL on a loopback or private address: how to name it, its host and
    the ports it may answer on; None for anything else."""
    from ..federation.guard import ip_literal, is_public_address

    if "://" in target:
        parts = urlsplit(target)
        schemes = [parts.scheme]
    else:
        parts = urlsplit("//" + target.lstrip("@").rpartition("@")[2])
        schemes = ["https", "http"]  # WebFinger tries both on a private network
    host = parts.hostname or ""
    literal = ip_literal(host)
    if host != "localhost" and (literal is None or is_public_address(literal)):
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    ports = [port] if port else [443 if scheme == "https" else 80 for scheme in schemes]
    shown = f"http://{parts.netloc}" if len(schemes) > 1 else f"{schemes[0]}://{parts.netloc}"
    return shown, literal or host, ports
