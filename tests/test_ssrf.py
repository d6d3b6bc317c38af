"""Without --allow-private-network a node connects to no loopback or private address."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from amity.node.app import FederationSettings

from .helpers import amity, free_port, make_school
from .inprocess import post_signed, start_node


class Listener:
    """A TCP port on 127.0.0.1 that counts every connection made to it."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = free_port()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    spy = Listener()
    server = await asyncio.start_server(spy._accept, "127.0.0.1", spy.port)
    yield spy
    server.close()
    await server.wait_closed()


async def _in_thread(*args: str, data: Path) -> tuple[int, str]:
    # The CLI runs in another process; a thread keeps this loop (and the listener) running.
    result = await asyncio.to_thread(amity, *args, data=data, check=False)
    return result.returncode, result.stderr


async def test_follow_refuses_loopback_urls_and_names(tmp_path: Path, listener: Listener) -> None:
    data = make_school(tmp_path, "school", free_port())
    for target in (
        f"http://127.0.0.1:{listener.port}/actors/x",
        f"x@localhost:{listener.port}",
        f"http://[::ffff:127.0.0.1]:{listener.port}/actors/x",
    ):
        code, stderr = await _in_thread("follow", target, data=data)
        assert code == 1
        assert "private, loopback or local" in stderr
    assert listener.connections == 0
    # With the flag, the same request does reach the port.
    await _in_thread(
        "follow", f"http://127.0.0.1:{listener.port}/actors/x", "--allow-private-network", data=data
    )
    assert listener.connections >= 1


async def test_inbox_never_fetches_a_key_from_a_private_address(
    tmp_path: Path, listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="amity.federation.inbox")
    receiver = await start_node(
        tmp_path, "receiver", FederationSettings(allow_private_network=False)
    )
    sender = await start_node(tmp_path, "sender")
    try:
        key_id = f"http://127.0.0.1:{listener.port}/actors/x#main-key"
        activity = {
            "id": f"http://127.0.0.1:{listener.port}/a/{uuid.uuid4()}",
            "type": "Follow",
            "actor": f"http://127.0.0.1:{listener.port}/actors/x",
            "object": receiver.actor,
        }
        async with aiohttp.ClientSession() as session:
            status, answer = await post_signed(
                session, f"{receiver.base}/inbox", activity, sender.node, key_id=key_id
            )
        assert status == 401
        assert answer["error"] == "cannot verify the signature"  # the stranger learns no more
        assert "private" in caplog.text  # the operator does
        assert listener.connections == 0
    finally:
        for live in (receiver, sender):
            await live.server.close()
            live.node.close()


async def test_deliveries_to_private_inboxes_are_not_attempted(
    tmp_path: Path, listener: Listener
) -> None:
    settings = FederationSettings(allow_private_network=False, poll_interval=0.05)
    node = await start_node(tmp_path, "school", settings)
    try:
        target = {
            "id": f"http://127.0.0.1:{listener.port}/actors/x",
            "type": "Organization",
            "inbox": f"http://127.0.0.1:{listener.port}/inbox",
        }
        await node.run(lambda: node.node.follow(target))
        for _ in range(100):
            rows = await node.run(
                lambda: node.node.store.db.execute(
                    "SELECT attempts, last_error, state FROM deliveries"
                ).fetchall()
            )
            if rows and rows[0][0] >= 1:
                break
            await asyncio.sleep(0.05)
        assert rows[0][0] >= 1
        assert "private, loopback or local" in rows[0][1]
        assert listener.connections == 0
        assert rows[0][2] == "pending"  # kept for a retry, never sent
    finally:
        await node.server.close()
        node.node.close()


async def test_requests_no_key_could_fix_are_refused_before_any_key_fetch(
    tmp_path: Path, listener: Listener
) -> None:
    """A stale or altered request never makes the node fetch the key it names."""
    receiver = await start_node(tmp_path, "receiver")  # private network allowed
    sender = await start_node(tmp_path, "sender")
    try:
        key_id = f"http://127.0.0.1:{listener.port}/actors/x#main-key"
        activity = {
            "id": f"http://127.0.0.1:{listener.port}/a/{uuid.uuid4()}",
            "type": "Like",
            "actor": f"http://127.0.0.1:{listener.port}/actors/x",
            "object": receiver.actor,
        }
        url = f"{receiver.base}/inbox"
        async with aiohttp.ClientSession() as session:
            stale = await post_signed(
                session,
                url,
                activity,
                sender.node,
                key_id=key_id,
                now=datetime.now(UTC) - timedelta(hours=2),
            )
            altered = await post_signed(
                session, url, activity, sender.node, key_id=key_id, signed_body=b"{}"
            )
            assert listener.connections == 0
            assert stale[0] == altered[0] == 401
            fresh = await post_signed(session, url, activity, sender.node, key_id=key_id)
        assert fresh[0] == 401  # the listener is no actor, but now the key was looked for
        assert listener.connections >= 1
    finally:
        for live in (receiver, sender):
            await live.server.close()
            live.node.close()
