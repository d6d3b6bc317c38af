"""Deliveries to Amity nodes signed with RFC 9421 Ed25519; everyone else gets draft-cavage
rsa-sha256; a 401 to RFC 9421 falls back to RSA."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ed25519

from amity.federation import actor_cache, delivery_queue
from amity.federation.client import FederationClient
from amity.federation.delivery import DeliveryWorker
from amity.federation.runner import DbRunner
from amity.node.keys import generate_keys
from amity.node.node import Node, init_node
from amity.protocol.actor import ActorUrls, actor_document, is_amity_actor
from amity.protocol.errors import BadSignature, KeyMismatch
from amity.protocol.message_signatures import message_key_id, sign_message, verify_message

from .helpers import EXAMPLE_PROFILE, amity, free_port, make_school, query, wait_until
from .mastodon_peer import MastodonPeer

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
PRIVATE = "--allow-private-network"


def _signed(url: str, body: bytes, key: ed25519.Ed25519PrivateKey) -> dict[str, str]:
    headers = sign_message(
        method="POST",
        url=url,
        content_type="application/activity+json",
        body=body,
        key_id="https://a.example/actors/a#ed25519-key",
        private_key=key,
        now=NOW,
    )
    return {
        **{k.lower(): v for k, v in headers.items()},
        "content-type": "application/activity+json",
    }


def test_sign_message_round_trips_through_verify_message() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    url, body = "http://127.0.0.1:8000/actors/b/inbox?x=1", b'{"type":"Update"}'
    headers = _signed(url, body, key)
    assert message_key_id(headers) == "https://a.example/actors/a#ed25519-key"
    assert '("@method" "@target-uri" "content-digest" "content-type")' in headers["signature-input"]
    check: dict[str, Any] = {
        "key_id": "https://a.example/actors/a#ed25519-key",
        "public_key": key.public_key(),
        "now": NOW,
    }
    verify_message(method="POST", url=url, headers=headers.items(), body=body, **check)
    with pytest.raises(KeyMismatch):  # another body
        verify_message(method="POST", url=url, headers=headers.items(), body=b"{}", **check)
    with pytest.raises(KeyMismatch):  # another inbox
        verify_message(method="POST", url=url + "2", headers=headers.items(), body=body, **check)
    changed = {**headers, "content-type": "text/plain"}
    with pytest.raises(KeyMismatch):
        verify_message(method="POST", url=url, headers=changed.items(), body=body, **check)
    with pytest.raises(BadSignature):  # two hours later
        verify_message(
            method="POST",
            url=url,
            headers=headers.items(),
            body=body,
            **{**check, "now": NOW + timedelta(hours=2)},
        )


def test_created_is_judged_by_the_node_clock_not_the_computers() -> None:
    """A sender a few minutes ahead, or a node on a stepped clock (in 2030 here): what
    counts is the receiving node's clock, within the hour draft-cavage allows too."""
    key = ed25519.Ed25519PrivateKey.generate()
    url, body = "http://127.0.0.1:8000/actors/b/inbox", b'{"type":"Update"}'
    later = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    headers = sign_message(
        method="POST",
        url=url,
        content_type="application/activity+json",
        body=body,
        key_id="https://a.example/actors/a#ed25519-key",
        private_key=key,
        now=later + timedelta(minutes=10),  # the sender's clock runs ahead
    )
    headers = {
        **{k.lower(): v for k, v in headers.items()},
        "content-type": "application/activity+json",
    }
    check: dict[str, Any] = {
        "key_id": "https://a.example/actors/a#ed25519-key",
        "public_key": key.public_key(),
    }
    verify_message(method="POST", url=url, headers=headers.items(), body=body, now=later, **check)
    with pytest.raises(BadSignature):
        verify_message(
            method="POST",
            url=url,
            headers=headers.items(),
            body=body,
            now=later - timedelta(hours=2),
            **check,
        )


def test_times_outside_the_calendar_are_refused_not_an_error() -> None:
    """`created` and `expires` are the sender's numbers: years beyond datetime's range
    are a refused signature (401), never an exception (500)."""
    key = ed25519.Ed25519PrivateKey.generate()
    url, body = "http://127.0.0.1:8000/actors/b/inbox", b"{}"
    key_id = "https://a.example/actors/a#ed25519-key"
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    for params, good in (
        (f"created={int(NOW.timestamp())};expires=999999999999999", True),  # far, not past
        ("created=999999999999999", False),
        ("created=-999999999999999", False),
        (f"created={int(NOW.timestamp())};expires=-999999999999999", False),
    ):
        components = '("@method" "@target-uri" "content-digest")'
        signature_params = f'{components};{params};keyid="{key_id}";alg="ed25519"'
        base = (
            f'"@method": POST\n"@target-uri": {url}\n"content-digest": {digest}\n'
            f'"@signature-params": {signature_params}'
        )
        signature = base64.b64encode(key.sign(base.encode())).decode()
        headers = {
            "content-digest": digest,
            "signature-input": f"sig1={signature_params}",
            "signature": f"sig1=:{signature}:",
        }
        check: dict[str, Any] = {"key_id": key_id, "public_key": key.public_key(), "now": NOW}
        if good:
            verify_message(method="POST", url=url, headers=headers.items(), body=body, **check)
            continue
        with pytest.raises(BadSignature, match=r"created more than one hour|has expired"):
            verify_message(method="POST", url=url, headers=headers.items(), body=body, **check)


def _amity_actor(base_url: str, handle: str = "peer") -> dict[str, Any]:
    keys = generate_keys()
    return actor_document(
        ActorUrls(base_url, handle),
        "school",
        name=handle,
        summary=None,
        rsa_public_pem=keys.rsa_public_pem,
        ed25519_public=keys.ed25519_public,
        published="2026-01-01T00:00:00Z",
        has_profile=True,
    )


def test_an_amity_actor_is_told_from_others() -> None:
    actor = _amity_actor("https://b.example")
    assert is_amity_actor(actor)
    assert not is_amity_actor(MastodonPeer("ann").actor("ann"))
    assert not is_amity_actor({**actor, "nodeKind": "person"})
    assert not is_amity_actor({**actor, "assertionMethod": []})
    broken = [{**actor["assertionMethod"][0], "publicKeyMultibase": "zabc"}]
    assert not is_amity_actor({**actor, "assertionMethod": broken})


class Recorder:
    """Inboxes that record the signature kind of each POST; `refuse_rfc9421` answers 401
    to RFC 9421 like a node that does not know it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.kinds: list[str] = []
        self.refuse_rfc9421 = False

    async def inbox(self, request: web.Request) -> web.Response:
        await request.read()
        rfc9421 = "Signature-Input" in request.headers
        self.kinds.append("rfc9421" if rfc9421 else _cavage_algorithm(request.headers))
        if rfc9421 and self.refuse_rfc9421:
            return web.json_response({"error": "unknown signature"}, status=401)
        return web.Response(status=202)


def _cavage_algorithm(headers: Any) -> str:
    signature = headers.get("Signature", "")
    return "rsa-sha256" if 'algorithm="rsa-sha256"' in signature else f"other: {signature}"


@pytest.fixture
async def sender(tmp_path: Path) -> AsyncIterator[tuple[Node, Recorder, DeliveryWorker]]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_post("/{path:.*}", recorder.inbox)
    server = TestServer(app, host="127.0.0.1", port=recorder.port)
    await server.start_server()
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
        worker = DeliveryWorker(runner, client, lambda _h: node.signer(), jitter=lambda: 0.5)
        yield node, recorder, worker
    runner.close()
    node.close()
    await server.close()


def _queue(node: Node, inboxes: list[str]) -> None:
    activity = {"id": f"{node.urls.id}/activities/1", "type": "Update", "actor": node.urls.id}
    now = datetime.now(UTC).timestamp()
    delivery_queue.enqueue(node.store.db, "school", activity, inboxes, now, "x")


async def _step(worker: DeliveryWorker) -> None:
    await worker.run_single_cycle()
    await worker.drain()


async def test_amity_inboxes_get_rfc9421_and_mastodon_rsa(
    sender: tuple[Node, Recorder, DeliveryWorker],
) -> None:
    node, recorder, worker = sender
    now = datetime.now(UTC).timestamp()
    amity_peer = _amity_actor(f"{recorder.base}/amity")
    mastodon = MastodonPeer("ann")
    mastodon.base = f"{recorder.base}/mastodon"  # its documents, served by the recorder
    for document in (amity_peer, mastodon.actor("ann")):
        assert actor_cache.cache_actor(node.store.db, document, now)
    unknown = f"{recorder.base}/unknown/inbox"
    # An Amity-shaped actor elsewhere naming these inboxes does not make them Amity's.
    stranger = _amity_actor("http://127.0.0.1:9999", "stranger")
    stranger["inbox"], stranger["endpoints"]["sharedInbox"] = (
        unknown,
        mastodon.actor("ann")["inbox"],
    )
    assert actor_cache.cache_actor(node.store.db, stranger, now)
    _queue(node, [amity_peer["endpoints"]["sharedInbox"], mastodon.actor("ann")["inbox"], unknown])
    await _step(worker)
    assert sorted(recorder.kinds) == ["rfc9421", "rsa-sha256", "rsa-sha256"]
    assert delivery_queue.queue_rows(node.store.db) == []


async def test_a_401_to_rfc9421_is_retried_at_once_with_rsa(
    sender: tuple[Node, Recorder, DeliveryWorker],
) -> None:
    node, recorder, worker = sender
    recorder.refuse_rfc9421 = True
    peer = _amity_actor(f"{recorder.base}/old")
    actor_cache.cache_actor(node.store.db, peer, datetime.now(UTC).timestamp())
    _queue(node, [peer["inbox"]])
    await _step(worker)
    [row] = delivery_queue.queue_rows(node.store.db)
    assert row["state"] == "pending" and row["attempts"] == 1
    assert "HTTP 401" in str(row["last_error"])
    await _step(worker)  # due at once, not after the back-off
    assert recorder.kinds == ["rfc9421", "rsa-sha256"]
    assert delivery_queue.queue_rows(node.store.db) == []


class RecordingProxy:
    """A reverse proxy in front of a served node: it passes every request on unchanged
    (the node's base URL is the proxy's) and records the signature kind of inbox POSTs."""

    def __init__(self, target_port: int) -> None:
        self.posts: list[tuple[str, str, int]] = []  # (path, kind or keyid, status)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                request = urllib.request.Request(
                    f"http://127.0.0.1:{target_port}{self.path}",
                    data=body,
                    headers=dict(self.headers.items()),
                    method=self.command,
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status, headers, answer = response.status, response.headers, response.read()
                except urllib.error.HTTPError as error:
                    status, headers, answer = error.code, error.headers, error.read()
                if self.command == "POST":
                    kind = (
                        message_key_id({"signature-input": self.headers["Signature-Input"]})
                        if "Signature-Input" in self.headers
                        else _cavage_algorithm(self.headers)
                    )
                    proxy.posts.append((self.path, kind, status))
                self.send_response(status)
                for name in ("Content-Type", "Retry-After"):
                    if name in headers:
                        self.send_header(name, headers[name])
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy() -> Iterator[Any]:
    made: list[RecordingProxy] = []

    def make(target_port: int) -> RecordingProxy:
        made.append(RecordingProxy(target_port))
        return made[-1]

    yield make
    for each in made:
        each.close()


def test_a_served_amity_node_accepts_rfc9421_deliveries(
    tmp_path: Path, served: Any, proxy: Any
) -> None:
    """Two real nodes; every POST between them (Follow, Accept, Update) is RFC 9421 signed
    with the sender's Ed25519 key and accepted with 202."""
    port_a, listen_b = free_port(), free_port()
    front_b = proxy(listen_b)
    a = make_school(tmp_path, "a", port_a)
    b = make_school(tmp_path, "b", front_b.port)  # b's base URL is the proxy's
    served(a, port_a, PRIVATE)
    served(b, listen_b, "--port", str(listen_b), PRIVATE)
    actor_a = f"http://127.0.0.1:{port_a}/actors/a"
    actor_b = f"http://127.0.0.1:{front_b.port}/actors/b"
    amity("follow", actor_b, PRIVATE, data=a)  # a caches b's actor: an Amity actor
    wait_until(
        lambda: query(a, "SELECT state FROM following WHERE actor = ?", actor_b) == [("accepted",)]
    )
    # Only what a sends passes the proxy: so far, its Follow.
    assert [(kind, status) for _, kind, status in front_b.posts] == [
        (f"{actor_a}#ed25519-key", 202)
    ]

    # And the other way: b follows a back, a's profile Update reaches b signed with Ed25519.
    amity("follow", actor_a, PRIVATE, data=b)
    wait_until(
        lambda: query(b, "SELECT state FROM following WHERE actor = ?", actor_a) == [("accepted",)]
    )
    profile = json.loads(amity("profile", "show", "--json", data=a).stdout)
    profile["capacity"] = 9
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(profile))
    amity("profile", "import", str(changed), data=a)
    wait_until(
        lambda: query(b, "SELECT count(*) FROM seen_activities WHERE type = 'Update'") == [(1,)]
    )
    assert {kind for _, kind, _ in front_b.posts} == {f"{actor_a}#ed25519-key"}
    assert {status for *_, status in front_b.posts} == {202}
    assert len(front_b.posts) >= 3  # Follow, Accept, Update
    assert json.loads(amity("queue", "--json", data=a).stdout) == []
