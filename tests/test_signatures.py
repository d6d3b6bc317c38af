"""HTTP signatures: draft-cavage with RSA and Ed25519 keys, RFC 9421; the inbox accepts each."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from amity.protocol.errors import BadSignature, MalformedDocument
from amity.protocol.httpsig import (
    check_digest,
    check_freshness,
    digest_header,
    http_date,
    parse_signature_header,
    sign_request,
    signing_string,
    verify_request,
)
from amity.protocol.multikey import encode_ed25519_public

from .helpers import free_port
from .inprocess import start_node

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_rsa_sha256_round_trip_and_tampering() -> None:
    body = b'{"type":"Follow"}'
    url = "https://school.example/inbox?x=1"
    headers = sign_request(
        method="POST", url=url, body=body, key_id="k", private_key=RSA_KEY, now=NOW
    )
    params = parse_signature_header(headers["Signature"])
    assert params.algorithm == "rsa-sha256"
    assert params.headers == ("(request-target)", "host", "date", "digest")
    verify = dict(method="POST", target="/inbox?x=1", public_key=RSA_KEY.public_key(), now=NOW)
    verify_request(params, headers=_lower(headers), **verify)  # type: ignore[arg-type]
    check_digest(headers["Digest"], body)
    with pytest.raises(BadSignature):
        check_digest(headers["Digest"], body + b" ")
    with pytest.raises(BadSignature):
        verify_request(params, headers={**_lower(headers), "host": "evil.example"}, **verify)  # type: ignore[arg-type]
    with pytest.raises(BadSignature):
        verify_request(params, headers=_lower(headers), **{**verify, "target": "/other"})  # type: ignore[arg-type]
    with pytest.raises(BadSignature):
        verify_request(
            params,
            headers=_lower(headers),
            **{**verify, "now": NOW + timedelta(hours=1, seconds=1)},
        )  # type: ignore[arg-type]


def test_hs2019_with_an_rsa_key() -> None:
    headers = sign_request(
        method="POST",
        url="https://s.example/inbox",
        body=b"{}",
        key_id="k",
        private_key=RSA_KEY,
        now=NOW,
    )
    params = parse_signature_header(headers["Signature"].replace("rsa-sha256", "hs2019"))
    assert params.algorithm == "hs2019"
    verify_request(
        params,
        method="POST",
        target="/inbox",
        headers=_lower(headers),
        public_key=RSA_KEY.public_key(),
        now=NOW,
    )


def test_hs2019_with_an_ed25519_key_and_created() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    headers = {"host": "school.example", "digest": digest_header(b"{}")}
    names = ("(request-target)", "(created)", "host", "digest")
    created = int(NOW.timestamp())
    signature = key.sign(signing_string("POST", "/inbox", headers, names, created))
    header = (
        f'keyId="k",algorithm="hs2019",created={created},headers="{" ".join(names)}",'
        f'signature="{base64.b64encode(signature).decode()}"'
    )
    params = parse_signature_header(header)
    verify_request(
        params,
        method="POST",
        target="/inbox",
        headers=headers,
        public_key=key.public_key(),
        now=NOW,
    )
    with pytest.raises(BadSignature):  # an RSA algorithm name cannot be used with Ed25519
        verify_request(
            parse_signature_header(header.replace("hs2019", "rsa-sha256")),
            method="POST",
            target="/inbox",
            headers=headers,
            public_key=key.public_key(),
            now=NOW,
        )


def test_signature_must_cover_the_request_target_and_host() -> None:
    headers = {"date": http_date(NOW)}
    signature = RSA_KEY.sign(b"date: " + headers["date"].encode(), *_pkcs1())
    encoded = base64.b64encode(signature).decode()
    header = f'keyId="k",algorithm="rsa-sha256",headers="date",signature="{encoded}"'
    with pytest.raises(BadSignature, match="does not cover"):
        verify_request(
            parse_signature_header(header),
            method="POST",
            target="/inbox",
            headers=headers,
            public_key=RSA_KEY.public_key(),
            now=NOW,
        )


@pytest.mark.parametrize(
    "header",
    [
        "",
        "keyId",
        'keyId="k"',
        'keyId="k",signature="%%%"',
        'keyId="k",signature="AA==",created="soon"',
    ],
)
def test_malformed_signature_headers(header: str) -> None:
    with pytest.raises(MalformedDocument):
        parse_signature_header(header)


def _pkcs1() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return padding.PKCS1v15(), hashes.SHA256()


@dataclass
class _Request:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


async def test_inbox_accepts_hs2019_ed25519_and_rfc9421_from_a_peer(tmp_path: Path) -> None:
    """A peer whose actor publishes only an Ed25519 Multikey signs both ways; both are accepted."""
    key = ed25519.Ed25519PrivateKey.generate()
    port = free_port()
    peer = f"http://127.0.0.1:{port}"
    key_id = f"{peer}/actor#ed25519-key"
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    actor = {
        "@context": [
            "https://www.w3.org/ns/activitystreams",
            "https://w3id.org/security/multikey/v1",
        ],
        "id": f"{peer}/actor",
        "type": "Service",
        "inbox": f"{peer}/inbox",
        "assertionMethod": [
            {
                "id": key_id,
                "type": "Multikey",
                "controller": f"{peer}/actor",
                "publicKeyMultibase": encode_ed25519_public(raw),
            }
        ],
    }

    async def serve_actor(request: web.Request) -> web.Response:
        return web.json_response(actor)

    async def inbox(request: web.Request) -> web.Response:
        return web.Response(status=202)

    app = web.Application()
    app.router.add_get("/actor", serve_actor)
    app.router.add_post("/inbox", inbox)
    peer_server = TestServer(app, host="127.0.0.1", port=port)
    await peer_server.start_server()
    amity = await start_node(tmp_path, "amity")
    try:
        async with aiohttp.ClientSession() as session:
            url = f"{amity.base}/inbox"

            def like() -> bytes:
                return json.dumps(
                    {
                        "id": f"{peer}/likes/{uuid.uuid4()}",
                        "type": "Like",
                        "actor": actor["id"],
                        "object": amity.actor,
                    }
                ).encode()

            # draft-cavage hs2019 with the Ed25519 key
            body = like()
            now = datetime.now(UTC)
            headers = {
                "host": f"127.0.0.1:{amity.server.port}",
                "date": http_date(now),
                "digest": digest_header(body),
            }
            names = ("(request-target)", "host", "date", "digest")
            signature = key.sign(signing_string("POST", "/inbox", headers, names))
            headers["signature"] = (
                f'keyId="{key_id}",algorithm="hs2019",headers="{" ".join(names)}",'
                f'signature="{base64.b64encode(signature).decode()}"'
            )
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == 202, await response.text()

            # RFC 9421, signed by the http-message-signatures library
            body = like()
            request = _Request("POST", url, {"Content-Type": "application/activity+json"})
            signer = HTTPMessageSigner(
                signature_algorithm=algorithms.ED25519,
                key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: key}),
            )
            signer.sign(
                request,
                key_id=key_id,
                body=body,
                covered_component_ids=("@method", "@target-uri", "content-digest"),
            )
            async with session.post(url, data=body, headers=request.headers) as response:
                assert response.status == 202, await response.text()
            # The same RFC 9421 request with another body is refused.
            async with session.post(url, data=like(), headers=request.headers) as response:
                assert response.status == 401
        assert len((await amity.state())["seen_activities"]) == 2
    finally:
        await amity.server.close()
        amity.node.close()
        await peer_server.close()


def test_a_date_seen_before_is_judged_again_against_the_clock() -> None:
    """Parsed Date headers are remembered; whether one is fresh is decided anew each time."""
    now = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
    date = "Thu, 03 Dec 2026 12:00:00 GMT"
    check_freshness(date, None, now)
    check_freshness(date, None, now + timedelta(minutes=59))
    with pytest.raises(BadSignature, match="more than one hour"):
        check_freshness(date, None, now + timedelta(minutes=61))
    with pytest.raises(BadSignature, match="not an HTTP date"):
        check_freshness("yesterday noon", None, now)
    with pytest.raises(BadSignature, match="not an HTTP date"):
        check_freshness("yesterday noon", None, now)  # a refusal is not remembered as a date
