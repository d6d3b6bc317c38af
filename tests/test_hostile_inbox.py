"""The inbox and HTTP front door against a stranger: floods, lies about addresses, slow
connections and input that once gave a 500. Real `amity serve` processes on 127.0.0.1;
127.0.0.2 plays the stranger."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from amity.federation.actors import REFETCH_INTERVAL
from amity.federation.ratelimit import RateLimiter, address_key
from amity.node.app import FederationSettings
from amity.node.config import load_config
from amity.node.errors import NodeError
from amity.node.forwarded import SourceAddresses, parse_networks
from amity.node.keys import ActorKeys, load_keys
from amity.protocol.activities import MAX_ID_LENGTH, host_of
from amity.protocol.actor import ActorUrls
from amity.protocol.errors import MalformedDocument
from amity.protocol.httpsig import sign_request
from amity.protocol.jsontext import nesting_exceeds

from .helpers import ServedNode, free_port, make_school
from .inprocess import start_node

STRANGER = "127.0.0.2"
JUNK_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class School:
    """A served school whose key the test signs with, as that school would."""

    def __init__(self, node: ServedNode) -> None:
        self.served = node
        config = load_config(node.data)
        self.urls = ActorUrls(config.base_url, config.handle)
        self.keys: ActorKeys = load_keys(config.keys_dir, config.handle)

    def activity(self, target: str, **changes: Any) -> dict[str, Any]:
        """A Like (accepted and ignored, so it changes nothing) from this school."""
        return {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{self.urls.id}/activities/{uuid.uuid4()}",
            "type": "Like",
            "actor": self.urls.id,
            "object": target,
            **changes,
        }


def served_node(tmp: Path, handle: str, federation: str = "") -> ServedNode:
    port = free_port()
    data = make_school(tmp, handle, port)
    with (data / "amity.toml").open("a") as config:
        config.write(federation)
    return ServedNode(data, port, "--allow-private-network", "--no-lan-discovery").start()


def log_of(node: ServedNode) -> str:
    """Everything the served process wrote (stderr goes to the same pipe), once it stopped."""
    node.kill(15)
    assert node.process is not None and node.process.stdout is not None
    return node.process.stdout.read()


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[School]:
    node = served_node(tmp_path_factory.mktemp("school"), "school")
    yield School(node)
    node.stop()


@pytest.fixture
def nodes() -> Iterator[list[ServedNode]]:
    started: list[ServedNode] = []
    yield started
    for node in started:
        node.stop()


def signed(
    url: str,
    body: bytes,
    key_id: str,
    private_key: rsa.RSAPrivateKey,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    headers = sign_request(
        method="POST",
        url=url,
        body=body,
        key_id=key_id,
        private_key=private_key,
        now=datetime.now(UTC),
    )
    return {**headers, "Content-Type": "application/activity+json", **(extra or {})}


async def post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any], float]:
    start = time.monotonic()
    async with session.post(url, data=body, headers=headers) as response:
        answer = await response.json(content_type=None)
        return response.status, answer, time.monotonic() - start


def stranger_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(STRANGER, 0)))


# -- 1. rate limits that a stranger cannot poison -------------------------------------------


async def test_a_junk_flood_naming_a_school_key_does_not_limit_the_school(
    tmp_path: Path, school: School, nodes: list[ServedNode]
) -> None:
    hub = served_node(
        tmp_path,
        "hub",
        "inbox_per_minute = 1\ninbox_burst = 15\n"
        "inbox_per_minute_per_address = 1\ninbox_burst_per_address = 20\n",
    )
    nodes.append(hub)
    inbox = f"{hub.base_url}/inbox"
    target = f"{hub.base_url}/actors/hub"
    junk: list[tuple[int, str]] = []
    genuine: list[tuple[int, float]] = []

    async def flood() -> None:
        async with stranger_session() as session:
            for _ in range(120):
                body = json.dumps(school.activity(target)).encode()
                headers = signed(inbox, body, school.urls.rsa_key_id, JUNK_KEY)
                status, answer, _ = await post(session, inbox, body, headers)
                junk.append((status, answer["error"]))

    async def deliver() -> None:
        async with aiohttp.ClientSession() as session:  # from 127.0.0.1, like the school
            for _ in range(12):
                body = json.dumps(school.activity(target)).encode()
                headers = signed(inbox, body, school.urls.rsa_key_id, school.keys.rsa_private)
                status, _, took = await post(session, inbox, body, headers)
                genuine.append((status, took))
                await asyncio.sleep(0.02)

    await asyncio.gather(flood(), deliver())
    # The stranger's junk is refused as junk (429 once the school's key was fetched again
    # for it: no more of that for a while), then stopped at its own address's limit (20 at
    # once). None of it counted against the school's host (15 at once).
    assert junk[0][0] == 401
    assert {status for status, _ in junk[:20]} == {401, 429}
    assert len([status for status, _ in junk[:20] if status == 401]) <= 2
    assert all("fetched again at most every" in error for status, error in junk[2:20])
    assert set(junk[20:]) == {(429, "too many requests from this address")}
    assert [status for status, _ in genuine] == [202] * 12
    assert max(took for _, took in genuine) < 2.0
    log = log_of(hub)
    assert "Traceback" not in log


async def test_forwarded_for_counts_only_from_a_trusted_proxy(
    tmp_path: Path, nodes: list[ServedNode]
) -> None:
    hub = served_node(
        tmp_path,
        "hub",
        'trusted_proxies = ["127.0.0.1"]\n'
        "inbox_per_minute_per_address = 1\ninbox_burst_per_address = 3\n",
    )
    nodes.append(hub)
    inbox = f"{hub.base_url}/inbox"

    async def statuses(session: aiohttp.ClientSession, forwarded: str, count: int) -> list[int]:
        found = []
        for _ in range(count):
            async with session.post(
                inbox, data=b"{}", headers={"X-Forwarded-For": forwarded}
            ) as response:
                found.append(response.status)
        return found

    async with aiohttp.ClientSession() as proxy:  # 127.0.0.1: the trusted proxy
        # Each client the proxy names has its own allowance (401: these are unsigned).
        assert await statuses(proxy, "203.0.113.5", 4) == [401, 401, 401, 429]
        assert await statuses(proxy, "203.0.113.6", 1) == [401]
        # What the client itself wrote further left does not buy it a new allowance.
        assert await statuses(proxy, "198.51.100.1, 203.0.113.5", 1) == [429]
        assert await statuses(proxy, "203.0.113.5, 127.0.0.1", 1) == [429]
    async with stranger_session() as stranger:  # not a trusted proxy: its header is ignored
        assert await statuses(stranger, "203.0.113.7", 2) == [401, 401]
        assert await statuses(stranger, "203.0.113.8", 2) == [401, 429]


def test_source_address_rules() -> None:
    addresses = SourceAddresses(parse_networks(["127.0.0.1", "10.0.0.0/8", "::1"]))
    assert addresses.source("127.0.0.1", []) == "127.0.0.1"
    assert addresses.source("127.0.0.1", ["203.0.113.5"]) == "203.0.113.5"
    assert addresses.source("127.0.0.1", ["1.2.3.4, 203.0.113.5, 10.1.2.3"]) == "203.0.113.5"
    assert addresses.source("127.0.0.1", ["1.2.3.4", "203.0.113.5"]) == "203.0.113.5"
    assert addresses.source("::1", ["not an address"]) == "::1"
    assert addresses.source("127.0.0.1", ["junk, 10.1.2.3"]) == "10.1.2.3"
    assert addresses.source("192.0.2.1", ["203.0.113.5"]) == "192.0.2.1"
    with pytest.raises(ValueError, match="trusted_proxies: 'localhost' is not an IP address"):
        parse_networks(["localhost"])


def test_a_bad_trusted_proxies_entry_is_one_clear_error(tmp_path: Path) -> None:
    data = make_school(tmp_path, "school", free_port())
    with (data / "amity.toml").open("a") as config:
        config.write('trusted_proxies = ["127.0.0.1", "proxy.local"]\n')
    with pytest.raises(NodeError, match=r"trusted_proxies: 'proxy\.local' is not an IP address"):
        load_config(data)


def test_limiter_memory_is_bounded_and_ipv6_counts_by_network() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    limiter = RateLimiter(60, 5, lambda: now[0], max_keys=100)
    for n in range(10_000):
        limiter.check(f"host-{n}")
        assert len(limiter) <= 100
    for _ in range(5):
        assert limiter.check("busy") == 0
    assert limiter.check("busy") > 0
    now[0] += timedelta(seconds=5)  # every bucket is full again: idle, so forgotten to make room
    limiter.check("newcomer")
    assert len(limiter) == 1
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("192.0.2.7") == "192.0.2.7"


def test_host_of_answers_alike_when_asked_again_and_for_long_or_odd_urls() -> None:
    """host_of is cached for the URLs an inbox sees again and again: a repeat, a URL longer
    than any id (not cached), and what is no URL at all get the answers they always had."""
    long_url = "https://School.Example:8443/" + "a" * MAX_ID_LENGTH
    for _ in range(2):
        assert host_of("https://School.Example:8443/actors/x") == "school.example:8443"
        assert host_of(long_url) == "school.example:8443"
        for odd in ("ftp://school.example/", "https://school.example:99999/", "", ["x"], None):
            with pytest.raises(MalformedDocument):
                host_of(odd)  # type: ignore[arg-type]


# -- 4. no 500 from any input ------------------------------------------------------------


def raw_exchange(port: int, request: bytes, close_early: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        if close_early:
            return b""
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer:
                head, _, rest = answer.partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(rest) >= length[0]:
                    break
        return answer


async def test_every_former_500_is_a_400_with_a_reason(
    tmp_path: Path, school: School, nodes: list[ServedNode]
) -> None:
    hub = served_node(tmp_path, "hub")
    nodes.append(hub)
    inbox = f"{hub.base_url}/inbox"
    target = f"{hub.base_url}/actors/hub"
    deep = b"[" * 10_000 + b"]" * 10_000
    bodies = {
        "deep array": deep,
        "deep in the object": json.dumps(school.activity(target)).encode()[:-1]
        + b', "x": '
        + b'{"a":' * 10_000
        + b"1"
        + b"}" * 10_000
        + b"}",
        "type as a list": json.dumps(school.activity(target, type=["Create"])).encode(),
        "type as an object": json.dumps(school.activity(target, type={"a": 1})).encode(),
        "object type as a list": json.dumps(
            school.activity(
                target, type="Update", object={"id": target, "type": ["Person"], "proof": {}}
            )
        ).encode(),
        "object type as an object": json.dumps(
            school.activity(target, type="Create", object={"id": target, "type": {"x": 1}})
        ).encode(),
    }
    reasons = {}
    async with aiohttp.ClientSession() as session:
        for case, body in bodies.items():
            # Unsigned or junk-signed, the body is not even read as JSON.
            status, answer, _ = await post(session, inbox, body, {})
            assert (case, status) == (case, 401), answer
            headers = signed(inbox, body, school.urls.rsa_key_id, school.keys.rsa_private)
            status, answer, _ = await post(session, inbox, body, headers)
            assert (case, status) == (case, 400), answer
            reasons[case] = answer["error"]
    assert reasons["deep array"] == "body is nested too deeply (more than 64 levels)"
    assert reasons["deep in the object"] == reasons["deep array"]
    assert reasons["type as a list"] == 'activity type must be one string, like "Follow"'
    assert reasons["type as an object"] == reasons["type as a list"]
    assert reasons["object type as a list"] == 'object type must be one string, like "Note"'
    assert reasons["object type as an object"] == reasons["object type as a list"]

    queries = {
        "/directory?since=%C2%B2": "since",  # superscript two: str.isdigit says yes
        "/directory?since=%D9%A3": "since",  # Arabic-Indic three
        "/directory?since=18446744073709551616": "since",  # 2**64
        "/directory?since=9223372036854775808": "since",  # 2**63, past SQLite's integers
        "/revocations?since=%EF%BC%91": "since",  # fullwidth one
        "/revocations?since=99999999999999999999999999999": "since",
        "/actors/hub/outbox?page=%C2%B2": "page",
        "/actors/hub/followers?page=18446744073709551616": "page",
        "/actors/hub/following?page=%D9%A3": "page",
        "/actors/hub/outbox?page=0": "page",
    }
    for path, name in queries.items():
        status, _, body = hub.get(path)
        assert (path, status) == (path, 400)
        assert json.loads(body)["error"].startswith(f"{name} must be a whole number from ")
    status, _, body = hub.get("/directory?since=9223372036854775807")
    assert status == 200 and json.loads(body)["orderedItems"] == []

    # A client that leaves mid-upload, and malformed HTTP: refused without a traceback.
    raw_exchange(
        hub.port,
        b"POST /inbox HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b'{"a": ' * 50,
        close_early=True,
    )
    answer = raw_exchange(hub.port, b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400") or answer.startswith(b"HTTP/1.0 400")
    await asyncio.sleep(0.3)
    assert hub.get("/.well-known/nodeinfo")[0] == 200
    log = log_of(hub)
    assert "Traceback" not in log
    assert " ERROR " not in log


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=6),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(alphabet='[]{}"\\', max_size=3), children, max_size=3)
        ),
        max_leaves=40,
    )
)
def test_nesting_depth_matches_the_parsed_value(value: Any) -> None:
    def depth(v: Any) -> int:
        if isinstance(v, dict):
            return 1 + max(map(depth, v.values()), default=0)
        if isinstance(v, list):
            return 1 + max(map(depth, v), default=0)
        return 0

    body = json.dumps(value).encode()
    for limit in (1, 2, 3, 5):
        assert nesting_exceeds(body, limit) == (depth(value) > limit)


def test_depth_check_stays_cheap_for_hostile_bodies() -> None:
    bodies = [
        b"[" * 65 + b'"' + b'\\"' * 300_000,  # escaped quotes, never closed
        b"[" + b",".join([b"[" * 63 + b"]" * 63] * 8000) + b"]",  # 1 MiB, 64 deep everywhere
    ]
    for body in bodies:
        start = time.monotonic()
        nesting_exceeds(body)
        assert time.monotonic() - start < 2.0


# -- 4. slow connections are closed --------------------------------------------------------


def seconds_until_closed(sock: socket.socket, dribble: bytes, every: float, limit: float) -> float:
    """Send `dribble` a byte every `every` seconds; the seconds until the server closed."""
    start = time.monotonic()
    sock.settimeout(every)
    for byte in dribble:
        try:
            sock.send(bytes([byte]))
            if sock.recv(4096) == b"":
                return time.monotonic() - start
        except TimeoutError:
            pass
        except OSError:
            return time.monotonic() - start
        if time.monotonic() - start > limit:
            break
    raise AssertionError(f"the server kept the connection open for {limit} s")


def test_slow_headers_bodies_and_idle_connections_are_closed(
    tmp_path: Path, nodes: list[ServedNode]
) -> None:
    hub = served_node(
        tmp_path,
        "hub",
        "header_timeout_seconds = 0.5\nidle_timeout_seconds = 1.5\nbody_timeout_seconds = 0.5\n",
    )
    nodes.append(hub)
    header = b"GET /.well-known/nodeinfo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    with socket.create_connection(("127.0.0.1", hub.port)) as sock:
        # The header deadline (0.5 s), well before the idle timeout (1.5 s).
        assert 0.4 < seconds_until_closed(sock, header, 0.05, 6) < 1.3
    # Idle after an answer: closed at the idle timeout; a later header dribbled is too.
    with socket.create_connection(("127.0.0.1", hub.port)) as sock:
        sock.sendall(b"GET /.well-known/nodeinfo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(5)
        start = time.monotonic()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
        assert 1.3 < time.monotonic() - start < 4
    with socket.create_connection(("127.0.0.1", hub.port)) as sock:
        sock.sendall(b"GET /.well-known/nodeinfo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(2)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert 1.3 < seconds_until_closed(sock, header, 0.05, 8) < 4
    # A body sent a byte at a time: 408 at the body timeout.
    with socket.create_connection(("127.0.0.1", hub.port)) as sock:
        sock.sendall(b"POST /inbox HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n")
        sock.settimeout(0.1)
        start, answer = time.monotonic(), b""
        while b"\r\n\r\n" not in answer and time.monotonic() - start < 5:
            sock.send(b" ")
            with contextlib.suppress(TimeoutError):
                answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408")
        assert 0.4 < time.monotonic() - start < 2
    assert "Traceback" not in log_of(hub)


# -- 5. quiet refusals ---------------------------------------------------------------------


async def test_a_key_that_cannot_be_fetched_gets_one_fixed_answer(
    tmp_path: Path, nodes: list[ServedNode]
) -> None:
    hub = served_node(tmp_path, "hub")
    nodes.append(hub)
    inbox = f"{hub.base_url}/inbox"
    silent = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    key_ids = {
        "host does not answer": f"{silent}/actors/x#main-key",
        "host answers 404": f"{hub.base_url}/actors/nobody#main-key",
        "host answers something else": f"{hub.base_url}/.well-known/nodeinfo#main-key",
    }
    answers = {}
    async with aiohttp.ClientSession() as session:
        for case, key_id in key_ids.items():
            actor = key_id.split("#")[0]
            activity = {
                "id": f"{actor}/activities/1",
                "type": "Follow",
                "actor": actor,
                "object": f"{hub.base_url}/actors/hub",
            }
            body = json.dumps(activity).encode()
            status, answer, _ = await post(
                session, inbox, body, signed(inbox, body, key_id, JUNK_KEY)
            )
            answers[case] = (status, answer)
    assert set(map(json.dumps, answers.values())) == {
        json.dumps((401, {"error": "cannot verify the signature"}))
    }
    log = log_of(hub)
    assert f"cannot get key {key_ids['host does not answer']}" in log  # for the operator
    assert "Traceback" not in log


# -- 15. a failing signature refetches a key at most once in REFETCH_INTERVAL ------------


class Peer:
    """Another server on 127.0.0.1 that serves one actor and counts how often it is asked."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.gets = 0
        self.retry_after: str | None = None  # the receiver's last answer to it
        app = web.Application()
        app.router.add_get("/actors/peer", self.actor)
        self.server = TestServer(app, host="127.0.0.1", port=free_port())

    @property
    def actor_id(self) -> str:
        return str(self.server.make_url("/actors/peer"))

    async def actor(self, request: web.Request) -> web.Response:
        from cryptography.hazmat.primitives import serialization

        self.gets += 1
        pem = (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        document = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": self.actor_id,
            "type": "Person",
            "inbox": f"{self.actor_id}/inbox",
            "publicKey": {
                "id": f"{self.actor_id}#main-key",
                "owner": self.actor_id,
                "publicKeyPem": pem,
            },
        }
        return web.json_response(document, content_type="application/activity+json")


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    peer = Peer()
    await peer.server.start_server()
    yield peer
    await peer.server.close()


async def test_junk_signatures_refetch_a_key_at_most_once_per_interval(
    tmp_path: Path, peer: Peer
) -> None:
    clock = [datetime.now(UTC)]
    receiver = await start_node(
        tmp_path,
        "receiver",
        FederationSettings(allow_private_network=True),
        clock=lambda: clock[0],
    )
    inbox = f"{receiver.base}/inbox"
    key_id = f"{peer.actor_id}#main-key"

    async def send(session: aiohttp.ClientSession, private_key: rsa.RSAPrivateKey) -> int:
        activity = {
            "id": f"{peer.actor_id}/activities/{uuid.uuid4()}",
            "type": "Like",
            "actor": peer.actor_id,
            "object": receiver.actor,
        }
        body = json.dumps(activity).encode()
        headers = signed(inbox, body, key_id, private_key)
        async with session.post(inbox, data=body, headers=headers) as response:
            peer.retry_after = response.headers.get("Retry-After")
            return response.status

    try:
        async with aiohttp.ClientSession() as session:
            # The first fetch, then one more for the first signature that fails with it.
            assert [await send(session, JUNK_KEY) for _ in range(50)] == [401] * 2 + [429] * 48
            assert peer.gets == 2
            assert await send(session, peer.key) == 202  # the real key still works
            clock[0] += timedelta(seconds=REFETCH_INTERVAL - 1)
            assert await send(session, JUNK_KEY) == 429
            assert peer.gets == 2
            clock[0] += timedelta(seconds=1)  # the interval is over: one more fetch is allowed
            assert [await send(session, JUNK_KEY) for _ in range(10)] == [401] + [429] * 9
            assert peer.gets == 3
            # A genuine new key soon after a flood is told when to try again, and then
            # fetched once.
            peer.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            assert await send(session, peer.key) == 429
            assert peer.retry_after == str(int(REFETCH_INTERVAL))
            clock[0] += timedelta(seconds=REFETCH_INTERVAL)
            assert await send(session, peer.key) == 202
            assert peer.gets == 4
    finally:
        await receiver.server.close()
        receiver.node.close()
