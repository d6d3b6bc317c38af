"""Followers cannot turn one update into a flood, and the follow policy holds strangers.

A real `amity serve` school node is followed by fake actors served from real aiohttp apps
on 127.0.0.1 ports (each port a host); every POST that reaches a fake host is recorded,
including at a "third party" that never asked for anything.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from amity.federation.follows import FollowLimits
from amity.node.app import FederationSettings
from amity.protocol.httpsig import sign_request

from .helpers import EXAMPLE_PROFILE, amity, free_port, make_school, query
from .inprocess import start_node
from .mastodon_peer import MastodonPeer

PRIVATE = "--allow-private-network"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # every fake actor's
PEM = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


class FakeHost:
    """One host of made-up actors: serves their documents, records every POST it gets."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.actors: dict[str, dict[str, Any]] = {}
        self.posts: list[tuple[str, dict[str, Any]]] = []
        app = web.Application()
        app.router.add_get("/actors/{name}", self._actor)
        app.router.add_post("/{tail:.*}", self._post)
        self.server = TestServer(app, host="127.0.0.1", port=self.port)

    def add(
        self, name: str, inbox: str | None = None, shared: str | None = None, **extra: Any
    ) -> str:
        """A Person `name` whose inbox is `inbox` (default: its own, on this host)."""
        actor_id = f"{self.base}/actors/{name}"
        self.actors[name] = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": actor_id,
            "type": "Person",
            "preferredUsername": name,
            "inbox": inbox or f"{actor_id}/inbox",
            "publicKey": {"id": f"{actor_id}#main-key", "owner": actor_id, "publicKeyPem": PEM},
            **({"endpoints": {"sharedInbox": shared}} if shared else {}),
            **extra,
        }
        return actor_id

    async def _actor(self, request: web.Request) -> web.Response:
        actor = self.actors.get(request.match_info["name"])
        if actor is None:
            raise web.HTTPNotFound()
        return web.json_response(actor, content_type="application/activity+json")

    async def _post(self, request: web.Request) -> web.Response:
        self.posts.append((request.path, json.loads(await request.read())))
        return web.Response(status=202)

    def types(self) -> list[str]:
        return [activity["type"] for _, activity in self.posts]


@pytest.fixture
async def hosts() -> AsyncIterator[Callable[[], Any]]:
    started: list[FakeHost] = []

    async def make() -> FakeHost:
        host = FakeHost()
        await host.server.start_server()
        started.append(host)
        return host

    yield make
    for host in started:
        await host.server.close()


async def send_follow(
    session: aiohttp.ClientSession, actor: str, target: str, inbox: str, now: datetime | None = None
) -> tuple[int, str]:
    """POST a Follow of `target` signed as the fake `actor`; (status, reason)."""
    follow = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{actor}/follows/{uuid.uuid4()}",
        "type": "Follow",
        "actor": actor,
        "object": target,
    }
    body = json.dumps(follow).encode()
    headers = sign_request(
        method="POST",
        url=inbox,
        body=body,
        key_id=f"{actor}#main-key",
        private_key=KEY,
        now=now or datetime.now(UTC),
    )
    headers["Content-Type"] = "application/activity+json"
    async with session.post(inbox, data=body, headers=headers) as response:
        answer = await response.json(content_type=None)
        return response.status, str(answer.get("status") or answer.get("error"))


def school_node(tmp_path: Path, *config_lines: str) -> tuple[Path, int]:
    """A school's data directory on a free port, with more [federation] settings."""
    port = free_port()
    data = make_school(tmp_path, "school", port)
    with (data / "amity.toml").open("a") as config:
        config.write("".join(f"{line}\n" for line in config_lines))
    return data, port


async def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    for _ in range(int(timeout / 0.05)):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


def deliveries_done(data: Path) -> bool:
    return query(data, "SELECT count(*) FROM deliveries WHERE state = 'pending'") == [(0,)]


async def cli(*args: str, data: Path, check: bool = True) -> Any:
    """The real `amity` command, off the event loop (the fake hosts must keep answering)."""
    return await asyncio.to_thread(amity, *args, data=data, check=check)


async def test_a_follow_flood_cannot_make_one_update_send_more_than_four_posts_a_host(
    tmp_path: Path, served: Any, hosts: Any
) -> None:
    # The worst case: every Follow the rules allow becomes a follower at once.
    data, port = school_node(tmp_path, 'follow_policy = "accept-all"', "followers_per_host = 10")
    school = served(data, port, PRIVATE, "--no-lan-discovery")
    target = f"{school.base_url}/actors/school"
    third = await hosts()  # never asked for anything
    crowd = await hosts()  # many actors on one host, one shared inbox
    spread = await hosts()  # each actor its own inbox, shared inbox pointed at the third party
    liars = await hosts()  # inboxes on the third party
    singles = [await hosts() for _ in range(5)]  # many hosts, one actor each
    answers: dict[str, list[tuple[int, str]]] = {}
    async with aiohttp.ClientSession() as session:

        async def flood(name: str, actors: list[str]) -> None:
            answers[name] = [
                await send_follow(session, actor, target, f"{school.base_url}/inbox")
                for actor in actors
            ]

        await flood("crowd", [crowd.add(f"c{i}", shared=f"{crowd.base}/inbox") for i in range(30)])
        await flood(
            "spread", [spread.add(f"s{i}", shared=f"{third.base}/inbox") for i in range(10)]
        )
        await flood(
            "liars",
            [liars.add(f"l{i}", inbox=f"{third.base}/victim/{i}") for i in range(5)]
            + [liars.add("l5", inbox=f"{third.base}/victim", shared=f"{liars.base}/inbox")],
        )
        await flood("singles", [host.add("solo", shared=f"{third.base}/inbox") for host in singles])

    accepted = (202, "accepted")
    too_many = (
        f"Follow refused: 127.0.0.1:{crowd.port} already has 10 followers of this account, "
        "the most one host may have"
    )
    assert answers["crowd"] == [accepted] * 10 + [(403, too_many)] * 20
    too_spread = (
        f"Follow refused: 127.0.0.1:{spread.port} already reaches this account through 4 "
        "inboxes, the most one host may use; give its actors a shared inbox "
        "(endpoints.sharedInbox)"
    )
    assert answers["spread"] == [accepted] * 4 + [(403, too_spread)] * 6
    foreign = f"Follow refused: the follower's inbox must be on its own host {liars.base[7:]}"
    assert answers["liars"] == [(400, foreign)] * 6
    assert answers["singles"] == [accepted] * 5

    # Every Accept went to the follower's own inbox, on its own host.
    await until(lambda: deliveries_done(data) and len(crowd.posts) == 10)
    assert sorted(path for path, _ in crowd.posts) == sorted(
        f"/actors/c{i}/inbox" for i in range(10)
    )
    assert len(spread.posts) == 4 and all(host.types() == ["Accept"] for host in singles)
    assert third.posts == [] and liars.posts == []
    rows = query(data, "SELECT host, count(*), count(DISTINCT inbox) FROM followers GROUP BY host")
    assert sorted(rows) == sorted(
        [(f"127.0.0.1:{crowd.port}", 10, 1), (f"127.0.0.1:{spread.port}", 4, 4)]
        + [(f"127.0.0.1:{host.port}", 1, 1) for host in singles]
    )

    for host in (crowd, spread, *singles):
        host.posts.clear()
    profile = tmp_path / "changed.json"
    profile.write_text(json.dumps({**EXAMPLE_PROFILE, "capacity": 7}))
    await cli("profile", "import", str(profile), data=data)
    await until(lambda: deliveries_done(data) and len(spread.posts) == 4)
    await asyncio.sleep(0.5)  # time for a POST too many, which must not come
    # One update: one POST to the crowd's shared inbox, one per inbox of the spread host
    # (at most 4 a host), one to each single: 10 in all for 19 followers and 51 Follows,
    # within the bound of docs/protocol.md (4 per host that has followers).
    everyone = (third, crowd, spread, liars, *singles)
    assert sum(len(host.posts) for host in everyone) == 10 <= 4 * (2 + len(singles))
    assert [(path, a["type"]) for path, a in crowd.posts] == [("/inbox", "Update")]
    assert sorted(path for path, _ in spread.posts) == sorted(
        f"/actors/s{i}/inbox" for i in range(4)
    )
    assert all([path for path, _ in host.posts] == ["/actors/solo/inbox"] for host in singles)
    assert third.posts == [] and liars.posts == []


async def test_the_default_policy_holds_strangers_and_takes_amity_nodes(
    tmp_path: Path, served: Any
) -> None:
    data, port = school_node(tmp_path)  # no follow_policy: the default, "amity"
    school = served(data, port, PRIVATE, "--no-lan-discovery")
    target = f"{school.base_url}/actors/school"
    _, _, actor_document = school.get("/actors/school")
    assert json.loads(actor_document)["manuallyApprovesFollowers"] is True
    other_port = free_port()
    other = make_school(tmp_path, "other", other_port)
    served(other, other_port, PRIVATE, "--no-lan-discovery")
    peer = MastodonPeer("alice", "bob")
    await peer.server.start_server()
    try:
        # An Amity school follows: accepted at once, without the operator.
        await cli("follow", target, PRIVATE, data=other)
        await until(lambda: query(other, "SELECT state FROM following") == [("accepted",)])
        # Two Mastodon users ask: held, no Accept, listed as pending.
        async with aiohttp.ClientSession() as session:
            follows = {}
            for name in ("alice", "bob"):
                follows[name] = peer.activity(name, "Follow", target)
                assert await peer.post(session, name, f"{target}/inbox", follows[name]) == 202
        await asyncio.sleep(0.5)
        assert peer.received == []
        assert [row[0] for row in query(data, "SELECT actor FROM followers")] == [
            f"http://127.0.0.1:{other_port}/actors/other"
        ]
        host = f"127.0.0.1:{peer.port}"
        listing = (await cli("followers", "--pending", data=data)).stdout.splitlines()
        assert len(listing) == 3
        for line, name in zip(listing, ("alice", "bob"), strict=False):
            pattern = rf"{re.escape(peer.actor_id(name))}  \({name}@{re.escape(host)}\)  asked "
            assert re.fullmatch(pattern + r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line), line
        assert listing[2] == "Answer with: amity approve ACTOR, or amity reject ACTOR"
        pending = json.loads((await cli("followers", "--pending", "--json", data=data)).stdout)
        assert [row["address"] for row in pending] == [f"alice@{host}", f"bob@{host}"]
        followers = (await cli("followers", data=data)).stdout.splitlines()
        assert followers[-1] == "2 follow request(s) waiting: amity followers --pending"

        # Mistakes: one clear line each, nothing changed.
        mistakes = [
            ("approve", f"carol@{host}"),
            ("reject", f"alice@127.0.0.1:{free_port()}"),
            ("approve", "https://x.example/actors/alice"),
        ]
        results = await asyncio.gather(
            *(cli(command, wrong, data=data, check=False) for command, wrong in mistakes)
        )
        for (_, wrong), result in zip(mistakes, results, strict=True):
            assert result.returncode == 1
            assert result.stderr == (
                f"error: no pending follow request from {wrong} "
                "(amity followers --pending lists them)\n"
            )
        assert (
            len(json.loads((await cli("followers", "--pending", "--json", data=data)).stdout)) == 2
        )

        # Approve by NAME@HOST: alice becomes a follower and gets the Accept of her Follow.
        result = await cli("approve", f"alice@{host}", data=data)
        assert result.stdout == (
            f"Approved alice@{host} ({peer.actor_id('alice')}): it follows this node now.\n"
            "The Accept is delivered while the node serves.\n"
        )
        await until(lambda: peer.received)
        [(path, accept)] = peer.received
        assert path == "/users/alice/inbox" and accept["type"] == "Accept"
        assert accept["object"]["id"] == follows["alice"]["id"]
        # Reject by URL: bob's request goes, and he is told.
        result = await cli("reject", peer.actor_id("bob"), data=data)
        assert result.stdout == (
            f"Rejected the follow request of bob@{host} ({peer.actor_id('bob')}).\n"
            "The Reject is delivered while the node serves.\n"
        )
        await until(lambda: len(peer.received) == 2)
        path, refusal = peer.received[1]
        assert path == "/users/bob/inbox" and refusal["type"] == "Reject"
        assert refusal["object"]["id"] == follows["bob"]["id"]
        assert (await cli("followers", "--pending", data=data)).stdout == (
            "no follow requests waiting\n"
        )
        assert {row[0] for row in query(data, "SELECT actor FROM followers")} == {
            f"http://127.0.0.1:{other_port}/actors/other",
            peer.actor_id("alice"),
        }
        again = await cli("approve", f"bob@{host}", data=data, check=False)
        assert again.stderr == (
            f"error: no pending follow request from bob@{host} "
            "(amity followers --pending lists them)\n"
        )
    finally:
        await peer.server.close()


async def test_approve_all_holds_amity_nodes_too_and_accept_all_takes_anyone(
    tmp_path: Path, served: Any
) -> None:
    data, port = school_node(tmp_path, 'follow_policy = "approve-all"')
    school = served(data, port, PRIVATE, "--no-lan-discovery")
    target = f"{school.base_url}/actors/school"
    other_port = free_port()
    other = make_school(tmp_path, "other", other_port)
    served(other, other_port, PRIVATE, "--no-lan-discovery")
    await cli("follow", target, PRIVATE, data=other)
    await until(lambda: query(data, "SELECT actor FROM follow_requests"))
    await asyncio.sleep(0.3)
    assert query(other, "SELECT state FROM following") == [("pending",)]
    result = await cli("approve", f"other@127.0.0.1:{other_port}", data=data)
    assert result.stdout.startswith(f"Approved other@127.0.0.1:{other_port} ")
    await until(lambda: query(other, "SELECT state FROM following") == [("accepted",)])

    open_port = free_port()
    open_data = make_school(tmp_path, "open", open_port)
    with (open_data / "amity.toml").open("a") as config:
        config.write('follow_policy = "accept-all"\n')
    opened = served(open_data, open_port, PRIVATE, "--no-lan-discovery")
    _, _, actor_document = opened.get("/actors/open")
    assert json.loads(actor_document)["manuallyApprovesFollowers"] is False
    peer = MastodonPeer("alice")
    await peer.server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            follow = peer.activity("alice", "Follow", f"{opened.base_url}/actors/open")
            assert await peer.post(session, "alice", f"{opened.base_url}/inbox", follow) == 202
        await until(lambda: peer.received)
        assert peer.received[0][1]["type"] == "Accept"
        assert query(open_data, "SELECT count(*) FROM follow_requests") == [(0,)]
    finally:
        await peer.server.close()


async def test_a_bad_follow_policy_in_the_config_is_one_clear_line(tmp_path: Path) -> None:
    data, _ = school_node(tmp_path, 'follow_policy = "everyone"')
    result = await cli("followers", data=data, check=False)
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {data / 'amity.toml'} is damaged: [federation] follow_policy 'everyone': "
        "must be one of accept-all, amity, approve-all\n"
    )


async def test_held_requests_are_bounded_per_host_and_in_all(
    tmp_path: Path, served: Any, hosts: Any
) -> None:
    data, port = school_node(tmp_path)
    school = served(data, port, PRIVATE, "--no-lan-discovery")
    target = f"{school.base_url}/actors/school"
    many = await hosts()
    async with aiohttp.ClientSession() as session:
        answers = [
            await send_follow(session, many.add(f"p{i}"), target, f"{target}/inbox")
            for i in range(21)
        ]
        # A stranger that claims to be an Amity node is taken; its host's caps still apply.
        claimed = await send_follow(
            session,
            many.add("claims", type="Organization", nodeKind="school"),
            target,
            f"{target}/inbox",
        )
        # The same claim with a type Amity never gives a school is not an Amity node.
        odd = await send_follow(
            session, many.add("odd", nodeKind="school"), target, f"{target}/inbox"
        )
    assert answers == [(202, "accepted")] * 20 + [
        (
            403,
            f"Follow refused: 127.0.0.1:{many.port} already has 20 follow requests "
            "waiting for approval",
        )
    ]
    assert claimed == (202, "accepted") and odd == answers[-1]
    assert query(data, "SELECT count(*) FROM follow_requests") == [(20,)]
    assert query(data, "SELECT actor FROM followers") == [(f"{many.base}/actors/claims",)]
    await until(lambda: many.types() == ["Accept"])
    # A rejected one makes room; a blocked host's requests are dropped.
    await cli("reject", f"p0@127.0.0.1:{many.port}", data=data)
    await cli("block", "127.0.0.1", data=data)
    assert query(data, "SELECT count(*) FROM follow_requests") == [(0,)]


class SteppedClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_held_requests_expire_and_the_total_is_capped(tmp_path: Path, hosts: Any) -> None:
    clock = SteppedClock()
    limits = FollowLimits(pending_per_host=2, pending_total=3)
    settings = FederationSettings(
        allow_private_network=True, poll_interval=0.05, follow_limits=limits
    )
    school = await start_node(tmp_path, "school", settings, clock=clock)
    inbox = f"{school.actor}/inbox"
    try:
        first, second = await hosts(), await hosts()
        async with aiohttp.ClientSession() as session:
            answers = [
                await send_follow(session, first.add("a"), school.actor, inbox, clock.now),
                await send_follow(session, second.add("b"), school.actor, inbox, clock.now),
                await send_follow(session, second.add("c"), school.actor, inbox, clock.now),
                await send_follow(session, first.add("d"), school.actor, inbox, clock.now),
            ]
            assert answers == [(202, "accepted")] * 3 + [
                (403, "Follow refused: 3 follow requests are already waiting for approval")
            ]
            # 30 days later the three have expired: a new request finds room.
            clock.now += timedelta(days=30, seconds=1)
            late = await send_follow(session, first.add("e"), school.actor, inbox, clock.now)
        assert late == (202, "accepted")
        rows = await school.run(
            lambda: school.node.store.db.execute("SELECT actor FROM follow_requests").fetchall()
        )
        assert rows == [(f"{first.base}/actors/e",)]
    finally:
        await school.server.close()
        school.node.close()


def test_followers_with_foreign_inboxes_are_dropped_on_upgrade(tmp_path: Path) -> None:
    """A database of the version before: the follower reached on its own host stays (and
    gets its host), the one whose inbox is on another host is dropped."""
    from sqlite_utils import Database

    from amity.node.schema import migrations
    from amity.node.storage import open_database

    path = tmp_path / "old.db"
    old = Database(path)
    migrations.apply(old, stop_before="m011_follow_requests")
    for actor, inbox in (
        ("https://good.example/users/a", "https://good.example/inbox"),
        ("https://evil.example/users/b", "https://victim.example/inbox"),
    ):
        old.table("followers").insert(
            {"handle": "school", "actor": actor, "inbox": inbox, "follow_id": "f", "created": "t"}
        )
    old.close()
    upgraded = open_database(path)
    rows = upgraded.execute("SELECT actor, host FROM followers").fetchall()
    upgraded.close()
    assert rows == [("https://good.example/users/a", "good.example")]
