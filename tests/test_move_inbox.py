"""A Move received by an inbox: the checks (shape, signer, stranger, target's alsoKnownAs,
one move per actor, no loops) and the effect (the new actor followed, the old dropped),
on real in-process nodes; every refusal is a 4xx with a reason and changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from amity.federation import moves
from amity.node import account_moves
from amity.protocol.move import Move, move_activity

from .inprocess import LiveNode, post_signed, start_node
from .test_bounds import UNLIMITED

NOW = "2026-12-01T00:00:00Z"


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[dict[str, LiveNode]]:
    live = {name: await start_node(tmp_path, name, UNLIMITED) for name in "abcde"}
    a, b, c, e = live["a"], live["b"], live["c"], live["e"]
    # c and e each say they were b (as a node started from b's export would), b says it
    # was c (to make a loop); a follows b.
    for alias_of, node in ((b, c), (b, e), (c, b)):
        await node.run(
            lambda n=node, o=alias_of: account_moves.add_alias(
                n.node.store.db, n.node.handle, o.actor
            )
        )
    b_doc = await b.run(b.node.actor_document)
    await a.run(lambda: a.node.follow(b_doc))
    await _until(lambda: _following(a), [(b.actor, "accepted")])
    a_doc = await a.run(a.node.actor_document)
    await b.run(lambda: b.node.follow(a_doc))
    await _until(lambda: _following(b), [(a.actor, "accepted")])
    yield live
    for node in live.values():
        await node.server.close()
        node.node.close()


def _move(old: str, new: Any, **changes: Any) -> dict[str, Any]:
    return {**move_activity(f"{old}/activities/{uuid.uuid4()}", old, new, [], NOW), **changes}


async def _until(read: Any, expected: Any, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (value := await read()) != expected:
        assert loop.time() < deadline, value
        await asyncio.sleep(0.05)


async def _following(node: LiveNode) -> list[tuple[str, str]]:
    rows = await node.run(
        lambda: node.node.store.db.execute("SELECT actor, state FROM following").fetchall()
    )
    return sorted((row[0], row[1]) for row in rows)


async def test_moves_refused_and_applied(nodes: dict[str, LiveNode]) -> None:
    a, b, c, d, e = (nodes[name] for name in "abcde")
    inbox = a.node.urls.shared_inbox
    async with aiohttp.ClientSession() as session:

        async def post(activity: dict[str, Any], sender: LiveNode) -> tuple[int, dict[str, Any]]:
            return await post_signed(session, inbox, activity, sender.node)

        before = await a.state()
        refusals = [
            (_move(b.actor, c.actor, object=c.actor), "moves only itself"),
            (_move(b.actor, b.actor), "another actor"),
            (_move(b.actor, None), "target must be a URL"),
            (_move(b.actor, "mailto:x@example.org"), "not an http"),
            (_move(b.actor, d.actor), "does not name"),  # d never was b
            (_move(b.actor, c.actor, content="x" * 5000), "at most 4096"),
        ]
        for activity, reason in refusals:
            status, body = await post(activity, b)
            assert status == 400 and reason in body["error"], (activity, body)
        # A target that cannot be reached just now: 429, so the sender tries again later.
        status, body = await post(_move(b.actor, "http://127.0.0.1:1/actors/gone"), b)
        assert status == 429 and "just now" in body["error"], body
        # Signed by someone else than the actor that moves.
        status, _ = await post(_move(b.actor, c.actor), c)
        assert status == 401
        # A stranger's Move (nobody here follows d) is taken and changes nothing.
        status, body = await post(_move(d.actor, c.actor), d)
        assert status == 202
        after = await a.state()
        assert {k: v for k, v in after.items() if k != "seen_activities"} == {
            k: v for k, v in before.items() if k != "seen_activities"
        }
        assert await _following(a) == [(b.actor, "accepted")]

        # The real Move: a follows c now (a Follow queued, then accepted), and no longer b.
        status, body = await post(_move(b.actor, c.actor), b)
        assert status == 202, body
        assert [actor for actor, _ in await _following(a)] == [c.actor]
        followers = await a.run(
            lambda: a.node.store.db.execute("SELECT actor FROM followers").fetchall()
        )
        assert followers == []  # b's inbox is gone with it; c follows anew
        await _until(lambda: _following(a), [(c.actor, "accepted")])
        # Again (another id, same target): nothing more; another target: refused.
        status, _ = await post(_move(b.actor, c.actor), b)
        assert status == 202
        status, body = await post(_move(b.actor, e.actor), b)
        assert status == 409 and "moves once" in body["error"]
        # c moving back to b (who names c) would make a loop.
        status, body = await post(_move(c.actor, b.actor), c)
        assert status == 409 and "loop" in body["error"]
        assert await _following(a) == [(c.actor, "accepted")]


async def test_a_move_applies_to_every_local_account_concerned(nodes: dict[str, LiveNode]) -> None:
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    b_doc = await b.run(b.node.actor_document)
    c_doc = await c.run(c.node.actor_document)

    def hosted_follow_then_move() -> list[tuple[str, str, str]]:
        node = a.node
        second = node.add_school("second", {**node.profile().data, "name": "Second"})  # type: ignore[union-attr]
        second.follow(b_doc)
        local = {node.urls.id: node.handle, second.urls.id: "second"}
        db = node.store.db
        with db.atomic():
            moves.apply_move(db, Move("x", b.actor, c.actor), c_doc, local, 0.0, NOW)
        return db.execute("SELECT handle, actor, state FROM following ORDER BY handle").fetchall()

    rows = await a.run(hosted_follow_then_move)
    assert [tuple(r) for r in rows] == [("a", c.actor, "pending"), ("second", c.actor, "pending")]


def test_no_move_gets_a_5xx(tmp_path: Path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from .test_inbox_fuzz import json_values

    loop = asyncio.new_event_loop()
    receiver = loop.run_until_complete(start_node(tmp_path, "receiver", UNLIMITED))
    sender = loop.run_until_complete(start_node(tmp_path, "sender", UNLIMITED))
    session = loop.run_until_complete(_session())
    sender_doc = sender.node.actor_document()
    loop.run_until_complete(receiver.run(lambda: receiver.node.follow(sender_doc)))
    url = f"{receiver.base}/inbox"
    targets = st.sampled_from(
        [receiver.actor, sender.actor, "http://127.0.0.1:1/actors/x", f"{sender.base}/nothing"]
    )
    moves_like = st.builds(
        lambda n, obj, target, extra: {
            "id": f"{sender.actor}/activities/{n}",
            "type": "Move",
            "actor": sender.actor,
            "object": obj,
            "target": target,
            **extra,
        },
        st.integers(0, 10**9),
        st.just(sender.actor) | json_values,
        targets | json_values,
        st.dictionaries(st.sampled_from(["to", "published", "content"]), json_values, max_size=2),
    )

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(activity=moves_like)
    def signed_moves(activity: dict[str, Any]) -> None:
        status, body = loop.run_until_complete(post_signed(session, url, activity, sender.node))
        assert status < 500, body
        if status >= 400:
            assert body.get("error"), body

    try:
        signed_moves()
        rows = loop.run_until_complete(
            receiver.run(
                lambda: receiver.node.store.db.execute("SELECT * FROM remote_moves").fetchall()
            )
        )
        assert rows == []  # no target named the sender in its alsoKnownAs
    finally:
        loop.run_until_complete(session.close())
        for live in (receiver, sender):
            loop.run_until_complete(live.server.close())
            live.node.close()
        loop.close()


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


def test_moves_are_pruned_once_nothing_needs_them(school: Any) -> None:
    from datetime import timedelta

    from amity.federation.retention import prune

    db = school.store.db
    now = school.clock()
    old = now.timestamp() - 400 * 86400

    def actor(name: str) -> str:
        return f"https://far.example/actors/{name}"

    with db.atomic():
        for first, then, when in (
            ("a", "b", old),
            ("b", "c", old),
            ("x", "y", old),
            ("p", "q", now.timestamp()),
        ):
            db.table("remote_moves").insert(
                {
                    "old": actor(first),
                    "new": actor(then),
                    "host": "far.example",
                    "received_at": when,
                }
            )
        db.table("following").insert(
            {"handle": school.handle, "actor": actor("c"), "follow_id": "f", "state": "accepted",
             "created": "2026-01-01T00:00:00Z"}
        )  # fmt: skip
    prune(db, now)
    kept = {row[0] for row in db.execute("SELECT old FROM remote_moves").fetchall()}
    # a -> b -> c, c still followed: the chain stays; x -> y, unneeded: gone; p -> q: recent.
    assert kept == {actor("a"), actor("b"), actor("p")}
    with db.atomic():
        db.execute("DELETE FROM following")
    prune(db, now + timedelta(seconds=1))
    kept = {row[0] for row in db.execute("SELECT old FROM remote_moves").fetchall()}
    assert kept == {actor("p")}
