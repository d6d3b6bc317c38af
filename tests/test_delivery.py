"""The delivery queue stepped by hand with a controlled clock: back-off, dead, held, probes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from amity.federation import delivery_queue
from amity.federation.backoff import MAX_ATTEMPTS, PROBE_INTERVAL, retry_delay
from amity.federation.client import FederationClient
from amity.federation.delivery import SIGNED_AHEAD_MAX_AGE, DeliveryWorker
from amity.federation.runner import DbRunner
from amity.node.node import Node, init_node

from .helpers import EXAMPLE_PROFILE, free_port, read_rsa_signed


class Peer:
    """An inbox whose answer the test sets; it counts what it receives."""

    def __init__(self) -> None:
        self.status = 500
        self.retry_after: str | None = None
        self.received = 0
        self.port = free_port()

    async def inbox(self, request: web.Request) -> web.Response:
        await request.read()
        self.received += 1
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        return web.Response(status=self.status, headers=headers)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Node, Peer, DeliveryWorker, Clock]]:
    peer = Peer()
    app = web.Application()
    app.router.add_post("/inbox", peer.inbox)
    server = TestServer(app, host="127.0.0.1", port=peer.port)
    await server.start_server()
    node = init_node(
        tmp_path / "n",
        handle="school",
        base_url="http://127.0.0.1:9",
        kind="school",
        profile=dict(EXAMPLE_PROFILE),
    )
    clock = Clock()
    runner = DbRunner(node.store.db)
    async with FederationClient(
        allow_private_network=True, clock=lambda: datetime.now(UTC)
    ) as client:
        worker = DeliveryWorker(
            runner, client, lambda _h: node.signer(), clock=clock, jitter=lambda: 0.5
        )
        yield node, peer, worker, clock
    runner.close()
    node.close()
    await server.close()


def _queue(node: Node, inbox: str, n: int = 1) -> None:
    for i in range(n):
        activity = {
            "id": f"{node.urls.id}/activities/{inbox}-{i}-{len(_rows(node))}",
            "type": "Update",
            "actor": node.urls.id,
            "object": {},
        }
        delivery_queue.enqueue(node.store.db, "school", activity, [inbox], 1_800_000_000.0, "x")


def _rows(node: Node) -> list[dict[str, object]]:
    return delivery_queue.queue_rows(node.store.db)


async def _step(worker: DeliveryWorker) -> int:
    started = await worker.run_single_cycle()
    await worker.drain()
    return started


def test_retries_span_about_three_days() -> None:
    total = sum(retry_delay(n, 0.5) for n in range(1, MAX_ATTEMPTS))
    assert 2.5 * 86400 < total < 3.5 * 86400
    spread = {retry_delay(3, j) for j in (0.0, 0.5, 0.99)}
    assert len(spread) == 3  # jitter spreads retries of many deliveries


async def test_failing_host_goes_dead_then_held_then_probed_then_flushed(
    setup: tuple[Node, Peer, DeliveryWorker, Clock],
) -> None:
    node, peer, worker, clock = setup
    inbox = f"http://127.0.0.1:{peer.port}/inbox"
    _queue(node, inbox)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert await _step(worker) == 1
        assert await _step(worker) == 0  # not due again before its back-off
        row = _rows(node)[0]
        if attempt < MAX_ATTEMPTS:
            assert row["state"] == "pending" and row["attempts"] == attempt
            clock.now = float(row["next_attempt_at"])  # type: ignore[arg-type]
    assert peer.received == MAX_ATTEMPTS
    assert _rows(node)[0]["state"] == "dead"
    assert _rows(node)[0]["host_unavailable_since"] is not None

    _queue(node, inbox, 3)  # new deliveries are kept but not attempted
    clock.now += 3600
    assert await _step(worker) == 0
    assert peer.received == MAX_ATTEMPTS

    peer.status = 202
    clock.now += PROBE_INTERVAL
    assert await _step(worker) == 1  # one probe
    assert await _step(worker) == 2  # the host answered: the rest are due at once
    assert peer.received == MAX_ATTEMPTS + 3
    assert [row["state"] for row in _rows(node)] == ["dead"]


async def test_permanent_refusal_is_dead_at_once_without_marking_the_host(
    setup: tuple[Node, Peer, DeliveryWorker, Clock],
) -> None:
    node, peer, worker, _ = setup
    peer.status = 410
    _queue(node, f"http://127.0.0.1:{peer.port}/inbox")
    await _step(worker)
    [row] = _rows(node)
    assert row["state"] == "dead" and row["attempts"] == 1
    assert row["host_unavailable_since"] is None


async def test_a_401_is_retried_and_never_marks_the_host_unavailable(
    setup: tuple[Node, Peer, DeliveryWorker, Clock],
) -> None:
    """A receiver that could not fetch this node's key answers 401; it may work later."""
    node, peer, worker, clock = setup
    peer.status = 401
    _queue(node, f"http://127.0.0.1:{peer.port}/inbox")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert await _step(worker) == 1
        [row] = _rows(node)
        if attempt < MAX_ATTEMPTS:
            assert row["state"] == "pending" and row["attempts"] == attempt
            clock.now = float(row["next_attempt_at"])  # type: ignore[arg-type]
    assert row["state"] == "dead"
    assert row["host_unavailable_since"] is None  # the host answered all along
    assert "HTTP 401" in str(row["last_error"])


async def test_retry_after_is_honoured(setup: tuple[Node, Peer, DeliveryWorker, Clock]) -> None:
    node, peer, worker, clock = setup
    peer.status, peer.retry_after = 429, "7200"
    _queue(node, f"http://127.0.0.1:{peer.port}/inbox")
    await _step(worker)
    [row] = _rows(node)
    assert float(row["next_attempt_at"]) - clock.now >= 7200  # type: ignore[arg-type]


async def test_each_attempt_is_signed_anew(setup: tuple[Node, Peer, DeliveryWorker, Clock]) -> None:
    node, _peer, worker, clock = setup
    signatures: list[str] = []

    async def inbox(request: web.Request) -> web.Response:
        signatures.append(request.headers["Signature"] + request.headers["Date"])
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post("/inbox", inbox)
    port = free_port()
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        _queue(node, f"http://127.0.0.1:{port}/inbox")
        await _step(worker)
        clock.now = float(_rows(node)[0]["next_attempt_at"])  # type: ignore[arg-type]
        await asyncio.sleep(1.1)  # a new Date second, so a new signature
        await _step(worker)
        assert len(signatures) == 2 and signatures[0] != signatures[1]
        assert _rows(node)[0]["attempts"] == 2
    finally:
        await server.close()


async def test_concurrency_is_bounded_per_host(
    setup: tuple[Node, Peer, DeliveryWorker, Clock],
) -> None:
    node, peer, worker, _ = setup
    peer.status = 202
    _queue(node, f"http://127.0.0.1:{peer.port}/inbox", 10)
    assert await worker.run_single_cycle() == worker.max_per_host
    await worker.drain()


async def test_serving_worker_posts_each_once_within_the_host_limit(tmp_path: Path) -> None:
    """run() keeps due deliveries ready beyond its free slots and starts them as slots
    free: every one still goes out once, never more than 4 at a time to one host."""
    seen: list[str] = []
    active, most = 0, 0

    async def inbox(request: web.Request) -> web.Response:
        nonlocal active, most
        active += 1
        most = max(most, active)
        seen.append(str((await request.json())["id"]))
        await asyncio.sleep(0.01)
        active -= 1
        return web.Response(status=202)

    node = _school(tmp_path)
    runner = DbRunner(node.store.db)
    try:
        async with _inbox_at(inbox) as url, _client() as client:
            _queue(node, url, 60)
            worker = DeliveryWorker(runner, client, lambda _h: node.signer(), clock=Clock())
            await _serve_until(worker, lambda: _all_delivered(runner, seen, 60))
    finally:
        runner.close()
        node.close()
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 60
    assert most <= 4


class _CountingClient(FederationClient):
    """The real client; it counts the POSTs that came with headers signed ahead."""

    ahead = 0

    async def post(self, *args: Any, signed: dict[str, str] | None = None, **kw: Any) -> Any:
        self.ahead += signed is not None
        return await super().post(*args, signed=signed, **kw)


async def test_serving_worker_signs_ready_deliveries_while_others_are_posted(
    tmp_path: Path,
) -> None:
    """Rows kept ready beyond the free slots are signed ahead: RSA signatures that verify,
    each delivery once, and at least half of them not signed while holding a slot."""
    node = _school(tmp_path)
    public_key = node.keys.rsa_private.public_key()
    seen: list[str] = []

    async def inbox(request: web.Request) -> web.Response:
        body = await read_rsa_signed(request, public_key)
        seen.append(str(json.loads(body)["id"]))
        await asyncio.sleep(0.01)
        return web.Response(status=202)

    runner = DbRunner(node.store.db)
    try:
        async with _inbox_at(inbox) as url, _client(_CountingClient) as client:
            _queue(node, url, 60)
            worker = DeliveryWorker(runner, client, lambda _h: node.signer(), clock=Clock())
            await _serve_until(worker, lambda: _all_delivered(runner, seen, 60))
            assert not worker._ahead  # nothing left signing once stopped
    finally:
        runner.close()
        node.close()
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 60
    # Rows that fit a free slot when a cycle reads them are signed as they start.
    assert client.ahead >= 30


@pytest.mark.parametrize(("wait", "reused"), [(10.0, True), (SIGNED_AHEAD_MAX_AGE + 1, False)])
async def test_headers_signed_ahead_are_used_only_while_fresh(
    tmp_path: Path, wait: float, reused: bool
) -> None:
    """A row signed ahead, then held back `wait` seconds by a slow delivery: its headers
    (their Date) are the ones made ahead only within SIGNED_AHEAD_MAX_AGE."""
    node = _school(tmp_path)
    clock = Clock()
    release = asyncio.Event()
    dates: list[str] = []

    async def inbox(request: web.Request) -> web.Response:
        await request.read()
        dates.append(request.headers["Date"])
        if len(dates) == 1:
            await release.wait()
        return web.Response(status=202)

    async def signed_ahead_while_first_waits() -> bool:
        tasks = [task for _, task in worker._ahead.values()]
        if not release.is_set() and dates and tasks and all(task.done() for task in tasks):
            clock.now += wait  # the signature made ahead grows this old
            release.set()
        return len(dates) == 2

    runner = DbRunner(node.store.db)
    try:
        async with _inbox_at(inbox) as url, _client(clock=clock) as client:
            _queue(node, url, 2)
            worker = DeliveryWorker(
                runner, client, lambda _h: node.signer(), clock=clock, max_total=1
            )
            asked = datetime.fromtimestamp(clock.now, UTC)
            await _serve_until(worker, signed_ahead_while_first_waits)
    finally:
        runner.close()
        node.close()
    assert release.is_set()  # the second row was signed ahead while the first was held
    assert dates[0] == format_datetime(asked, usegmt=True)
    assert (dates[1] == dates[0]) is reused


def _school(tmp_path: Path) -> Node:
    return init_node(
        tmp_path / "n",
        handle="school",
        base_url="http://127.0.0.1:9",
        kind="school",
        profile=dict(EXAMPLE_PROFILE),
    )


@contextlib.asynccontextmanager
async def _inbox_at(
    handler: Callable[[web.Request], Awaitable[web.Response]],
) -> AsyncIterator[str]:
    """An inbox on loopback answered by `handler`; yields its URL."""
    app = web.Application()
    app.router.add_post("/inbox", handler)
    port = free_port()
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{port}/inbox"
    finally:
        await server.close()


def _client(
    kind: type[FederationClient] = FederationClient, clock: Clock | None = None
) -> FederationClient:
    return kind(allow_private_network=True, clock=clock or (lambda: datetime.now(UTC)))


async def _all_delivered(runner: DbRunner, seen: list[str], count: int) -> bool:
    return len(seen) >= count and not await runner(delivery_queue.queue_rows)


async def _serve_until(worker: DeliveryWorker, done: Callable[[], Awaitable[bool]]) -> None:
    """Run the worker as `amity serve` does until `done`, then stop it as a signal would."""
    task = asyncio.create_task(worker.run())
    async with asyncio.timeout(30):
        while not await done():
            await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
