"""Endorsements that must not count, and the ways an endorsement stops counting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from amity.federation import directory, endorsement_store
from amity.node import endorsement_actions
from amity.node.clock import format_time
from amity.protocol.endorsement import (
    MAX_ENDORSEMENTS,
    Endorsement,
    endorsement_document,
    read_endorsement,
)
from amity.protocol.errors import MalformedDocument
from amity.protocol.multikey import encode_ed25519_public
from amity.protocol.profile_document import profile_document
from amity.protocol.proofs import sign_document

from .helpers import amity
from .inprocess import LiveNode, post_signed, start_node
from .test_hubs import follow, until

PRIVATE = "--allow-private-network"


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[dict[str, LiveNode]]:
    live = {
        "hub": await start_node(tmp_path, "hub", kind="hub"),
        "ministry": await start_node(tmp_path, "ministry", kind="authority"),
        "a": await start_node(tmp_path, "a", country="MX"),
        "b": await start_node(tmp_path, "b", country="KE"),
    }
    await follow(live["a"], live["hub"])
    await follow(live["b"], live["hub"])
    await follow(live["ministry"], live["hub"])
    yield live
    for node in live.values():
        await node.server.close()
        node.node.close()


async def endorsed_by(watcher: LiveNode, school: LiveNode) -> list[str]:
    """What `amity directory --json` on `watcher` would say endorses `school`."""

    def read() -> list[str]:
        db = watcher.node.store.db
        rows = directory.search(db, directory.Filters(), 50, 0)
        found = directory.summaries(db, rows, watcher.node.now(), "")
        return next((item["endorsed_by"] for item in found if item["actor"] == school.actor), [])

    return await watcher.run(read)


async def held_ids(watcher: LiveNode, school: LiveNode) -> set[str]:
    rows = await watcher.run(
        lambda: watcher.node.store.db.execute(
            "SELECT id FROM endorsements WHERE school = ?", [school.actor]
        ).fetchall()
    )
    return {row[0] for row in rows}


def endorsement(
    signer: LiveNode,
    school: LiveNode,
    n: int,
    *,
    key: bytes | None = None,
    expires: str | None = None,
) -> dict[str, Any]:
    """An endorsement of `school` signed by `signer`, as if `signer` had issued it."""
    now = format_time(datetime.now(UTC) - timedelta(days=1))
    document = endorsement_document(
        f"{signer.actor}/endorsements/test-{n}",
        authority=signer.actor,
        school=school.actor,
        key_multibase=encode_ed25519_public(key or school.node.keys.ed25519_public),
        published=now,
        expires=expires,
    )
    return sign_document(
        document, signer.node.keys.ed25519_seed, signer.node.urls.ed25519_key_id, now
    )


async def test_a_carried_endorsement_counts_only_when_it_holds(
    nodes: dict[str, LiveNode],
) -> None:
    hub, ministry, a, b = nodes["hub"], nodes["ministry"], nodes["a"], nodes["b"]
    await until(lambda: _listed(b, a))
    past = format_time(datetime.now(UTC) - timedelta(hours=1))
    good = endorsement(ministry, a, 1)
    carried = [
        good,
        {**endorsement(ministry, a, 2), "expires": "2099-01-01T00:00:00Z"},  # altered
        endorsement(ministry, b, 3),  # made out to another school
        endorsement(ministry, a, 4, key=b.node.keys.ed25519_public),  # to another key
        endorsement(b, a, 5),  # signed by a school, not an authority
        endorsement(ministry, a, 6, expires=past),  # genuine but expired
    ]
    # School a publishes a version carrying all six, signed with its own key.
    current = await a.run(a.node.profile)
    assert current is not None
    updated = format_time(datetime.now(UTC) + timedelta(seconds=5))
    document = profile_document(
        current.data,
        profile_id=a.node.urls.profile,
        actor_id=a.actor,
        published=current.published,
        updated=updated,
        endorsements=carried,
    )
    signed = sign_document(document, a.node.keys.ed25519_seed, a.node.urls.ed25519_key_id, updated)
    update = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{a.actor}/activities/carrying",
        "type": "Update",
        "actor": a.actor,
        "object": signed,
    }
    async with aiohttp.ClientSession() as session:
        status, _ = await post_signed(session, f"{hub.base}/inbox", update, a.node)
    assert status == 202
    # The profile is listed and relayed; of its endorsements only the genuine ones for a's
    # key are kept, and of those only the unexpired one counts.
    for watcher in (hub, b):
        await until(lambda w=watcher: _version(w, a, updated))
        assert await held_ids(watcher, a) == {good["id"], carried[5]["id"]}
        assert await endorsed_by(watcher, a) == [ministry.actor]


async def test_delivered_endorsement_rotation_and_revocation(nodes: dict[str, LiveNode]) -> None:
    hub, ministry, a, b = nodes["hub"], nodes["ministry"], nodes["a"], nodes["b"]
    await until(lambda: _listed(b, a))
    a_actor = await a.run(a.node.actor_document)
    issued = await ministry.run(lambda: endorsement_actions.endorse(ministry.node, a_actor, None))
    # a carries it in a new profile version, which the hub relays to b.
    await until(lambda: _endorsed(b, a, [ministry.actor]))
    carried = (await a.run(a.node.profile)).document["endorsements"]  # type: ignore[union-attr]
    assert [e["id"] for e in carried] == [issued["id"]]

    # Only the endorsement's authority can revoke it: a Delete from b is refused (another
    # host), and a relayed revocation whose proof is not the authority's changes nothing.
    async with aiohttp.ClientSession() as session:
        from_b = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{b.actor}/activities/revoke",
            "type": "Delete",
            "actor": b.actor,
            "object": {"id": issued["id"], "type": "Tombstone", "formerType": "Endorsement"},
        }
        signed_by_b = sign_document(
            from_b, b.node.keys.ed25519_seed, b.node.urls.ed25519_key_id, b.node.now()
        )
        status, _ = await post_signed(session, f"{a.base}/inbox", signed_by_b, b.node)
        assert status == 400
        posing = {**from_b, "actor": ministry.actor, "id": f"{ministry.actor}/activities/x"}
        posing = sign_document(
            posing, b.node.keys.ed25519_seed, f"{ministry.actor}#ed25519-key", b.node.now()
        )
        announce = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{hub.actor}/activities/relay-forged",
            "type": "Announce",
            "actor": hub.actor,
            "object": posing,
        }
        status, _ = await post_signed(session, f"{b.base}/inbox", announce, hub.node)
        assert status == 400
    for node in (a, b, hub):
        assert (
            await node.run(lambda n=node: endorsement_store.count_revocations(n.node.store.db)) == 0
        )
    assert await endorsed_by(b, a) == [ministry.actor]

    # The real revocation reaches a (which drops it) and, through the hub, b.
    await ministry.run(lambda: endorsement_actions.revoke(ministry.node, a.actor))
    await until(lambda: _endorsed(b, a, []))
    await until(lambda: _carries(a, []))
    revoked = await b.run(lambda: endorsement_store.revocations_since(b.node.store.db, 0, 10))
    assert [doc["object"]["id"] for _, doc in revoked] == [issued["id"]]


async def test_a_new_key_needs_a_new_endorsement(nodes: dict[str, LiveNode]) -> None:
    ministry, a, b = nodes["ministry"], nodes["a"], nodes["b"]
    await until(lambda: _listed(b, a))
    a_actor = await a.run(a.node.actor_document)
    await ministry.run(lambda: endorsement_actions.endorse(ministry.node, a_actor, None))
    await until(lambda: _endorsed(b, a, [ministry.actor]))
    await a.run(a.node.rotate_keys)
    await until(lambda: _carries(a, []))
    await until(lambda: _endorsed(b, a, []))
    # An endorsement posted to a by someone who is not an authority is refused.
    async with aiohttp.ClientSession() as session:
        fake = endorsement(b, a, 9)
        create = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{b.actor}/activities/fake-endorsement",
            "type": "Create",
            "actor": b.actor,
            "object": fake,
        }
        status, body = await post_signed(session, f"{a.base}/inbox", create, b.node)
    assert status == 400 and "not an authority" in body["error"]
    assert await held_ids(a, a) == set()


async def test_cli_refuses_what_makes_no_sense(nodes: dict[str, LiveNode]) -> None:
    ministry, a, b = nodes["ministry"], nodes["a"], nodes["b"]
    data = {name: Path(live.node.config.data_dir) for name, live in nodes.items()}
    cases = [
        (("endorse", b.actor, PRIVATE), data["a"], "only authorities endorse"),
        (("endorse", ministry.actor, PRIVATE), data["ministry"], "is not an Amity school"),
        (("endorse", a.actor, "--expires", "2020-01-01", PRIVATE), data["ministry"], "future"),
        (("endorse", a.actor, "--expires", "soon", PRIVATE), data["ministry"], "2027-07-31"),
        (("endorse", "--revoke", a.actor, PRIVATE), data["ministry"], "no endorsement of"),
        (("trust", a.actor, PRIVATE), data["b"], "is not an Amity authority"),
        (("trust", "--remove", a.actor), data["b"], "is not trusted here"),
    ]
    for args, node_data, message in cases:
        result = await asyncio.to_thread(amity, *args, data=node_data, check=False)
        assert result.returncode == 1, args
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    issued = await asyncio.to_thread(amity, "endorsements", "--json", data=data["ministry"])
    assert json.loads(issued.stdout) == []
    # Trusting twice is harmless; the list shows one authority.
    for _ in range(2):
        await asyncio.to_thread(amity, "trust", ministry.actor, PRIVATE, data=data["b"])
    listed = (await asyncio.to_thread(amity, "trust", data=data["b"])).stdout
    assert listed.count(ministry.actor) == 1
    await asyncio.to_thread(amity, "trust", "--remove", ministry.actor, data=data["b"])
    after = (await asyncio.to_thread(amity, "trust", data=data["b"])).stdout
    assert "No trusted authorities" in after


async def _listed(watcher: LiveNode, school: LiveNode) -> bool:
    found = await watcher.run(
        lambda: (
            directory.count_listings(watcher.node.store.db)
            and watcher.node.store.db.execute(
                "SELECT 1 FROM directory WHERE actor = ? AND deleted_at IS NULL", [school.actor]
            ).fetchone()
        )
    )
    return bool(found)


async def _version(watcher: LiveNode, school: LiveNode, updated: str) -> bool:
    row = await watcher.run(
        lambda: watcher.node.store.db.execute(
            "SELECT updated FROM directory WHERE actor = ?", [school.actor]
        ).fetchone()
    )
    return row is not None and row[0] == updated


async def _endorsed(watcher: LiveNode, school: LiveNode, expected: list[str]) -> bool:
    return await endorsed_by(watcher, school) == expected


async def _carries(school: LiveNode, expected: list[str]) -> bool:
    profile = await school.run(school.node.profile)
    assert profile is not None
    return [e["id"] for e in profile.document.get("endorsements", [])] == expected


def test_a_school_holds_one_endorsement_per_authority_and_at_most_sixteen(school: Any) -> None:
    """Anyone calling itself an authority can send a school endorsements: they cannot
    crowd out one from an authority the school trusts, nor grow without bound."""
    db = school.store.db
    key = school.keys.ed25519_public

    def given(n: int, authority: str) -> Endorsement:
        doc = endorsement_document(
            f"{authority}/endorsements/{n}",
            authority=authority,
            school=school.urls.id,
            key_multibase=encode_ed25519_public(key),
            published="2026-01-01T00:00:00Z",
        )
        return read_endorsement({**doc, "proof": {}})

    now = school.now()
    for n in range(MAX_ENDORSEMENTS):
        assert endorsement_store.add_held(
            db, given(n, f"https://a{n}.example/actors/x"), now, False
        )
    # A second one from the same authority replaces the first.
    assert endorsement_store.add_held(db, given(99, "https://a0.example/actors/x"), now, False)
    held = endorsement_store.held_documents(db, now)
    assert len(held) == MAX_ENDORSEMENTS
    assert "https://a0.example/actors/x/endorsements/99" in {doc["id"] for doc in held}
    # Full: a newcomer is refused, unless the school trusts it.
    trusted = "https://ministry.example/actors/m"
    assert not endorsement_store.add_held(db, given(1, "https://a99.example/actors/x"), now, False)
    endorsement_store.trust(db, trusted, now)
    assert endorsement_store.add_held(db, given(1, trusted), now, True)
    authorities = {doc["attributedTo"] for doc in endorsement_store.held_documents(db, now)}
    assert trusted in authorities and len(authorities) == MAX_ENDORSEMENTS


def test_an_endorsement_must_be_small_and_issued_on_its_authoritys_host() -> None:
    base = endorsement_document(
        "https://ministry.example/actors/m/endorsements/1",
        authority="https://ministry.example/actors/m",
        school="https://school.example/actors/s",
        key_multibase=encode_ed25519_public(bytes(32)),
        published="2026-01-01T00:00:00Z",
    )
    read_endorsement({**base, "proof": {}})
    for bad, message in (
        ({**base, "id": "https://elsewhere.example/e/1"}, "authority's host"),
        ({**base, "padding": "x" * 5000}, "bytes"),
        ({**base, "object": "http://[x"}, "is not an http"),
        ({**base, "expires": "next year"}, "expires"),
    ):
        with pytest.raises(MalformedDocument, match=message):
            read_endorsement({**bad, "proof": {}})
