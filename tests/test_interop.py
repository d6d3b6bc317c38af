"""Interoperability with a fediverse implementation that is not ours: bovine's HTTP signatures.

A peer made of bovine's signing code (served by a small real app on 127.0.0.1) follows an
Amity node; Amity must accept the Follow, and bovine must accept the Accept Amity sends back.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from bovine.crypto import build_validate_http_signature_raw, generate_rsa_public_private_key
from bovine.crypto.digest import content_digest_sha256
from bovine.crypto.http_signature import build_signature
from bovine.crypto.types import CryptographicIdentifier, CryptographicSecret

from amity.node.app import FederationSettings

from .helpers import free_port
from .inprocess import start_node

# These peers are not Amity nodes: the default policy would hold their Follows.
ACCEPT_ALL = FederationSettings(
    allow_private_network=True, poll_interval=0.05, first_retry=0.2, follow_policy="accept-all"
)


async def test_bovine_signed_follow_is_accepted_and_our_accept_verifies_in_bovine(
    tmp_path: Path,
) -> None:
    public_pem, private_pem = generate_rsa_public_private_key()
    port = free_port()
    peer = f"http://127.0.0.1:{port}"
    actor = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": f"{peer}/actor",
        "type": "Person",
        "preferredUsername": "bovine",
        "inbox": f"{peer}/inbox",
        "publicKey": {
            "id": f"{peer}/actor#main-key",
            "owner": f"{peer}/actor",
            "publicKeyPem": public_pem,
        },
    }
    received: list[dict[str, Any]] = []

    async def serve_actor(request: web.Request) -> web.Response:
        return web.json_response(actor, content_type="application/activity+json")

    async def inbox(request: web.Request) -> web.Response:
        received.append(
            {
                "url": str(request.url),
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": await request.read(),
            }
        )
        return web.Response(status=202)

    app = web.Application()
    app.router.add_get("/actor", serve_actor)
    app.router.add_post("/inbox", inbox)
    peer_server = TestServer(app, host="127.0.0.1", port=port)
    await peer_server.start_server()
    amity = await start_node(tmp_path, "amity", ACCEPT_ALL)
    try:
        follow = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{peer}/follows/{uuid.uuid4()}",
            "type": "Follow",
            "actor": actor["id"],
            "object": amity.actor,
        }
        body = json.dumps(follow).encode()
        inbox_url = f"{amity.actor}/inbox"
        date = format_datetime(datetime.now(UTC), usegmt=True)
        digest = content_digest_sha256(body)
        host = inbox_url.split("/")[2]
        signature = (
            build_signature(host, "post", "/actors/amity/inbox")
            .with_field("date", date)
            .with_field("digest", digest)
            .sign_for_http_draft(
                CryptographicSecret.from_pem(actor["publicKey"]["id"], private_pem)
            )
        )
        headers = {
            "Date": date,
            "Digest": digest,
            "Signature": signature,
            "Host": host,
            "Content-Type": "application/activity+json",
        }
        async with aiohttp.ClientSession() as session:
            async with session.post(inbox_url, data=body, headers=headers) as response:
                assert response.status == 202, await response.text()

            for _ in range(200):
                if received:
                    break
                await asyncio.sleep(0.05)
            [accept] = received
            assert json.loads(accept["body"])["type"] == "Accept"

            async def key_retriever(key_id: str) -> CryptographicIdentifier:
                async with session.get(key_id.split("#")[0]) as fetched:
                    document = await fetched.json(content_type=None)
                return CryptographicIdentifier.from_public_key(document["publicKey"])

            async def accept_body() -> bytes:
                return bytes(accept["body"])

            validate = build_validate_http_signature_raw(key_retriever)
            owner = await validate("post", accept["url"], accept["headers"], accept_body)
            assert owner == amity.actor
            # A byte changed in the body, and bovine refuses it.
            accept["body"] = accept["body"].replace(b"Accept", b"Reject")
            assert await validate("post", accept["url"], accept["headers"], accept_body) is None
        assert [row[1] for row in (await amity.state())["followers"]] == [actor["id"]]
    finally:
        await amity.server.close()
        amity.node.close()
        await peer_server.close()
