"""The inbox against real nodes in this process: what is accepted, what is refused and why."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from amity.protocol.httpsig import sign_request

from .inprocess import LiveNode, post_signed, start_node


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[LiveNode, LiveNode]]:
    receiver = await start_node(tmp_path, "receiver")
    sender = await start_node(tmp_path, "sender")
    yield receiver, sender
    for live in (receiver, sender):
        await live.server.close()
        live.node.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def follow(sender: LiveNode, receiver: LiveNode, **changes: Any) -> dict[str, Any]:
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{sender.actor}/activities/{uuid.uuid4()}",
        "type": "Follow",
        "actor": sender.actor,
        "object": receiver.actor,
    }
    activity.update(changes)
    return activity


async def test_a_signed_follow_is_accepted_once(
    pair: tuple[LiveNode, LiveNode], session: aiohttp.ClientSession
) -> None:
    receiver, sender = pair
    activity = follow(sender, receiver)
    inbox = f"{receiver.actor}/inbox"
    assert await post_signed(session, inbox, activity, sender.node) == (202, {"status": "accepted"})
    after_first = await receiver.state()
    assert [row[1] for row in after_first["followers"]] == [sender.actor]
    # The replay is acknowledged but changes nothing.
    status, answer = await post_signed(session, inbox, activity, sender.node)
    assert (status, answer) == (202, {"status": "already processed"})
    assert (await receiver.state()) == after_first


BAD_REQUESTS = [
    "unsigned",
    "wrong key",
    "digest mismatch",
    "stale date",
    "future date",
    "origin mismatch",
    "id on another host",
    "unknown actor",
    "oversized",
    "malformed json",
    "missing actor",
    "blocked host",
    "blocked actor",
]


@pytest.mark.parametrize("case", BAD_REQUESTS)
async def test_bad_requests_are_refused_and_change_nothing(
    pair: tuple[LiveNode, LiveNode], session: aiohttp.ClientSession, case: str
) -> None:
    receiver, sender = pair
    inbox = f"{receiver.base}/inbox"
    activity = follow(sender, receiver)
    kwargs: dict[str, Any] = {}
    expected = 401
    if case == "unsigned":
        async with session.post(inbox, json=activity) as response:
            status = response.status
    else:
        if case == "wrong key":
            kwargs["private_key"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif case == "digest mismatch":
            kwargs["signed_body"] = b'{"something": "else"}'
        elif case == "stale date":
            kwargs["now"] = datetime.now(UTC) - timedelta(hours=2)
        elif case == "future date":
            kwargs["now"] = datetime.now(UTC) + timedelta(hours=2)
        elif case == "origin mismatch":
            activity = follow(sender, receiver, actor="http://127.0.0.1:9/actors/someone")
        elif case == "id on another host":
            activity = follow(sender, receiver, id="http://127.0.0.1:9/activities/1")
        elif case == "unknown actor":
            kwargs["key_id"] = f"{sender.base}/actors/nobody#main-key"
        elif case == "oversized":
            activity = follow(sender, receiver, padding="x" * (1024 * 1024))
            expected = 413
        elif case == "malformed json":
            kwargs["body"] = b'{"type": "Follow",'
            expected = 400
        elif case == "missing actor":
            activity = {k: v for k, v in activity.items() if k != "actor"}
            expected = 400
        elif case == "blocked host":
            await receiver.run(lambda: receiver.node.block("127.0.0.1"))
            expected = 403
        elif case == "blocked actor":
            await receiver.run(lambda: receiver.node.block(sender.actor))
            expected = 403
        before = await receiver.state()
        status, answer = await post_signed(session, inbox, activity, sender.node, **kwargs)
        assert "error" in answer
        assert (await receiver.state()) == before
    assert status == expected
    assert (await receiver.state())["seen_activities"] == []
    assert (await receiver.state())["followers"] == []


async def test_unsupported_type_is_accepted_and_ignored(
    pair: tuple[LiveNode, LiveNode], session: aiohttp.ClientSession
) -> None:
    receiver, sender = pair
    activity = follow(sender, receiver, type="Like")
    status, _ = await post_signed(session, f"{receiver.base}/inbox", activity, sender.node)
    assert status == 202
    assert (await receiver.state())["followers"] == []


async def test_unknown_local_actor_inbox_is_404(
    pair: tuple[LiveNode, LiveNode], session: aiohttp.ClientSession
) -> None:
    receiver, sender = pair
    status, _ = await post_signed(
        session, f"{receiver.base}/actors/nobody/inbox", follow(sender, receiver), sender.node
    )
    assert status == 404


async def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    from amity.node.app import FederationSettings

    receiver = await start_node(
        tmp_path,
        "receiver",
        FederationSettings(allow_private_network=True, inbox_per_minute=1, inbox_burst=2),
    )
    sender = await start_node(tmp_path, "sender")
    try:
        async with aiohttp.ClientSession() as session:
            statuses = []
            for _ in range(3):
                activity = follow(sender, receiver, type="Like")
                statuses.append(
                    (await post_signed(session, f"{receiver.base}/inbox", activity, sender.node))[0]
                )
            assert statuses == [202, 202, 429]
            # A request whose signature fails is refused as such: the host's limit is
            # counted only for verified requests.
            async with session.post(
                f"{receiver.base}/inbox",
                data=b"{}",
                headers={"Signature": f'keyId="{sender.node.urls.rsa_key_id}",signature="AA=="'},
            ) as response:
                assert response.status == 401
            body = json.dumps(follow(sender, receiver, type="Like")).encode()
            headers = sign_request(
                method="POST",
                url=f"{receiver.base}/inbox",
                body=body,
                key_id=sender.node.urls.rsa_key_id,
                private_key=sender.node.keys.rsa_private,
                now=datetime.now(UTC),
            )
            async with session.post(
                f"{receiver.base}/inbox", data=body, headers=headers
            ) as response:
                assert response.status == 429
                assert int(response.headers["Retry-After"]) >= 1
    finally:
        for live in (receiver, sender):
            await live.server.close()
            live.node.close()


async def test_follow_gets_accept_and_profile_updates_flow(
    pair: tuple[LiveNode, LiveNode], session: aiohttp.ClientSession
) -> None:
    receiver, sender = pair
    # `amity follow` does this: record the Follow and queue it; the worker delivers it.
    receiver_actor = await receiver.run(receiver.node.actor_document)
    await sender.run(lambda: sender.node.follow(receiver_actor))

    async def until(check: Any) -> None:
        for _ in range(200):
            if await check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("condition not met")

    async def accepted() -> bool:
        return await sender.run(lambda: sender.node.following_state(receiver.actor)) == "accepted"

    await until(accepted)
    profile = await receiver.run(receiver.node.profile)
    assert profile is not None
    await receiver.run(lambda: receiver.node.publish_profile({**profile.data, "capacity": 4}))

    async def delivered() -> bool:
        return (await receiver.state())["deliveries"] == [] and any(
            row[0] == receiver.actor and json.loads(row[2])["capacity"] == 4
            for row in (await sender.state())["directory"]
        )

    await until(delivered)


async def test_blocking_drops_what_was_stored_from_the_blocked(
    pair: tuple[LiveNode, LiveNode], session: aiohttp.ClientSession
) -> None:
    receiver, sender = pair
    note = {
        "id": f"{sender.actor}/notes/1",
        "type": "Note",
        "attributedTo": sender.actor,
        "content": "hello",
    }
    create = follow(sender, receiver, type="Create", object=note)
    assert (await post_signed(session, f"{receiver.base}/inbox", create, sender.node))[0] == 202
    assert (
        await post_signed(session, f"{receiver.base}/inbox", follow(sender, receiver), sender.node)
    )[0] == 202
    state = await receiver.state()
    # A Note is acknowledged but not kept (Amity keeps profiles only).
    assert state["objects"] == [] and len(state["followers"]) == 1
    await receiver.run(lambda: receiver.node.block("127.0.0.1"))
    state = await receiver.state()
    assert state["objects"] == [] and state["followers"] == []
    assert [row[0] for row in state["blocks"]] == ["127.0.0.1"]
