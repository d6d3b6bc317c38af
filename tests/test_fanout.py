"""A profile update fanned out by a real `amity serve` to 80 Mastodon-shaped followers:
RSA signatures made by the signing helper and ahead of each POST (docs/protocol.md,
"Delivery"), every one verified by the receiving inbox, each inbox reached once."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from amity.federation import actor_cache, relations
from amity.node.node import Node

from .helpers import (
    EXAMPLE_PROFILE,
    ServedNode,
    amity,
    free_port,
    make_school,
    query,
    read_rsa_signed,
)

FOLLOWERS = 80  # more than the worker's 32 slots and 32 ready rows: the helper starts


async def test_an_update_reaches_every_rsa_follower_once_with_a_signature_that_verifies(
    tmp_path: Path,
) -> None:
    school_port, peer_port = free_port(), free_port()
    data = await asyncio.to_thread(make_school, tmp_path, "school", school_port)
    peer = f"http://127.0.0.1:{peer_port}"
    with Node.open(data) as node:
        public_key = node.keys.rsa_private.public_key()
        with node.store.db.atomic():
            for i in range(FOLLOWERS):
                actor = {
                    "id": f"{peer}/users/f{i}",
                    "type": "Person",
                    "preferredUsername": f"f{i}",
                    "inbox": f"{peer}/users/f{i}/inbox",
                    "publicKey": {
                        "id": f"{peer}/users/f{i}#main-key",
                        "owner": f"{peer}/users/f{i}",
                        "publicKeyPem": node.keys.rsa_public_pem,
                    },
                }
                assert actor_cache.cache_actor(node.store.db, actor, time.time())
                relations.add_follower(
                    node.store.db, "school", actor["id"], actor["inbox"], f"f{i}", "2026-01-01"
                )
    arrived: Counter[str] = Counter()
    refused: list[str] = []

    async def inbox(request: web.Request) -> web.Response:
        try:
            body = await read_rsa_signed(request, public_key)
        except Exception as exc:  # counted, and the test fails on it below
            refused.append(f"{request.path}: {exc}")
            return web.Response(status=401)
        assert json.loads(body)["type"] == "Update"
        arrived[request.path] += 1
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/users/{name}/inbox", inbox)
    server = TestServer(app, host="127.0.0.1", port=peer_port)
    await server.start_server()
    served = ServedNode(data, school_port, "--allow-private-network")
    try:
        await asyncio.to_thread(served.start)
        changed = tmp_path / "changed.json"
        changed.write_text(json.dumps({**EXAMPLE_PROFILE, "capacity": 3}))
        await asyncio.to_thread(amity, "profile", "import", str(changed), data=data)
        async with asyncio.timeout(60):
            while len(arrived) < FOLLOWERS and not refused:
                await asyncio.sleep(0.05)
            while await asyncio.to_thread(query, data, "SELECT id FROM deliveries"):
                await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(served.stop)
        await server.close()
    assert refused == []
    assert sorted(arrived) == sorted(f"/users/f{i}/inbox" for i in range(FOLLOWERS))
    assert set(arrived.values()) == {1}
