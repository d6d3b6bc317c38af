"""Bounded storage: a flood of signed junk stops at its quota, and what grows is pruned."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlite_utils import Database

from amity.federation import (
    actor_cache,
    delivery_queue,
    directory,
    endorsement_store,
    limits,
    relations,
    retention,
)
from amity.node.app import FederationSettings
from amity.node.schema import migrations
from amity.node.storage import open_database
from amity.protocol import activities

from .helpers import ROOT
from .inprocess import LiveNode, post_signed, start_node
from .mastodon_peer import MastodonPeer

# Generous rate limits: these tests are about what is kept, not how fast it may come.
UNLIMITED = FederationSettings(
    allow_private_network=True,
    poll_interval=0.05,
    first_retry=0.2,
    inbox_per_minute=1e6,
    inbox_burst=100_000,
)


class SteppedClock:
    """The node's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def activity(actor: str, kind: str, obj: Any, **extra: Any) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{actor}/activities/{uuid.uuid4()}",
        "type": kind,
        "actor": actor,
        "object": obj,
        **extra,
    }


def note(actor: str, size: int) -> dict[str, Any]:
    return {
        "id": f"{actor}/notes/{uuid.uuid4()}",
        "type": "Note",
        "attributedTo": actor,
        "content": "x" * size,
    }


async def profile_update(sender: LiveNode) -> dict[str, Any]:
    profile = await sender.run(sender.node.profile)
    assert profile is not None
    return activities.update(
        f"{sender.actor}/activities/{uuid.uuid4()}",
        sender.actor,
        profile.document,
        sender.node.urls.followers,
        sender.node.now(),
    )


async def database_size(live: LiveNode) -> int:
    """The database file's size once the write-ahead log is folded into it."""
    await live.run(lambda: live.node.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
    return os.path.getsize(live.node.config.database_path)


async def count(live: LiveNode, table: str) -> int:
    db = live.node.store.db
    return int(await live.run(lambda: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]))


async def test_a_storage_flood_stops_at_the_quota_and_the_database_stays_small(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    receiver = await start_node(tmp_path, "receiver", UNLIMITED)
    flooder = await start_node(tmp_path, "flooder", UNLIMITED)
    bystander = await start_node(tmp_path, "bystander", UNLIMITED)
    peer = MastodonPeer(*(f"user{i}" for i in range(12)))
    await peer.server.start_server()
    try:
        inbox = f"{receiver.base}/inbox"
        before = await database_size(receiver)

        # 1 MB-ish Notes, created and updated: acknowledged, so senders do not retry, not kept.
        for i in range(30):
            kind = "Create" if i % 2 == 0 else "Update"
            flood = activity(flooder.actor, kind, note(flooder.actor, 900_000))
            assert await post_signed(session, inbox, flood, flooder.node) == (
                202,
                {"status": "accepted"},
            )
        assert await count(receiver, "objects") == 0

        # Flags: a large one is refused, then one actor's quota fills up.
        big = activity(flooder.actor, "Flag", receiver.actor, content="x" * 900_000)
        status, answer = await post_signed(session, inbox, big, flooder.node)
        assert status == 400
        assert answer["error"].startswith("Flag is ") and "at most 4096" in answer["error"]
        answers = []
        for _ in range(limits.REPORTS_PER_ACTOR + 5):
            flag = activity(flooder.actor, "Flag", receiver.actor, content="y" * 3500)
            answers.append(await post_signed(session, inbox, flag, flooder.node))
        assert [s for s, _ in answers] == [202] * limits.REPORTS_PER_ACTOR + [429] * 5
        assert answers[-1][1]["error"] == (
            f"this node already keeps {limits.REPORTS_PER_ACTOR} reports from {flooder.actor}; "
            "try again later"
        )

        # Many actors of one host: the host's quota fills up.
        statuses = []
        for user in peer.users:
            for _ in range(limits.REPORTS_PER_ACTOR):
                flag = peer.activity(user, "Flag", receiver.actor)
                flag["content"] = "z" * 3500
                statuses.append(await peer.send(session, user, inbox, flag))
        kept = [s for s, _ in statuses].count(202)
        assert kept == limits.REPORTS_PER_HOST
        peer_host = peer.base.split("//")[1]
        assert statuses[-1] == (
            429,
            {
                "error": f"this node already keeps {limits.REPORTS_PER_HOST} reports from "
                f"{peer_host}; try again later"
            },
        )
        assert await count(receiver, "reports") == limits.REPORTS_PER_ACTOR + kept

        # Nothing else changed: another host still reports, a genuine profile is listed.
        flag = activity(bystander.actor, "Flag", receiver.actor, content="a real concern")
        assert (await post_signed(session, inbox, flag, bystander.node))[0] == 202
        for sender in (flooder, bystander):
            update = await profile_update(sender)
            assert (await post_signed(session, inbox, update, sender.node))[0] == 202
        listed = await receiver.run(
            lambda: directory.search(receiver.node.store.db, directory.Filters(), 10, 0)
        )
        assert {row["actor"] for row in listed} >= {flooder.actor, bystander.actor}

        # The documented bound: every kept report at its largest, each activity's id seen.
        seen = await count(receiver, "seen_activities")
        reports = await count(receiver, "reports")
        bound = reports * limits.MAX_REPORT_BYTES + seen * 2 * 2048 + 512 * 1024
        grown = await database_size(receiver) - before
        assert grown < bound, (grown, bound)
    finally:
        await peer.server.close()
        for live in (receiver, flooder, bystander):
            await live.server.close()
            live.node.close()


async def test_deletes_of_things_never_held_leave_no_tombstone(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    receiver = await start_node(tmp_path, "receiver", UNLIMITED)
    sender = await start_node(tmp_path, "sender", UNLIMITED)
    try:
        inbox = f"{receiver.base}/inbox"
        before = await receiver.state()
        for i in range(20):
            gone = activity(sender.actor, "Delete", f"{sender.actor}/notes/{i}")
            assert (await post_signed(session, inbox, gone, sender.node))[0] == 202
        after = await receiver.state()
        assert after["objects"] == before["objects"] == []
        assert after["directory"] == before["directory"]
        # An actor never listed that deletes itself leaves no directory tombstone either.
        gone = activity(sender.actor, "Delete", sender.actor)
        assert (await post_signed(session, inbox, gone, sender.node))[0] == 202
        assert (await receiver.state())["directory"] == before["directory"]
    finally:
        for live in (receiver, sender):
            await live.server.close()
            live.node.close()


async def test_listings_per_host_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Profiles of many schools of one host: the host's cap holds, updates of listed schools
    still go in, other hosts are unaffected (the proof checks are the caller's)."""
    monkeypatch.setattr(limits, "LISTINGS_PER_HOST", 3)
    sender = await start_node(tmp_path, "sender", UNLIMITED)
    try:
        profile = await sender.run(sender.node.profile)
        assert profile is not None
        db = sender.node.store.db

        def school(host: str, n: int, updated: str = "2030-01-01T00:00:00Z") -> dict[str, Any]:
            actor = f"http://{host}/actors/s{n}"
            return {
                **profile.document,
                "id": f"{actor}/profile",
                "attributedTo": actor,
                "updated": updated,
            }

        def fill() -> list[bool]:
            stored = [
                directory.store_profile(db, school("ministry.test", n), 1.0) for n in range(5)
            ]
            stored.append(directory.remove_profile(db, "http://ministry.test/actors/s9", "x", 1.0))
            newer = school("ministry.test", 0, "2031-01-01T00:00:00Z")
            stored.append(directory.store_profile(db, newer, 1.0))
            stored.append(directory.store_profile(db, school("MINISTRY.test", 7), 1.0))
            stored.append(directory.store_profile(db, school("other.test", 1), 1.0))
            return stored

        assert await sender.run(fill) == [True] * 3 + [False] * 3 + [True, False, True]
        refusal = await sender.run(
            lambda: directory.listing_refusal(db, "http://ministry.test/actors/s8", 0, False)
        )
        assert refusal == "this node already lists 3 schools of ministry.test"
    finally:
        await sender.server.close()
        sender.node.close()


async def test_remote_actors_per_host_give_way_unless_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "ACTORS_PER_HOST", 3)
    live = await start_node(tmp_path, "school", UNLIMITED)
    try:
        db = live.node.store.db

        def actor(n: int) -> dict[str, Any]:
            return {"id": f"http://many.test/users/u{n}", "type": "Person", "inbox": "x"}

        def fill() -> list[Any]:
            relations.set_following(db, "school", actor(0)["id"], "f", "accepted", "2026")
            cached = [actor_cache.cache_actor(db, actor(n), float(n)) for n in range(6)]
            cached.append(actor_cache.cache_actor(db, {**actor(9), "padding": "x" * 70_000}, 9.0))
            held = [row[0] for row in db.execute("SELECT id FROM remote_actors ORDER BY id")]
            return [cached, held]

        cached, held = await live.run(fill)
        assert cached == [True] * 6 + [False]  # too large to cache
        # u0 is followed, so it stays; the others give way, the one fetched longest ago first.
        assert held == [actor(n)["id"] for n in (0, 4, 5)]
    finally:
        await live.server.close()
        live.node.close()


async def test_pruning_keeps_what_is_inside_retention_and_replays_stay_refused(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    clock = SteppedClock()
    settings = FederationSettings(
        allow_private_network=True, poll_interval=0.05, first_retry=0.2, prune_interval=0.05
    )
    receiver = await start_node(tmp_path, "receiver", settings, clock=clock)
    sender = await start_node(tmp_path, "sender", UNLIMITED)
    peer = MastodonPeer("eve")
    await peer.server.start_server()
    try:
        inbox = f"{receiver.base}/inbox"
        db = receiver.node.store.db
        # The sender is listed (its actor is needed); eve only reports (her actor is not).
        update = await profile_update(sender)
        assert (await post_signed(session, inbox, update, sender.node))[0] == 202
        flag = peer.activity("eve", "Flag", receiver.actor)
        assert (await peer.send(session, "eve", inbox, flag))[0] == 202
        # eve is no Amity node: the default policy holds her Follow for approval.
        follow = peer.activity("eve", "Follow", receiver.actor)
        assert (await peer.send(session, "eve", inbox, follow))[0] == 202
        signed_at = datetime.now(UTC)
        like = activity(sender.actor, "Like", f"{receiver.actor}/profile")
        assert await post_signed(session, inbox, like, sender.node, now=signed_at) == (
            202,
            {"status": "accepted"},
        )
        # Something this node sent: an outbox entry with a delivery that cannot arrive.
        await receiver.run(
            lambda: delivery_queue.enqueue(
                db,
                "receiver",
                {"id": f"{receiver.actor}/activities/1", "type": "Announce"},
                ["http://127.0.0.1:9/inbox"],
                clock.now.timestamp(),
                (clock.now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        )

        async def prune_at(moment: datetime) -> dict[str, int]:
            clock.now = moment
            return await receiver.run(lambda: retention.prune(db, moment))

        async def held() -> dict[str, int]:
            tables = (
                "seen_activities",
                "reports",
                "remote_actors",
                "outbox",
                "deliveries",
                "follow_requests",
            )
            return {t: await count(receiver, t) for t in tables}

        start = clock.now
        full = await held()
        assert full["seen_activities"] == 4 and full["reports"] == 1
        assert full["follow_requests"] == 1
        assert full["remote_actors"] == 2 and full["deliveries"] == 1
        assert full["outbox"] == 2  # the profile published at init, and the Announce

        # Inside the signature window nothing is dropped, and the replay is refused by its id.
        await prune_at(start + timedelta(minutes=50))
        assert await held() == full
        replay = await post_signed(session, inbox, like, sender.node, now=signed_at)
        assert replay == (202, {"status": "already processed"})
        assert await held() == full

        # After a week the ids go (the background task does it); the Date refuses a replay.
        clock.now = start + timedelta(days=8)
        for _ in range(200):
            if await count(receiver, "seen_activities") == 0:
                break
            await asyncio.sleep(0.05)
        assert await held() == {**full, "seen_activities": 0}
        status, answer = await post_signed(session, inbox, like, sender.node, now=signed_at)
        assert status == 401 and "error" in answer

        # After a month: eve's actor, the old outbox entries and the delivery; the sender's
        # actor stays while it is listed.
        await prune_at(start + timedelta(days=31))
        assert await held() == {
            "seen_activities": 0,
            "reports": 1,
            "remote_actors": 1,
            "outbox": 1,
            "deliveries": 0,
            "follow_requests": 0,  # unanswered for 30 days: expired
        }
        # The account's newest public activity stays: its outbox is never empty.
        [(kept_type,)] = await receiver.run(
            lambda: db.execute("SELECT type FROM outbox").fetchall()
        )
        assert kept_type == "Update"
        held_actor = await receiver.run(
            lambda: db.execute("SELECT id FROM remote_actors").fetchone()[0]
        )
        assert held_actor == sender.actor
        # After 90 days the report.
        await prune_at(start + timedelta(days=91))
        assert await count(receiver, "reports") == 0
        assert await count(receiver, "directory") >= 1  # the listing itself is not pruned
    finally:
        await peer.server.close()
        for live in (receiver, sender):
            await live.server.close()
            live.node.close()


def test_every_limit_and_retention_is_in_the_protocols_limits_section() -> None:
    section = (ROOT / "docs" / "protocol.md").read_text().split("## 13. Limits", 1)[1]
    for name in dir(limits):
        value = getattr(limits, name)
        if not name.isupper() or name == "DAY":
            continue
        if name.endswith("_BYTES"):
            text = f"{value // 1024} KiB"
        elif name.endswith("_RETENTION"):
            text = f"{int(value // limits.DAY)} days"
        elif name == "QUOTA_RETRY_AFTER":
            text = f"Retry-After: {int(value)}"
        else:
            text = f"{value:,}"
        assert text in section, f"{name} ({text}) is not in docs/protocol.md section 13"
    assert f"{retention.BATCH:,} rows" in section and retention.PRUNE_INTERVAL == 3600


def test_an_older_database_gets_hosts_filled_in_and_its_stored_objects_dropped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    old = Database(sqlite3.connect(path))
    migrations.apply(old, stop_before="m010_bounds")
    old["objects"].insert({"id": "http://a.test/notes/1", "type": "Note", "document": "x" * 9})
    old["reports"].insert({"id": "http://A.test/f/1", "actor": "http://A.test/u", "document": "{}"})
    old["remote_actors"].insert({"id": "http://B.Test:8080/u", "document": "{}", "fetched_at": 1.0})
    old["revocations"].insert({"id": "e", "authority": "not a url", "seq": 1, "document": "{}"})
    old.close()
    db = open_database(path)
    try:
        assert migrations.pending(db) == []
        assert db.execute("SELECT count(*) FROM objects").fetchone()[0] == 0
        assert db.execute("SELECT host FROM reports").fetchall() == [("a.test",)]
        assert db.execute("SELECT host FROM remote_actors").fetchall() == [("b.test:8080",)]
        assert db.execute("SELECT host FROM revocations").fetchall() == [("",)]
    finally:
        db.close()


def test_revocations_have_a_size_limit_and_a_ceiling_per_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "REVOCATIONS_PER_HOST", 2)
    db = open_database(tmp_path / "a.db")
    try:
        authority = "http://ministry.test/actors/m"
        kept = [
            endorsement_store.record_revocation(db, f"{authority}/e/{n}", authority, "t", {"n": n})
            for n in range(3)
        ]
        big = {"padding": "x" * limits.MAX_REVOCATION_BYTES}
        other = "http://other.test/actors/a"
        kept.append(endorsement_store.record_revocation(db, f"{other}/e/1", other, "t", big))
        kept.append(endorsement_store.record_revocation(db, f"{other}/e/2", other, "t", {}))
        assert kept == [True, True, False, False, True]
        assert endorsement_store.revocation_refusal(db, authority, 10) == (
            "this node already keeps 2 revocations from ministry.test"
        )
    finally:
        db.close()


async def test_a_relayed_note_is_dropped_without_fetching_its_author(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    receiver = await start_node(tmp_path, "receiver", UNLIMITED)
    sender = await start_node(tmp_path, "sender", UNLIMITED)
    try:
        before = await receiver.state()
        # Its author's node does not exist: checking the proof would need a fetch that fails.
        author = "http://127.0.0.1:9/actors/nobody"
        relayed = {**note(author, 100), "proof": {"type": "DataIntegrityProof"}}
        announce = activity(sender.actor, "Announce", relayed)
        status, _ = await post_signed(session, f"{receiver.base}/inbox", announce, sender.node)
        assert status == 202
        after = await receiver.state()
        assert after["objects"] == before["objects"] == []
        assert after["directory"] == before["directory"]
    finally:
        for live in (receiver, sender):
            await live.server.close()
            live.node.close()
