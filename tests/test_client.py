"""Outgoing fetches: time-outs, size and redirect limits, and the remote actor cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from amity.federation.actors import RemoteActors
from amity.federation.client import (
    MAX_REDIRECTS,
    MAX_RESPONSE_BYTES,
    FederationClient,
    PostResult,
)
from amity.federation.errors import FetchFailed
from amity.federation.runner import DbRunner
from amity.federation.signer import Signer
from amity.node.node import init_node

from .helpers import EXAMPLE_PROFILE, free_port


class Peer:
    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.actor_fetches = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/huge", self.huge)
        app.router.add_get("/loop/{n}", self.loop)
        app.router.add_get("/actor", self.actor)
        app.router.add_get("/missing", self.missing)
        app.router.add_post("/inbox", self.inbox)
        app.router.add_post("/huge-refusal", self.huge_refusal)
        return app

    async def missing(self, request: web.Request) -> web.Response:
        return web.json_response({"error": "no such actor"}, status=404)

    async def inbox(self, request: web.Request) -> web.Response:
        # A reason with a bidirectional override and a newline, as a hostile peer might send.
        reason = "cannot verify\u202e the\nsignature"
        return web.json_response({"error": reason}, status=401)

    async def huge_refusal(self, request: web.Request) -> web.Response:
        return web.json_response({"error": "x" * MAX_RESPONSE_BYTES}, status=400)

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async def huge(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length to refuse early
        await response.prepare(request)
        for _ in range(MAX_RESPONSE_BYTES // 65536 + 2):
            await response.write(b" " * 65536)
        await response.write_eof()
        return response

    async def loop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/loop/{int(request.match_info['n']) + 1}")

    async def actor(self, request: web.Request) -> web.Response:
        self.actor_fetches += 1
        return web.json_response(
            {"id": f"{self.base}/actor", "type": "Person", "inbox": f"{self.base}/inbox"}
        )


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    spy = Peer()
    server = TestServer(spy.app(), host="127.0.0.1", port=spy.port)
    await server.start_server()
    yield spy
    await server.close()


def _client(timeout: float = 10.0) -> FederationClient:
    return FederationClient(
        allow_private_network=True, clock=lambda: datetime.now(UTC), timeout=timeout
    )


async def test_time_out(peer: Peer) -> None:
    async with _client(timeout=0.5) as client:
        with pytest.raises(FetchFailed, match=r"^no answer from .*: timed out after 0.5 s$"):
            await client.get_json(f"{peer.base}/slow")


async def test_response_size_limit(peer: Peer) -> None:
    async with _client() as client:
        with pytest.raises(FetchFailed, match="size limit"):
            await client.get_json(f"{peer.base}/huge")


async def test_redirect_limit(peer: Peer) -> None:
    async with _client() as client:
        with pytest.raises(FetchFailed, match=f"redirects more than {MAX_REDIRECTS} times"):
            await client.get_json(f"{peer.base}/loop/0")


async def test_errors_read_as_sentences(peer: Peer) -> None:
    async with _client() as client:
        with pytest.raises(FetchFailed) as missing:
            await client.get_json(f"{peer.base}/missing")
        assert str(missing.value) == (
            f"the server at {peer.base}/missing answered HTTP 404: no such actor"
        )
        assert missing.value.status == 404
        closed = f"127.0.0.1:{free_port()}"
        with pytest.raises(FetchFailed) as refused:
            await client.get_json(f"http://{closed}/actor")
        assert str(refused.value) == (
            f"could not connect to {closed} (connection refused): is the node running?"
        )


def _signer(tmp_path: Path) -> Signer:
    node = init_node(tmp_path / "s", handle="s", base_url="http://127.0.0.1:9", kind="hub")
    try:
        return node.signer()
    finally:
        node.close()


async def test_a_refusal_keeps_its_reason_safe_and_short(peer: Peer, tmp_path: Path) -> None:
    signer = _signer(tmp_path)
    async with _client() as client:
        result = await client.post(f"{peer.base}/inbox", b"{}", signer)
        assert result == PostResult(401, None, "cannot verify the signature")
        assert result.problem() == "refused by the server (HTTP 401: cannot verify the signature)"
        # Only the first few KiB of a refusal are read: a huge one gives no reason.
        huge = await client.post(f"{peer.base}/huge-refusal", b"{}", signer)
        assert huge == PostResult(400, None, None)
        assert huge.problem() == "refused by the server (HTTP 400)"
    assert PostResult(503).problem() == "the server failed (HTTP 503)"


async def test_actor_cache_lives_for_its_time_to_live(tmp_path: Path, peer: Peer) -> None:
    node = init_node(
        tmp_path / "n",
        handle="school",
        base_url="http://127.0.0.1:9",
        kind="school",
        profile=dict(EXAMPLE_PROFILE),
    )
    runner = DbRunner(node.store.db)
    now = [1000.0]
    try:
        async with _client() as client:
            clock = lambda: datetime.fromtimestamp(now[0], UTC)  # noqa: E731
            actors = RemoteActors(runner, client, node.signer, ttl=60, clock=clock)
            url = f"{peer.base}/actor"
            for _ in range(3):
                assert (await actors.get(url))["id"] == url
            assert peer.actor_fetches == 1
            now[0] += 61
            await actors.get(url)
            assert peer.actor_fetches == 2
            await actors.get(url, refresh=True)
            assert peer.actor_fetches == 3
    finally:
        runner.close()
        node.close()
