"""Shutdown never hangs: each background loop ends when cancelled at the very moment it is
woken, and `amity serve` exits on SIGTERM even with a delivery stuck in flight."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from amity.federation import relations
from amity.federation.actors import RemoteActors
from amity.federation.client import FederationClient
from amity.federation.delivery import DeliveryWorker
from amity.federation.runner import DbRunner
from amity.federation.sync import DirectorySync
from amity.federation.waiting import wait_or_wake
from amity.node.hooks import NodeHooks
from amity.node.liveness import keep_alive
from amity.node.node import Node, init_node

from .helpers import EXAMPLE_PROFILE, amity, free_port, make_school, wait_until

ROUNDS = 200


class WatchedEvent(asyncio.Event):
    """An event that tells the test when a loop has started waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = asyncio.Event()

    async def wait(self) -> bool:
        self.waiting.set()
        try:
            return await super().wait()
        finally:
            self.waiting.clear()


LoopFactory = Callable[[WatchedEvent], Coroutine[Any, Any, None]]


@pytest.fixture
async def loops(tmp_path: Path) -> AsyncIterator[dict[str, LoopFactory]]:
    """The three background loops of a served node, each on a real node's database."""
    node = init_node(
        tmp_path / "n",
        handle="school",
        base_url="http://127.0.0.1:9",
        kind="school",
        profile=dict(EXAMPLE_PROFILE),
    )
    runner = DbRunner(node.store.db)
    async with FederationClient(
        allow_private_network=True, clock=lambda: datetime.now(UTC)
    ) as client:

        def delivery(event: WatchedEvent) -> Coroutine[Any, Any, None]:
            worker = DeliveryWorker(runner, client, lambda _h: node.signer())
            worker._wake = event
            return worker.run()

        def sync(event: WatchedEvent) -> Coroutine[Any, Any, None]:
            actors = RemoteActors(runner, client, node.signer)
            hooks = NodeHooks(node)
            syncer = DirectorySync(
                runner, client, actors, "school", node.signer, hooks.profile_stored
            )
            syncer._wake = event
            return syncer.run()

        def liveness(event: WatchedEvent) -> Coroutine[Any, Any, None]:
            return keep_alive(node, runner, lambda: None, 3600.0, event)

        yield {"delivery": delivery, "sync": sync, "liveness": liveness}
    runner.close()
    node.close()


async def test_wait_or_wake_says_whether_it_was_woken() -> None:
    event = asyncio.Event()
    assert await wait_or_wake(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_or_wake(event, 5.0) is True
    assert await wait_or_wake(event, -1.0) is True  # already set: no wait at all


@pytest.mark.parametrize("name", ["delivery", "sync", "liveness"])
async def test_loop_ends_when_cancelled_as_it_is_woken(
    loops: dict[str, LoopFactory], name: str
) -> None:
    for round_ in range(ROUNDS):
        event = WatchedEvent()
        task = asyncio.create_task(loops[name](event))
        async with asyncio.timeout(5):
            await event.waiting.wait()
        # The wake and the cancellation land in the same loop iteration, in either order.
        if round_ % 2 == 0:
            event.set()
            task.cancel()
        else:
            task.cancel()
            event.set()
        done, _ = await asyncio.wait([task], timeout=2.0)
        if not done:
            task.cancel()  # clean up the loop that swallowed its cancellation
            await asyncio.wait([task], timeout=2.0)
            pytest.fail(f"{name} loop kept running after its cancellation (round {round_})")
        assert task.cancelled()


class SilentInbox:
    """A host that accepts connections and never answers: a POST to it stays in flight."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections: list[socket.socket] = []

    def accepted(self) -> int:
        with contextlib.suppress(BlockingIOError):
            while True:
                self.connections.append(self.listener.accept()[0])
        return len(self.connections)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.listener.close()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_serve_exits_on_sigterm_with_deliveries_in_flight(tmp_path: Path, served: Any) -> None:
    port = free_port()
    data = make_school(tmp_path, "school", port)
    # Three hosts that never answer, four followers each: twelve POSTs out at once, enough
    # signatures at once to start the signing helper.
    silent = [SilentInbox() for _ in range(3)]
    try:
        with Node.open(data) as node, node.store.db.atomic():
            for i in range(12):
                url = silent[i % 3].url
                relations.add_follower(
                    node.store.db,
                    "school",
                    f"{url}/u/{i}",
                    f"{url}/u/{i}/inbox",
                    f"follow-{i}",
                    "2026-01-01T00:00:00Z",
                )
        school = served(data, port, "--allow-private-network", "--no-lan-discovery")
        assert school.process is not None and school.process.stdout is not None
        changed = tmp_path / "changed.json"
        changed.write_text(json.dumps({**EXAMPLE_PROFILE, "capacity": 9}))
        amity("profile", "import", str(changed), data=data)
        # The POSTs are out (the silent hosts took their connections) and unanswered.
        wait_until(lambda: all(host.accepted() == 4 for host in silent), interval=0.02)
        helpers = wait_until(lambda: _children(school.process.pid), timeout=10, interval=0.02)
        started = time.monotonic()
        assert school.kill(signal.SIGTERM) == 0
        assert time.monotonic() - started < 5
        output = school.process.stdout.read()
        assert "stopped" in output and "Traceback" not in output
        assert not any(_running(pid) for pid in helpers)  # the signing helper is gone too
    finally:
        for host in silent:
            host.close()
