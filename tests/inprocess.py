"""Real Amity nodes served in the test's own event loop, on 127.0.0.1 ports."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp.test_utils import TestServer

from amity.node.app import FederationSettings, create_app
from amity.node.app_state import DB
from amity.node.clock import Clock, system_clock
from amity.node.node import Node, init_node
from amity.protocol.httpsig import sign_request

from .helpers import EXAMPLE_PROFILE, free_port

T = TypeVar("T")

TABLES = (
    "directory",
    "followers",
    "following",
    "objects",
    "seen_activities",
    "deliveries",
    "reports",
    "outbox",
    "blocks",
)


@dataclass
class LiveNode:
    node: Node
    server: TestServer

    @property
    def actor(self) -> str:
        return self.node.urls.id

    @property
    def base(self) -> str:
        return self.node.config.base_url

    async def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the serving app's database thread: the node's connection is not shared
        between threads, so tests touch the node only through here while it serves."""
        return await self.server.app[DB](lambda _db: fn())

    async def state(self) -> dict[str, list[Any]]:
        """Every federation table's rows, to show that a refused request changed nothing."""
        return await self.run(self._state)

    def _state(self) -> dict[str, list[Any]]:
        db = self.node.store.db
        return {
            t: sorted(map(tuple, db.execute(f"SELECT * FROM {t}").fetchall()), key=repr)
            for t in TABLES
        }


StartNode = Callable[..., Awaitable[LiveNode]]


async def start_node(
    tmp_path: Path,
    handle: str,
    settings: FederationSettings | None = None,
    kind: str = "school",
    clock: Clock = system_clock,
    **profile_changes: Any,
) -> LiveNode:
    port = free_port()
    node = init_node(
        tmp_path / handle,
        handle=handle,
        base_url=f"http://127.0.0.1:{port}",
        kind=kind,
        profile={**EXAMPLE_PROFILE, **profile_changes} if kind == "school" else None,
        clock=clock,
    )
    settings = settings or FederationSettings(
        allow_private_network=True, poll_interval=0.05, first_retry=0.2
    )
    server = TestServer(create_app(node, settings), host="127.0.0.1", port=port)
    await server.start_server()
    return LiveNode(node, server)


async def post_signed(
    session: aiohttp.ClientSession,
    url: str,
    activity: Any,
    sender: Node,
    *,
    body: bytes | None = None,
    signed_body: bytes | None = None,
    now: datetime | None = None,
    private_key: Any = None,
    key_id: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST `activity` signed as `sender` (each part overridable to forge a bad request)."""
    raw = body if body is not None else json.dumps(activity).encode()
    headers = sign_request(
        method="POST",
        url=url,
        body=signed_body if signed_body is not None else raw,
        key_id=key_id or sender.urls.rsa_key_id,
        private_key=private_key or sender.keys.rsa_private,
        now=now or datetime.now(UTC),
    )
    headers["Content-Type"] = "application/activity+json"
    headers.update(extra_headers or {})
    async with session.post(url, data=raw, headers=headers) as response:
        return response.status, await response.json(content_type=None)
