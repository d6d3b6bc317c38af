"""Liveness end to end: the clock moves 61 days on; the listing goes stale everywhere, and
comes back when its school's node runs again. Pausing hides a listing until resumed."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from amity.federation import directory
from amity.node.app import FederationSettings, create_app
from amity.node.listings import directory_listings

from .inprocess import LiveNode, start_node
from .test_hubs import follow, until

SETTINGS = FederationSettings(
    allow_private_network=True, poll_interval=0.05, first_retry=0.2, liveness_interval=0.2
)


class SteppedClock:
    """Real time plus an offset the test moves; shared by every node of the test."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
async def network(tmp_path: Path) -> AsyncIterator[tuple[SteppedClock, dict[str, LiveNode]]]:
    clock = SteppedClock()
    settings = SETTINGS
    live = {
        "hub": await start_node(tmp_path, "hub", settings, kind="hub", clock=clock),
        "school": await start_node(tmp_path, "school", settings, clock=clock, country="KE"),
        "watcher": await start_node(tmp_path, "watcher", settings, clock=clock),
    }
    yield clock, live
    for node in live.values():
        await node.server.close()
        node.node.close()


async def shown(watcher: LiveNode, show_all: bool = False) -> dict[str, dict[str, Any]]:
    """What `amity directory [--all] --json` shows on `watcher`, at its clock's time."""
    found = await watcher.run(
        lambda: directory_listings(watcher.node, directory.Filters(), show_all, 50, 0)
    )
    return {item["actor"]: item for item in found}


async def test_stale_after_60_days_and_back_when_the_node_runs(
    network: tuple[SteppedClock, dict[str, LiveNode]],
) -> None:
    clock, nodes = network
    school, watcher = await joined(nodes)
    first = (await shown(watcher))[school.actor]
    assert first["stale"] is False

    # Sixty-one days pass with the school's node switched off: nothing refreshes it.
    port = school.server.port
    await school.server.close()
    clock.offset = timedelta(days=61)
    assert school.actor not in await shown(watcher)
    everything = await shown(watcher, show_all=True)
    assert everything[school.actor]["stale"] is True
    assert everything[school.actor]["last_active"] == first["last_active"]

    # The school runs its node again: it re-publishes at once, and is listed again.
    # As `amity serve` does, it listens before its loops start: the hub, whose copy of the
    # school's key expired meanwhile, can fetch it when the first re-publication arrives.
    listening = socket.create_server(("127.0.0.1", port))
    school.server = TestServer(
        create_app(school.node, SETTINGS),
        host="127.0.0.1",
        port=port,
        socket_factory=lambda *_: listening,
    )
    await school.server.start_server()
    await until(lambda: _listed(watcher, school.actor))
    again = (await shown(watcher))[school.actor]
    assert again["stale"] is False and again["last_active"] > first["last_active"]


async def test_a_paused_listing_is_hidden_and_comes_back(
    network: tuple[SteppedClock, dict[str, LiveNode]],
) -> None:
    _, nodes = network
    school, watcher = await joined(nodes)
    await school.run(lambda: school.node.set_paused(True))
    await until(lambda: _hidden(watcher, school.actor))
    assert (await shown(watcher, show_all=True))[school.actor]["paused"] is True
    await school.run(lambda: school.node.set_paused(False))
    await until(lambda: _listed(watcher, school.actor))
    assert (await shown(watcher))[school.actor]["paused"] is False


async def joined(nodes: dict[str, LiveNode]) -> tuple[LiveNode, LiveNode]:
    """School and watcher follow the hub; returns (school, watcher) once the watcher lists
    the school."""
    hub, school, watcher = nodes["hub"], nodes["school"], nodes["watcher"]
    await follow(school, hub)
    await follow(watcher, hub)
    await until(lambda: _listed(watcher, school.actor))
    return school, watcher


async def _listed(watcher: LiveNode, actor: str) -> bool:
    return actor in await shown(watcher)


async def _hidden(watcher: LiveNode, actor: str) -> bool:
    return actor not in await shown(watcher)
