"""Shared fixtures: example profiles, nodes in temporary directories, served subprocesses."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from amity.node.app import create_app
from amity.node.node import Node, init_node

from .helpers import EXAMPLE_PROFILE, ServedNode


@pytest.fixture
def profile() -> dict[str, Any]:
    """A fresh copy of the example profile, safe to modify."""
    return copy.deepcopy(EXAMPLE_PROFILE)


@pytest.fixture
def school(tmp_path: Path, profile: dict[str, Any]) -> Iterator[Node]:
    """A school node with the example profile, in a temporary data directory."""
    node = init_node(
        tmp_path / "school",
        handle="benito",
        base_url="http://127.0.0.1:8080",
        kind="school",
        profile=profile,
    )
    yield node
    node.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    """A factory of served nodes; every one is stopped at the end of the test."""
    started: list[ServedNode] = []

    def serve(data: Path, port: int, *extra: str, lan_discovery: bool = False) -> ServedNode:
        node = ServedNode(data, port, *extra, lan_discovery=lan_discovery).start()
        started.append(node)
        return node

    yield serve
    for node in started:
        node.stop()


@pytest.fixture
async def served_app(aiohttp_client: Any) -> AsyncIterator[Any]:
    """Serve a node's app in this test; at the end the app stops before the node closes
    (its database thread must be done with the connection first)."""
    opened: list[tuple[Any, Node]] = []

    async def serve(node: Node) -> Any:
        client = await aiohttp_client(create_app(node))
        opened.append((client, node))
        return client

    yield serve
    for client, node in opened:
        await client.close()
        node.close()
