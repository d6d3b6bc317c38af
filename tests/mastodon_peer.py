"""A stand-in for a Mastodon server on 127.0.0.1: its documents and signatures have the shapes
Mastodon publishes (written from Mastodon's documentation and public examples)."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from amity.protocol.httpsig import digest_header, http_date, signing_string

from .helpers import free_port


@dataclass
class MastodonUser:
    name: str
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )


class MastodonPeer:
    """Serves users' actor documents and records what arrives at its inboxes."""

    def __init__(self, *names: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.users = {name: MastodonUser(name) for name in names}
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.signatures: list[str] = []  # each POST's Signature header, as received
        app = web.Application()
        app.router.add_get("/users/{name}", self._actor)
        app.router.add_post("/inbox", self._inbox)
        app.router.add_post("/users/{name}/inbox", self._inbox)
        self.server = TestServer(app, host="127.0.0.1", port=self.port)

    def actor_id(self, name: str) -> str:
        return f"{self.base}/users/{name}"

    def actor(self, name: str) -> dict[str, Any]:
        pem = (
            self.users[name]
            .key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        actor_id = self.actor_id(name)
        return {
            "@context": [
                "https://www.w3.org/ns/activitystreams",
                "https://w3id.org/security/v1",
                {
                    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
                    "toot": "http://joinmastodon.org/ns#",
                },
            ],
            "id": actor_id,
            "type": "Person",
            "following": f"{actor_id}/following",
            "followers": f"{actor_id}/followers",
            "inbox": f"{actor_id}/inbox",
            "outbox": f"{actor_id}/outbox",
            "preferredUsername": name,
            "name": name.title(),
            "url": f"{self.base}/@{name}",
            "manuallyApprovesFollowers": False,
            "publicKey": {"id": f"{actor_id}#main-key", "owner": actor_id, "publicKeyPem": pem},
            "endpoints": {"sharedInbox": f"{self.base}/inbox"},
        }

    async def _actor(self, request: web.Request) -> web.Response:
        return web.json_response(
            self.actor(request.match_info["name"]), content_type="application/activity+json"
        )

    async def _inbox(self, request: web.Request) -> web.Response:
        self.received.append((request.path, json.loads(await request.read())))
        # Mastodon checks draft-cavage; an RFC 9421 Signature-Input is marked to be seen.
        marker = "RFC 9421: " if "Signature-Input" in request.headers else ""
        self.signatures.append(marker + request.headers.get("Signature", ""))
        return web.Response(status=202)

    def activity(self, name: str, kind: str, obj: Any) -> dict[str, Any]:
        return {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{self.actor_id(name)}#{kind.lower()}s/{uuid.uuid4()}",
            "type": kind,
            "actor": self.actor_id(name),
            "object": obj,
        }

    async def post(
        self, session: aiohttp.ClientSession, name: str, inbox: str, activity: dict[str, Any]
    ) -> int:
        """POST as Mastodon does; the status."""
        return (await self.send(session, name, inbox, activity))[0]

    async def send(
        self, session: aiohttp.ClientSession, name: str, inbox: str, activity: dict[str, Any]
    ) -> tuple[int, Any]:
        """POST as Mastodon does: rsa-sha256 over (request-target) host date digest content-type;
        the status and the JSON answer."""
        body = json.dumps(activity).encode()
        path = "/" + inbox.split("/", 3)[3]
        headers = {
            "host": inbox.split("/")[2],
            "date": http_date(datetime.now(UTC)),
            "digest": digest_header(body),
            "content-type": "application/activity+json",
        }
        names = ("(request-target)", "host", "date", "digest", "content-type")

        signature = self.users[name].key.sign(
            signing_string("POST", path, headers, names), padding.PKCS1v15(), hashes.SHA256()
        )
        headers["signature"] = (
            f'keyId="{self.actor_id(name)}#main-key",algorithm="rsa-sha256",'
            f'headers="{" ".join(names)}",signature="{base64.b64encode(signature).decode()}"'
        )
        async with session.post(inbox, data=body, headers=headers) as response:
            return response.status, await response.json(content_type=None)
