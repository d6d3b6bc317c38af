"""The delivery worker wakes when there is work, not on a short poll: a command run beside
`amity serve` pokes it through the data directory, and a retry starts when it is due."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from amity.federation import delivery_queue, relations
from amity.federation.client import FederationClient
from amity.federation.delivery import SAFETY_POLL, DeliveryWorker
from amity.federation.runner import DbRunner
from amity.node import wake
from amity.node.node import Node, init_node

from .helpers import EXAMPLE_PROFILE, amity, free_port, make_school, wait_until


class Inbox:
    """A plain HTTP inbox on 127.0.0.1 (in a thread) that notes when each POST came."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                arrivals.append(time.monotonic())
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    made = Inbox()
    yield made
    made.close()


def test_a_command_beside_serve_is_delivered_at_once(
    tmp_path: Path, served: Any, inbox: Inbox
) -> None:
    port = free_port()
    data = make_school(tmp_path, "school", port)
    with Node.open(data) as node:
        relations.add_follower(
            node.store.db, "school", f"{inbox.url}/u/1", f"{inbox.url}/u/1/inbox", "f-1", "x"
        )
    school = served(data, port, "--allow-private-network", "--no-lan-discovery")
    socket_file = wake.socket_path(data)
    mode = socket_file.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600

    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps({**EXAMPLE_PROFILE, "capacity": 9}))
    amity("profile", "import", str(changed), data=data)
    imported = time.monotonic()
    wait_until(lambda: inbox.arrivals, timeout=SAFETY_POLL / 3, interval=0.02)
    assert inbox.arrivals[0] - imported < 3  # the safety poll alone would take up to 30 s

    assert school.kill(signal.SIGTERM) == 0
    assert not socket_file.exists()


async def test_poke_reaches_a_listener_in_a_deep_directory(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)  # past the 108 bytes of a socket address
    deep.mkdir(parents=True)
    assert not wake.poke(deep)  # nobody listens
    wake.socket_path(deep).write_text("left by a node that was killed")
    woken = asyncio.Event()
    async with wake.listening(deep, woken.set) as listening:
        assert listening
        assert await asyncio.to_thread(wake.poke, deep)
        async with asyncio.timeout(5):
            await woken.wait()
    assert not wake.socket_path(deep).exists()


async def test_a_retry_starts_when_due_without_a_poll(tmp_path: Path) -> None:
    answers = [503, 202]
    seen: list[float] = []

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        seen.append(time.monotonic())
        return web.Response(status=answers[min(len(seen), len(answers)) - 1])

    app = web.Application()
    app.router.add_post("/inbox", receive)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    node = init_node(tmp_path / "n", handle="school", base_url="http://127.0.0.1:9", kind="school")
    runner = DbRunner(node.store.db)
    try:
        async with FederationClient(
            allow_private_network=True, clock=lambda: datetime.now(UTC)
        ) as client:
            worker = DeliveryWorker(
                runner, client, lambda _h: node.signer(), first_retry=0.5, jitter=lambda: 0.0
            )
            assert worker.poll_interval == SAFETY_POLL
            activity = {"id": f"{node.urls.id}/a/1", "type": "Update", "actor": node.urls.id}
            delivery_queue.enqueue(
                node.store.db, "school", activity, [f"{server.make_url('/inbox')}"], 0.0, "x"
            )
            task = asyncio.create_task(worker.run())
            try:
                async with asyncio.timeout(10):
                    while len(seen) < 2 or delivery_queue.queue_rows(node.store.db):
                        await asyncio.sleep(0.02)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        assert 0.2 < seen[1] - seen[0] < 3  # the retry's own time, not the 30 s poll
    finally:
        runner.close()
        node.close()
        await server.close()
