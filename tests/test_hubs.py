"""Hubs relay verified profiles; two hubs following each other; sync for late joiners."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from amity.federation import directory
from amity.protocol.profile_document import profile_document
from amity.protocol.proofs import sign_document

from .inprocess import LiveNode, post_signed, start_node

COUNTRIES = ["MX", "KE", "IN", "FR"]


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Poll `check` until it holds; fail after `timeout` seconds of wall-clock time."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{check.__name__}: not met within {timeout} s")
        await asyncio.sleep(0.05)


async def follow(follower: LiveNode, target: LiveNode) -> None:
    document = await target.run(target.node.actor_document)
    await follower.run(lambda: follower.node.follow(document))


async def listings(node: LiveNode) -> dict[str, Any]:
    rows = await node.run(
        lambda: node.node.store.db.execute(
            "SELECT actor, document FROM directory WHERE deleted_at IS NULL"
        ).fetchall()
    )
    return {actor: json.loads(document) for actor, document in rows}


async def connect(hub1: LiveNode, hub2: LiveNode, schools: list[LiveNode]) -> None:
    """The hubs follow each other; the first half of the schools follow hub1, the rest hub2."""
    await follow(hub1, hub2)
    await follow(hub2, hub1)
    half = len(schools) // 2
    for index, school in enumerate(schools):
        await follow(school, hub1 if index < half else hub2)


@pytest.fixture
async def network(tmp_path: Path) -> AsyncIterator[tuple[list[LiveNode], list[LiveNode]]]:
    hubs = [await start_node(tmp_path, f"hub{i}", kind="hub") for i in (1, 2)]
    schools = [
        await start_node(tmp_path, f"school{i}", country=country)
        for i, country in enumerate(COUNTRIES)
    ]
    yield hubs, schools
    for live in hubs + schools:
        await live.server.close()
        live.node.close()


async def test_four_schools_two_hubs_converge_and_updates_cross_both_hubs_once(
    network: tuple[list[LiveNode], list[LiveNode]],
) -> None:
    (hub1, hub2), schools = network
    await connect(hub1, hub2, schools)
    everyone = {school.actor for school in schools}

    async def converged() -> bool:
        for node in [*schools, hub1, hub2]:
            if set(await listings(node)) != everyone:
                return False
        return True

    await until(converged)
    # A new node can start from any node: its NodeInfo names the hubs it follows.
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{schools[0].base}/nodeinfo/2.1") as response,
    ):
        info = await response.json(content_type=None)
    assert info["metadata"]["hubs"] == [hub1.actor]

    # A change made at school0 (behind hub1) reaches school3 (behind hub2), once each.
    profile = await schools[0].run(schools[0].node.profile)
    assert profile is not None
    await schools[0].run(lambda: schools[0].node.publish_profile({**profile.data, "capacity": 42}))

    async def updated() -> bool:
        for node in [*schools, hub1, hub2]:
            if (await listings(node))[schools[0].actor]["capacity"] != 42:
                return False
        return True

    await until(updated)
    await asyncio.sleep(0.5)  # let any echo arrive, so the count below would see it
    version = (await listings(schools[3]))[schools[0].actor]["updated"]
    for node in [*schools[1:], hub1, hub2]:
        received = await node.run(
            lambda n=node: n.node.store.db.execute(
                "SELECT count(*) FROM seen_activities WHERE type IN ('Update', 'Announce') "
                "AND actor != ?",
                [n.actor],
            ).fetchone()[0]
        )
        assert received >= 1
        arrivals = await node.run(
            lambda n=node: [
                row[0] for row in n.node.store.db.execute("SELECT id FROM seen_activities")
            ]
        )
        assert len(arrivals) == len(set(arrivals))
    # No node got this version twice: each relayed copy is a distinct Announce, so count
    # deliveries of it in the senders' outboxes per receiving inbox.
    for sender in (hub1, hub2):
        rows = await sender.run(
            lambda s=sender: s.node.store.db.execute(
                "SELECT document FROM outbox WHERE type = 'Announce'"
            ).fetchall()
        )
        relayed = [json.loads(r[0]) for r in rows]
        copies = [
            a
            for a in relayed
            if a["object"]["updated"] == version and a["object"]["attributedTo"] == schools[0].actor
        ]
        assert len(copies) == 1, "each hub relays a version once"


async def test_a_late_school_catches_up_by_sync_then_gets_updates_live(
    tmp_path: Path,
) -> None:
    hub = await start_node(tmp_path, "hub", kind="hub")
    early = [await start_node(tmp_path, f"early{i}", country="KE") for i in range(50)]
    late = None
    try:
        for school in early:
            await follow(school, hub)

        async def hub_has_all() -> bool:
            return len(await listings(hub)) == 50

        await until(hub_has_all, timeout=60)
        late = await start_node(tmp_path, "late", country="NO")
        await follow(late, hub)

        async def synced() -> bool:
            return len(await listings(late)) == 51

        await until(synced, timeout=60)
        profile = await early[7].run(early[7].node.profile)
        assert profile is not None
        await early[7].run(lambda: early[7].node.publish_profile({**profile.data, "capacity": 9}))

        async def live() -> bool:
            return (await listings(late))[early[7].actor]["capacity"] == 9

        await until(live, timeout=60)
    finally:
        for live_node in [hub, *early, *([late] if late else [])]:
            await live_node.server.close()
            live_node.node.close()


async def test_a_hub_given_a_forged_or_stale_proof_stores_and_relays_nothing(
    network: tuple[list[LiveNode], list[LiveNode]],
) -> None:
    (hub, _), schools = network
    school, watcher = schools[0], schools[1]
    await follow(school, hub)
    await follow(watcher, hub)

    async def ready() -> bool:  # both listed, every relay delivered: nothing in flight
        held = await listings(hub)
        return {school.actor, watcher.actor} <= set(held) and (await hub.state())[
            "deliveries"
        ] == []

    await until(ready)
    signed = (await listings(hub))[school.actor]
    before = await hub.state()

    forged = {**signed, "capacity": 99}  # changed after signing
    other_key = sign_document(
        profile_document(
            {
                "country": "MX",
                "timezone": "UTC",
                "languages": {"instruction": ["es"], "learning": []},
                "ages": [9, 12],
                "modes": ["async"],
                "school_days": ["mon"],
                "school_hours": ["08:00", "14:00"],
                "capacity": 1,
                "name": "Fake",
                "subjects": [],
                "terms": [],
            },
            profile_id=signed["id"],
            actor_id=school.actor,
            published=signed["published"],
            updated="2099-01-01T00:00:00Z",
        ),
        bytes(32),
        f"{school.actor}#ed25519-key",
        "2099-01-01T00:00:00Z",
    )
    stale = {**signed}  # a genuine proof, but not newer than what the hub holds
    async with aiohttp.ClientSession() as session:
        for n, obj in enumerate((forged, other_key, stale)):
            update = {
                "id": f"{school.actor}/activities/forged-{n}",
                "type": "Update",
                "actor": school.actor,
                "object": obj,
            }
            status, _ = await post_signed(session, f"{hub.base}/inbox", update, school.node)
            assert status in (202, 400)
    after = await hub.state()
    assert after["directory"] == before["directory"]
    assert after["deliveries"] == before["deliveries"]
    assert [r for r in after["outbox"] if r not in before["outbox"]] == []


async def test_pause_resume_and_delete_cross_both_hubs(
    network: tuple[list[LiveNode], list[LiveNode]],
) -> None:
    (hub1, hub2), schools = network
    await connect(hub1, hub2, schools)
    everyone = [*schools, hub1, hub2]
    source, far = schools[0], schools[3]

    async def state_of(node: LiveNode) -> tuple[Any, ...] | None:
        rows = await node.run(
            lambda: node.node.store.db.execute(
                "SELECT paused, deleted_at IS NOT NULL FROM directory WHERE actor = ?",
                [source.actor],
            ).fetchall()
        )
        return tuple(rows[0]) if rows else None

    async def everywhere(expected: tuple[Any, ...]) -> bool:
        return all([await state_of(node) == expected for node in everyone])

    await until(lambda: everywhere((0, 0)))
    await source.run(lambda: source.node.set_paused(True))
    await until(lambda: everywhere((1, 0)))
    visible = await far.run(lambda: directory.search(far.node.store.db, directory.Filters(), 50, 0))
    assert source.actor not in {row["actor"] for row in visible}
    await source.run(lambda: source.node.set_paused(False))
    await until(lambda: everywhere((0, 0)))

    await source.run(source.node.withdraw_profile)
    await until(lambda: everywhere((0, 1)))  # the signed Delete crossed both hubs
    profile = await source.run(lambda: source.node.store.profile("school0", True))
    assert profile is not None
    await source.run(lambda: source.node.publish_profile(profile.data))
    await until(lambda: everywhere((0, 0)))  # a new profile brings the school back
