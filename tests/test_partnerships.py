"""Partnerships between real nodes: propose, accept (both proofs on one object), decline,
leave, expiry on a stepped clock, every refusal, an authority's arranged pair, and a
partner that is down (or killed) when the other acts."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
import urllib.request
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import base58
import pytest
import rfc8785
from aiohttp.test_utils import TestServer
from nacl.signing import SigningKey, VerifyKey

from amity.federation import delivery_queue, endorsement_store, limits, partnership_store
from amity.federation.retention import prune
from amity.node import partnerships
from amity.node.app import create_app
from amity.node.app_state import WORKER
from amity.node.charter import CHARTER_LANGUAGES, CHARTER_VERSION, charter_text, current_charter
from amity.node.errors import NodeError
from amity.protocol import partnership_activities as acts
from amity.protocol.errors import BadSignature, MalformedDocument, UnknownKey
from amity.protocol.multikey import encode_ed25519_public
from amity.protocol.partnership import (
    STARTER_PROJECTS,
    STATES,
    TRANSITIONS,
    add_proof,
    complete,
    expiry_of,
    merge_proofs,
    offer_end_time,
    parse_time,
    partnership_document,
    read_partnership,
    verify_partnership,
)

from .helpers import ROOT, ServedNode, amity, free_port, make_school, wait_until
from .inprocess import LiveNode, post_signed, start_node
from .test_bounds import UNLIMITED, SteppedClock

PRIVATE = "--allow-private-network"
KENYA_NAME = "Uhuru Primary School"
KENYA = {
    "name": KENYA_NAME,
    "country": "KE",
    "timezone": "Africa/Nairobi",
    "languages": {"instruction": ["en"], "learning": ["fr"]},
}
FRANCE = {
    "country": "FR",
    "timezone": "Europe/Paris",
    "languages": {"instruction": ["fr"], "learning": ["es"]},
}


# -- an independent verifier: eddsa-jcs-2022 from the specs, sharing no code with Amity ----


def independent_verify(document: dict[str, Any], actors: dict[str, dict[str, Any]]) -> set[str]:
    """Check every proof of the set with the key its signer's actor publishes; the signers."""
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    signers = set()
    for proof in document["proof"]:
        actor = actors[proof["verificationMethod"].split("#")[0]]
        method = next(m for m in actor["assertionMethod"] if m["id"] == proof["verificationMethod"])
        raw = base58.b58decode(method["publicKeyMultibase"][1:])
        assert raw[:2] == b"\xed\x01"  # multicodec ed25519-pub
        options = {k: v for k, v in proof.items() if k != "proofValue"}
        data = (
            hashlib.sha256(rfc8785.dumps(options)).digest()
            + hashlib.sha256(rfc8785.dumps(unsecured)).digest()
        )
        VerifyKey(raw[2:]).verify(data, base58.b58decode(proof["proofValue"][1:]))
        signers.add(actor["id"])
    return signers


# -- the charter ------------------------------------------------------------------------


def test_the_shipped_charter_is_the_one_in_docs() -> None:
    for language in CHARTER_LANGUAGES:
        text = (ROOT / "docs" / "charter" / f"v{CHARTER_VERSION}" / f"{language}.md").read_bytes()
        assert charter_text(CHARTER_VERSION, language) == text
    shipped = ROOT / "amity" / "node" / "charter_texts"
    assert sorted(p.relative_to(shipped) for p in shipped.rglob("*.md")) == sorted(
        p.relative_to(ROOT / "docs" / "charter")
        for p in (ROOT / "docs" / "charter").rglob("*/*.md")
    )
    english = (ROOT / "docs" / "charter" / "v1" / "en.md").read_bytes()
    assert current_charter().sha256 == hashlib.sha256(english).hexdigest()
    assert current_charter().language == "en"


# -- in-process nodes -------------------------------------------------------------------


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[dict[str, LiveNode]]:
    clock = SteppedClock()
    live = {
        "mx": await start_node(tmp_path, "mx", UNLIMITED, clock=clock),
        "ke": await start_node(tmp_path, "ke", UNLIMITED, clock=clock, **KENYA),
        "fr": await start_node(tmp_path, "fr", UNLIMITED, clock=clock, **FRANCE),
        "mx2": await start_node(tmp_path, "mx2", UNLIMITED, clock=clock, locality="Puebla"),
    }
    live["mx"].clock = clock  # type: ignore[attr-defined]
    yield live
    for node in live.values():
        await node.server.close()
        node.node.close()


async def actor_and_profile(node: LiveNode) -> tuple[dict[str, Any], dict[str, Any]]:
    actor = await node.run(node.node.actor_document)
    profile = await node.run(node.node.profile)
    assert profile is not None
    return actor, profile.data


async def propose(
    proposer: LiveNode, partner: LiveNode, **options: Any
) -> partnership_store.Proposal:
    actor, profile = await actor_and_profile(partner)
    return await proposer.run(
        lambda: partnerships.propose(proposer.node, actor, profile, **options)
    )


async def rows(node: LiveNode) -> list[partnership_store.Proposal]:
    return await node.run(lambda: partnerships.list_proposals(node.node))


async def state_of(node: LiveNode, partnership_id: str) -> str | None:
    found = [p for p in await rows(node) if p.id == partnership_id]
    return found[0].state if found else None


async def until(check: Any, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def snapshot(node: LiveNode) -> dict[str, list[Any]]:
    """What a refused operation must leave as it was, once what the node had queued is
    delivered (so the worker's own changes do not count)."""

    async def settled() -> bool:
        queued = await node.run(
            lambda: node.node.store.db.execute(
                "SELECT count(*) FROM deliveries WHERE state = 'pending'"
            ).fetchone()[0]
        )
        return queued == 0

    await until(settled)

    def read() -> dict[str, list[Any]]:
        db = node.node.store.db
        return {
            table: sorted(map(tuple, db.execute(f"SELECT * FROM {table}").fetchall()), key=repr)
            for table in ("partnerships", "deliveries", "outbox")
        }

    return await node.run(read)


async def refused(node: LiveNode, call: Any, message: str) -> None:
    before = await snapshot(node)
    with pytest.raises(NodeError, match=message):
        await node.run(call)
    assert await snapshot(node) == before


async def test_propose_accept_both_hold_one_object_with_two_proofs(
    nodes: dict[str, LiveNode],
) -> None:
    mx, ke = nodes["mx"], nodes["ke"]
    sent = await propose(mx, ke, message="¡Hola! Shall we write postcards?", project="postcards")
    assert sent.state == "pending" and sent.role == "outgoing"
    assert sent.document["workingLanguages"] == ["en"]  # Kenya teaches it, Mexico learns it
    assert sent.document["charter"] == current_charter().as_json()
    incoming = await until(lambda: _row(ke, sent.id))
    assert incoming.role == "incoming" and incoming.state == "pending"
    assert incoming.document == sent.document

    accepted = await ke.run(lambda: partnerships.accept(ke.node, incoming.short))
    assert accepted.state == "accepted"
    await until(lambda: _in_state(mx, sent.id, "accepted"))
    mine, theirs = await _row(mx, sent.id), await _row(ke, sent.id)
    assert mine is not None and theirs is not None
    assert mine.document == theirs.document
    assert len(mine.document["proof"]) == 2
    actors = {
        mx.actor: (await actor_and_profile(mx))[0],
        ke.actor: (await actor_and_profile(ke))[0],
    }
    assert independent_verify(mine.document, actors) == {mx.actor, ke.actor}
    assert verify_partnership(mine.document, actors).partners == (mx.actor, ke.actor)
    assert await mx.run(lambda: partnerships.active_partnerships(mx.node.store.db, "mx")) == 1
    history = await mx.run(lambda: partnerships.proposal_history(mx.node.store.db, [ke.actor]))
    assert history == {ke.actor: (1, 0)}

    # Tampering with either the object or a proof is caught by the verifier.
    changed = {**mine.document, "workingLanguages": ["es"]}
    with pytest.raises(BadSignature):
        verify_partnership(changed, actors)

    # Leaving ends it on both sides.
    left = await mx.run(lambda: partnerships.leave(mx.node, mine.short))
    assert left.state == "left"
    await until(lambda: _in_state(ke, sent.id, "left"))
    assert await mx.run(lambda: partnerships.active_partnerships(mx.node.store.db, "mx")) == 0


async def _row(node: LiveNode, partnership_id: str) -> partnership_store.Proposal | None:
    found = [p for p in await rows(node) if p.id == partnership_id]
    return found[0] if found else None


async def _in_state(node: LiveNode, partnership_id: str, state: str) -> bool:
    return await state_of(node, partnership_id) == state


async def test_decline_reaches_the_proposer_with_its_reason(nodes: dict[str, LiveNode]) -> None:
    mx, fr = nodes["mx"], nodes["fr"]
    sent = await propose(mx, fr)
    incoming = await until(lambda: _row(fr, sent.id))
    await fr.run(lambda: partnerships.decline(fr.node, incoming.short, "Our term has ended"))
    await until(lambda: _in_state(mx, sent.id, "declined"))
    row = await _row(mx, sent.id)
    assert row is not None and row.reason == "Our term has ended"
    await refused(fr, lambda: partnerships.accept(fr.node, incoming.short), "was declined")


async def test_an_unanswered_proposal_expires_on_both_sides(nodes: dict[str, LiveNode]) -> None:
    mx, ke = nodes["mx"], nodes["ke"]
    clock: SteppedClock = mx.clock  # type: ignore[attr-defined]
    sent = await propose(mx, ke)
    incoming = await until(lambda: _row(ke, sent.id))
    clock.now += timedelta(days=13, hours=23)
    assert await state_of(ke, sent.id) == "pending"
    clock.now += timedelta(hours=1)
    assert await state_of(ke, sent.id) == "expired"
    assert await state_of(mx, sent.id) == "expired"
    await refused(ke, lambda: partnerships.accept(ke.node, incoming.short), "expired at")
    history = await mx.run(lambda: partnerships.proposal_history(mx.node.store.db, [ke.actor]))
    assert history == {ke.actor: (0, 1)}
    # A new proposal may be made once the old one expired.
    assert (await propose(mx, ke)).state == "pending"


async def test_a_late_accept_counts_but_never_overbooks(
    tmp_path: Path, nodes: dict[str, LiveNode]
) -> None:
    ke, fr = nodes["ke"], nodes["fr"]
    clock: SteppedClock = nodes["mx"].clock  # type: ignore[attr-defined]
    mx1 = await start_node(tmp_path, "mx1", UNLIMITED, clock=clock, capacity=1)
    try:
        sent = await propose(mx1, ke)
        incoming = await until(lambda: _row(ke, sent.id))
        port = int(mx1.base.rsplit(":", 1)[1])
        await mx1.server.close()  # the proposer is down when the answer comes
        await ke.run(lambda: partnerships.accept(ke.node, incoming.short))

        async def tried() -> bool:  # the Accept met the closed port once, before the step
            found = await ke.run(
                lambda: ke.node.store.db.execute(
                    "SELECT attempts FROM deliveries WHERE state = 'pending'"
                ).fetchall()
            )
            return bool(found) and all(row[0] >= 1 for row in found)

        await until(tried)
        clock.now += timedelta(days=15)
        [expired] = partnerships.list_proposals(mx1.node)
        assert expired.state == "expired"
        # Its place is free again, and taken by another proposal.
        fr_actor, fr_profile = await actor_and_profile(fr)
        partnerships.propose(mx1.node, fr_actor, fr_profile)
        mx1.server = TestServer(create_app(mx1.node, UNLIMITED), host="127.0.0.1", port=port)
        await mx1.server.start_server()
        # Hours later any retry ke made while mx1 was still down is due again (a busy
        # machine may let ke retry more than once before mx1 listens: step until it lands).
        for _ in range(8):
            clock.now += timedelta(hours=1)
            ke.server.app[WORKER].wake()
            try:
                await until(lambda: _in_state(mx1, sent.id, "left"), timeout=5.0)
                break
            except AssertionError:
                continue
        # The Accept was made in time, so it counts; with no place left it ends at once.
        await until(lambda: _in_state(mx1, sent.id, "left"))
        row = await _row(mx1, sent.id)
        assert row is not None and "no free place" in (row.reason or "")
        assert len(row.document["proof"]) == 2
        await until(lambda: _in_state(ke, sent.id, "left"))
    finally:
        await mx1.server.close()
        mx1.node.close()


async def test_an_accept_arriving_long_after_expiry_counts_no_more(
    tmp_path: Path, nodes: dict[str, LiveNode]
) -> None:
    """An Accept made in time but delivered more than 4 days after the Offer's endTime
    (the sender's retries span about 3) no longer revives the proposal."""
    ke = nodes["ke"]
    clock: SteppedClock = nodes["mx"].clock  # type: ignore[attr-defined]
    mx1 = await start_node(tmp_path, "mx1", UNLIMITED, clock=clock, capacity=1)
    try:
        sent = await propose(mx1, ke)
        incoming = await until(lambda: _row(ke, sent.id))
        port = int(mx1.base.rsplit(":", 1)[1])
        await mx1.server.close()
        await ke.run(lambda: partnerships.accept(ke.node, incoming.short))

        async def tried() -> bool:
            found = await ke.run(
                lambda: ke.node.store.db.execute(
                    "SELECT attempts FROM deliveries WHERE state = 'pending'"
                ).fetchall()
            )
            return bool(found) and all(row[0] >= 1 for row in found)

        await until(tried)
        mx1.server = TestServer(create_app(mx1.node, UNLIMITED), host="127.0.0.1", port=port)
        await mx1.server.start_server()
        # Only now the time is stepped, so the retry it makes due finds mx1 listening (one
        # made before would fail, and its next retry wait for a clock that no longer moves).
        clock.now += timedelta(days=19)  # endTime (14 days) + 5 days
        ke.server.app[WORKER].wake()

        async def delivered() -> bool:
            left = await ke.run(
                lambda: ke.node.store.db.execute(
                    "SELECT count(*) FROM deliveries WHERE state = 'pending'"
                ).fetchone()[0]
            )
            return left == 0

        await until(delivered)
        row = await _row(mx1, sent.id)
        assert row is not None and row.state == "expired"
        assert len(row.document["proof"]) == 1  # the late proof was not added
    finally:
        await mx1.server.close()
        mx1.node.close()


async def test_refusals_say_why_and_change_nothing(nodes: dict[str, LiveNode]) -> None:
    mx, ke, fr, mx2 = nodes["mx"], nodes["ke"], nodes["fr"], nodes["mx2"]
    ke_actor, ke_profile = await actor_and_profile(ke)
    mx2_actor, mx2_profile = await actor_and_profile(mx2)

    def offer_to(actor: dict[str, Any], profile: dict[str, Any], **options: Any) -> Any:
        return lambda: partnerships.propose(mx.node, actor, profile, **options)

    await refused(mx, offer_to(mx2_actor, mx2_profile), "in MX too")
    await refused(
        mx, offer_to(ke_actor, ke_profile, project="postcard"), "did you mean 'postcards'"
    )
    await refused(mx, offer_to(ke_actor, {**ke_profile, "capacity": 0}), "takes no partners")
    await refused(mx, offer_to(ke_actor, ke_profile, message="x" * 1001), "--message")
    await refused(mx, offer_to({**ke_actor, "nodeKind": "hub"}, ke_profile), "not an Amity school")
    await refused(mx, lambda: partnerships.accept(mx.node, "ffff"), "no proposal 'ffff'")

    sent = await propose(mx, ke)
    await refused(mx, offer_to(ke_actor, ke_profile), "already pending")
    incoming = await until(lambda: _row(ke, sent.id))
    mx_actor, mx_profile = await actor_and_profile(mx)
    await refused(
        ke, lambda: partnerships.propose(ke.node, mx_actor, mx_profile), "already pending"
    )
    await refused(mx, lambda: partnerships.accept(mx.node, sent.short), "was made here")

    # Capacity 2: the pending proposal holds one place, a second takes the other, then none.
    await propose(mx, fr)
    nodes_ca = {**ke_profile, "country": "CA", "timezone": "America/Toronto"}
    await refused(mx, offer_to({**ke_actor, "id": ke.actor + "x"}, nodes_ca), "no free capacity")

    # A blocked proposer's proposal is not accepted.
    await ke.run(lambda: ke.node.block(mx.actor))
    await refused(ke, lambda: partnerships.accept(ke.node, incoming.short), "blocked")
    await refused(mx, offer_to(ke_actor, ke_profile), "already pending")


async def test_capacity_is_enforced_at_accept_time(
    tmp_path: Path, nodes: dict[str, LiveNode]
) -> None:
    mx, mx2 = nodes["mx"], nodes["mx2"]
    ke1 = await start_node(tmp_path, "ke1", UNLIMITED, capacity=1, **KENYA)
    try:
        first = await propose(mx, ke1)
        second = await propose(mx2, ke1)
        await until(lambda: _row(ke1, first.id))
        await until(lambda: _row(ke1, second.id))
        await ke1.run(lambda: partnerships.accept(ke1.node, first.short))
        await refused(ke1, lambda: partnerships.accept(ke1.node, second.short), "no free capacity")
        # A proposal to it now is refused by its node, and the proposer is told why.
        fr = nodes["fr"]
        third = await propose(fr, ke1)

        async def problem() -> str | None:
            found = await fr.run(lambda: partnerships.undelivered(fr.node, [third]))
            return found.get(third.id)

        assert "no free capacity" in await until(problem)
        assert await _row(ke1, third.id) is None
    finally:
        await ke1.server.close()
        ke1.node.close()


async def test_an_authority_arranges_a_pair_both_accept(
    tmp_path: Path, nodes: dict[str, LiveNode]
) -> None:
    mx, ke = nodes["mx"], nodes["ke"]
    ministry = await start_node(tmp_path, "ministry", UNLIMITED, kind="authority")
    try:
        a, b = await actor_and_profile(mx), await actor_and_profile(ke)
        arranged = await ministry.run(lambda: partnerships.arrange(ministry.node, a, b))
        assert arranged.role == "arranged"
        at_mx = await until(lambda: _row(mx, arranged.id))
        at_ke = await until(lambda: _row(ke, arranged.id))
        await mx.run(lambda: partnerships.accept(mx.node, at_mx.short))
        assert await state_of(mx, arranged.id) == "pending"  # the other has not yet
        await until(lambda: _proofs(ke, arranged.id, 2))
        done = await ke.run(lambda: partnerships.accept(ke.node, at_ke.short))
        assert done.state == "accepted"
        for node in (mx, ministry):
            await until(lambda node=node: _in_state(node, arranged.id, "accepted"))
        held = [await _row(node, arranged.id) for node in (mx, ke, ministry)]
        documents = [row.document for row in held if row is not None]
        assert len(documents) == 3
        assert documents[0] == documents[1] == documents[2]
        actors = {
            mx.actor: a[0],
            ke.actor: b[0],
            ministry.actor: await ministry.run(ministry.node.actor_document),
        }
        assert independent_verify(documents[0], actors) == set(actors)
    finally:
        await ministry.server.close()
        ministry.node.close()


async def test_proposals_from_one_stranger_are_capped_unless_it_is_trusted(
    tmp_path: Path, nodes: dict[str, LiveNode]
) -> None:
    ke = nodes["ke"]
    ministry = await start_node(tmp_path, "ministry", UNLIMITED, kind="authority")
    br = await start_node(tmp_path, "br", UNLIMITED, country="BR", timezone="America/Sao_Paulo")
    try:
        target = await actor_and_profile(ke)
        others = [nodes["mx"], nodes["fr"], nodes["mx2"], br]
        arranged = []
        for other in others:
            pair = await actor_and_profile(other)
            arranged.append(
                await ministry.run(
                    lambda pair=pair: partnerships.arrange(ministry.node, pair, target)
                )
            )

        async def settled_at_ministry() -> bool:
            rows = await ministry.run(
                lambda: ministry.node.store.db.execute(
                    "SELECT count(*) FROM deliveries WHERE attempts = 0"
                ).fetchone()
            )
            return rows[0] == 0

        await until(settled_at_ministry)
        held = {p.id for p in await rows(ke) if p.proposer == ministry.actor}
        assert len(held) == limits.PENDING_PROPOSALS_PER_ACTOR
        [waiting] = [p for p in arranged if p.id not in held]
        error = await ministry.run(
            lambda: ministry.node.store.db.execute(
                "SELECT last_error FROM deliveries WHERE activity_id = ? AND inbox = ?",
                [waiting.offer_id, ke.node.urls.inbox],
            ).fetchone()[0]
        )
        assert "HTTP 429" in error and "already has 3 proposals waiting" in error
        # Once this node trusts the authority, its pairing round is not capped per actor.
        await ke.run(lambda: endorsement_store.trust(ke.node.store.db, ministry.actor, "now"))
        await ministry.run(
            lambda: delivery_queue.retry_deliveries(
                ministry.node.store.db, None, ministry.node.clock().timestamp()
            )
        )
        ministry.server.app[WORKER].wake()
        await until(lambda: _row(ke, waiting.id))
    finally:
        for node in (ministry, br):
            await node.server.close()
            node.node.close()


async def _proofs(node: LiveNode, partnership_id: str, count: int) -> bool:
    row = await _row(node, partnership_id)
    return row is not None and len(row.document["proof"]) == count


async def test_a_school_whose_node_is_down_gets_the_proposal_later(tmp_path: Path) -> None:
    hub = await start_node(tmp_path, "hub", UNLIMITED, kind="hub")
    mx = await start_node(tmp_path, "mx", UNLIMITED)
    ke = await start_node(tmp_path, "ke", UNLIMITED, **KENYA)
    try:
        hub_actor = await hub.run(hub.node.actor_document)
        for school in (mx, ke):
            await school.run(lambda school=school: school.node.follow(hub_actor))
        ke_actor = await ke.run(ke.node.actor_document)
        await mx.run(lambda: mx.node.follow(ke_actor))  # caches ke's actor document

        async def listed() -> bool:
            held = await mx.run(lambda: partnerships.known_partner(mx.node, ke.actor))
            return held is not None

        await until(listed)
        await ke.server.close()  # ke's node goes down
        result = await asyncio.to_thread(
            amity, "propose", ke.actor, PRIVATE, data=mx.node.config.data_dir, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "does not answer" in result.stderr and "Proposed a partnership" in result.stdout
        [sent] = await rows(mx)
        assert sent.state == "pending" and sent.partner_name == KENYA_NAME

        # ke's node comes back on its address: the queued Offer reaches it.
        port = int(ke.base.rsplit(":", 1)[1])
        ke.server = TestServer(create_app(ke.node, UNLIMITED), host="127.0.0.1", port=port)
        await ke.server.start_server()
        mx.server.app[WORKER].wake()
        incoming = await until(lambda: _row(ke, sent.id), timeout=60)
        assert incoming.state == "pending" and incoming.document == sent.document
    finally:
        for node in (hub, mx, ke):
            await node.server.close()
            node.node.close()


# -- the inbox refuses what is forged or malformed ---------------------------------------


def _signed_offer(sender: LiveNode, partner: LiveNode, n: int = 0) -> dict[str, Any]:
    node = sender.node
    now = node.now()
    document = partnership_document(
        f"{sender.actor}/partnerships/test-{n}",
        proposer=sender.actor,
        partners=(sender.actor, partner.actor),
        languages=["en"],
        charter=current_charter(),
        published=now,
    )
    signed = add_proof(document, node.keys.ed25519_seed, node.urls.ed25519_key_id, now)
    return acts.offer(
        f"{sender.actor}/activities/{uuid.uuid4()}",
        sender.actor,
        signed,
        [partner.actor],
        now,
        expiry_of(now),
    )


async def test_forged_or_missing_proofs_are_refused(nodes: dict[str, LiveNode]) -> None:
    mx, ke, fr = nodes["mx"], nodes["ke"], nodes["fr"]
    inbox = ke.node.urls.inbox
    before = await snapshot(ke)
    async with aiohttp.ClientSession() as session:
        good = _signed_offer(mx, ke)
        forged = copy.deepcopy(good)
        forged["object"]["workingLanguages"] = ["es"]  # changed after signing
        status, body = await post_signed(session, inbox, forged, mx.node)
        assert status == 401 and "does not verify" in body["error"], body

        by_other = copy.deepcopy(good)  # signed with another school's key
        by_other["object"] = add_proof(
            {k: v for k, v in good["object"].items() if k != "proof"},
            fr.node.keys.ed25519_seed,
            mx.node.urls.ed25519_key_id,
            mx.node.now(),
        )
        status, body = await post_signed(session, inbox, by_other, mx.node)
        assert status == 401, body

        missing = copy.deepcopy(good)
        del missing["object"]["proof"]
        status, body = await post_signed(session, inbox, missing, mx.node)
        assert status == 400 and "no proof" in body["error"], body

        late = {**copy.deepcopy(good), "endTime": "2099-01-01T00:00:00Z"}
        status, body = await post_signed(session, inbox, late, mx.node)
        assert status == 400 and "endTime" in body["error"], body

        same_country = _signed_offer(nodes["mx2"], nodes["mx"])
        status, body = await post_signed(
            session, mx.node.urls.inbox, same_country, nodes["mx2"].node
        )
        assert status == 403 and "both schools are in MX" in body["error"], body
        assert await snapshot(ke) == before

        await ke.run(lambda: ke.node.block(fr.actor))
        status, _ = await post_signed(session, inbox, _signed_offer(fr, ke), fr.node)
        assert status == 403
        assert await snapshot(ke) == before

        status, body = await post_signed(session, inbox, good, mx.node)
        assert status == 202, body
        # The same pair again (another id): refused as a duplicate.
        again = _signed_offer(mx, ke, n=1)
        status, body = await post_signed(session, inbox, again, mx.node)
        assert status == 409 and "already exists" in body["error"], body
        # The same proposal in another Offer once it was declined: refused, not stored twice.
        await ke.run(
            lambda: partnerships.decline(ke.node, partnership_store.short_id(good["object"]["id"]))
        )
        resent = {**good, "id": f"{mx.actor}/activities/{uuid.uuid4()}"}
        status, body = await post_signed(session, inbox, resent, mx.node)
        assert status == 409 and "received before" in body["error"], body


async def test_an_accept_must_come_from_a_partner_and_keep_the_object(
    nodes: dict[str, LiveNode],
) -> None:
    mx, ke, fr = nodes["mx"], nodes["ke"], nodes["fr"]
    sent = await propose(mx, fr)
    await until(lambda: _row(fr, sent.id))
    ref = acts.offer_ref(sent.offer_id, mx.actor, sent.id)
    before = await snapshot(mx)

    def accept_by(school: LiveNode, document: dict[str, Any]) -> dict[str, Any]:
        node = school.node
        signed = add_proof(document, node.keys.ed25519_seed, node.urls.ed25519_key_id, node.now())
        return acts.accept(
            f"{school.actor}/activities/{uuid.uuid4()}",
            school.actor,
            ref,
            signed,
            [mx.actor],
            node.now(),
        )

    async with aiohttp.ClientSession() as session:
        changed = {**sent.document, "workingLanguages": ["fr"]}
        status, body = await post_signed(
            session, mx.node.urls.inbox, accept_by(fr, changed), fr.node
        )
        assert status == 400 and "differs" in body["error"], body
        stranger = accept_by(ke, sent.document)
        status, body = await post_signed(session, mx.node.urls.inbox, stranger, ke.node)
        assert status == 400 and "not part of" in body["error"], body
        assert await snapshot(mx) == before
        status, body = await post_signed(
            session, mx.node.urls.inbox, accept_by(fr, sent.document), fr.node
        )
        assert status == 202, body
    assert await state_of(mx, sent.id) == "accepted"


def test_the_protocol_names_each_charter_hash() -> None:
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    for language in CHARTER_LANGUAGES:
        assert f"`{current_charter(language).sha256}`" in protocol


def _malformed(mx: LiveNode, ke: LiveNode) -> list[dict[str, Any]]:
    good = _signed_offer(mx, ke, n=7)
    partnership = good["object"]

    def offer_with(**changes: Any) -> dict[str, Any]:
        return {**copy.deepcopy(good), "object": {**copy.deepcopy(partnership), **changes}}

    def activity(kind: str, obj: Any, **extra: Any) -> dict[str, Any]:
        return {
            "id": f"{mx.actor}/activities/{uuid.uuid4()}",
            "type": kind,
            "actor": mx.actor,
            "object": obj,
            **extra,
        }

    return [
        {**good, "object": partnership["id"]},
        {**good, "endTime": 5},
        offer_with(partners=[ke.actor]),
        offer_with(partners=[ke.actor, ke.actor]),
        offer_with(partners=[mx.actor, "not a url"]),
        offer_with(workingLanguages=[]),
        offer_with(workingLanguages=["en", 3]),
        offer_with(charter={"version": "1", "language": "en"}),
        offer_with(charter="https://example.org/charter"),
        offer_with(starterProject="moon-landing"),
        offer_with(content="\u202eevil"),
        offer_with(content="x" * 5000),
        offer_with(proof=[{"verificationMethod": 7}]),
        offer_with(proof=[partnership["proof"][0]] * 2),
        offer_with(proof="z123"),
        offer_with(attributedTo=ke.actor),
        offer_with(published="yesterday"),
        activity("Accept", {"type": "Offer", "object": 12}),
        activity("Accept", {"type": "Offer", "object": partnership["id"]}, result="x"),
        activity("Accept", {"type": "Offer", "object": partnership["id"]}, result=partnership),
        activity("Reject", {"type": "Offer", "object": {"id": partnership["id"]}}),
        activity("Reject", {"type": "Offer"}),
        activity("Leave", partnership["id"]),
        activity("Leave", {"no": "id"}),
    ]


async def test_malformed_partnership_activities_get_a_4xx(nodes: dict[str, LiveNode]) -> None:
    mx, ke = nodes["mx"], nodes["ke"]
    before = await snapshot(ke)
    async with aiohttp.ClientSession() as session:
        for document in _malformed(mx, ke):
            status, body = await post_signed(session, ke.node.urls.inbox, document, mx.node)
            assert 400 <= status < 500, (document, body)
            assert body.get("error"), body
    assert await snapshot(ke) == before


# -- served nodes, the real command, restarts ---------------------------------------------


def _json(data: Path, *args: str) -> Any:
    return json.loads(amity(*args, "--json", data=data).stdout)


def _actor(node: ServedNode, handle: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{node.base_url}/actors/{handle}", headers={"Accept": "application/activity+json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read()))


def test_a_partner_down_or_killed_gets_it_later(tmp_path: Path, served: Any) -> None:
    mx_port, ke_port = free_port(), free_port()
    mx_data = make_school(tmp_path, "mx", mx_port)
    ke_data = make_school(tmp_path, "ke", ke_port, **KENYA)
    ke = served(ke_data, ke_port, PRIVATE)
    ke_actor = f"{ke.base_url}/actors/ke"

    nobody = amity("propose", f"{ke.base_url}/actors/nobody", PRIVATE, data=mx_data, check=False)
    assert nobody.returncode == 1 and nobody.stderr.startswith("error: ")
    assert "Traceback" not in nobody.stderr
    result = amity("propose", ke_actor, "--project", "postcard", PRIVATE, data=mx_data, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: --project 'postcard'") and "postcards" in result.stderr
    assert _json(mx_data, "proposals") == []

    # Proposed while this node does not serve: the Offer waits in the queue.
    out = amity(
        "propose", ke_actor, "--message", "Hola", "--project", "our-water", PRIVATE, data=mx_data
    )
    assert "Proposed a partnership" in out.stdout
    [mine] = _json(mx_data, "proposals")
    assert mine["state"] == "pending" and mine["role"] == "outgoing"
    again = amity("propose", ke_actor, PRIVATE, data=mx_data, check=False)
    assert again.returncode == 1 and "already pending" in again.stderr

    mx = served(mx_data, mx_port, PRIVATE)
    [theirs] = wait_until(lambda: _json(ke_data, "proposals"))
    assert theirs["role"] == "incoming" and theirs["message"] == "Hola"
    assert theirs["starter_project"] == "our-water"

    # The proposer is killed; the answer waits for it in the partner's queue.
    mx.kill()
    out = amity("accept", theirs["id"][:5], data=ke_data)
    assert "partnership" in out.stdout
    assert _json(ke_data, "partnerships")[0]["state"] == "accepted"
    served(mx_data, mx_port, PRIVATE)
    [held] = wait_until(lambda: _json(mx_data, "partnerships"), timeout=30)
    assert held["state"] == "accepted"
    [other] = _json(ke_data, "partnerships")
    assert held["document"] == other["document"]
    actors = {a["id"]: a for a in (_actor(mx, "mx"), _actor(ke, "ke"))}
    assert independent_verify(held["document"], actors) == set(actors)

    unknown = amity("accept", "0000", data=ke_data, check=False)
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: no proposal '0000'")

    amity("leave", other["id"], data=ke_data)
    wait_until(lambda: _json(mx_data, "partnerships")[0]["state"] == "left")
    shown = amity("proposals", data=mx_data).stdout
    assert "[left]" in shown


def test_the_life_cycle_is_declared_once() -> None:
    assert set(TRANSITIONS) == set(STATES)
    assert set(partnerships._STATE_WORDS) == set(STATES)
    assert all(targets <= set(STATES) for targets in TRANSITIONS.values())


def test_starter_projects_are_a_small_fixed_set() -> None:
    assert set(STARTER_PROJECTS) >= {"postcards", "our-water", "festivals"}
    assert all(0 < len(line) <= 100 for line in STARTER_PROJECTS.values())


def test_ended_proposals_are_pruned_after_a_year(school: Any) -> None:
    db = school.store.db
    now = school.clock().timestamp()

    def row(n: int, state: str, age_days: float) -> partnership_store.Proposal:
        changed = now - age_days * 86400
        return partnership_store.Proposal(
            handle="benito",
            id=f"https://ke.example/actors/k/partnerships/{n}",
            short=partnership_store.short_id(str(n)),
            role="incoming",
            proposer="https://ke.example/actors/k",
            partner="https://ke.example/actors/k",
            partner_name="K",
            state=state,
            signed=False,
            document={},
            offer_id=f"https://ke.example/actors/k/activities/{n}",
            inboxes={},
            end_time=changed,
            created_at=changed,
            changed_at=changed,
            reason=None,
        )

    with db.atomic():
        for n, (state, age) in enumerate(
            [("declined", 400), ("expired", 400), ("left", 10), ("accepted", 400)]
        ):
            partnership_store.insert(db, row(n, state, age), "ke.example")
    prune(db, school.clock())
    kept = [r[0] for r in db.execute("SELECT state FROM partnerships ORDER BY id")]
    assert kept == ["left", "accepted"]


def test_the_proof_set_is_checked_proof_by_proof() -> None:
    def actor(name: str, seed: bytes) -> dict[str, Any]:
        actor_id = f"https://{name}.example/actors/{name}"
        key = bytes(SigningKey(seed).verify_key)
        return {
            "id": actor_id,
            "assertionMethod": [
                {
                    "id": f"{actor_id}#ed25519-key",
                    "type": "Multikey",
                    "controller": actor_id,
                    "publicKeyMultibase": encode_ed25519_public(key),
                }
            ],
        }

    a_seed, b_seed, c_seed = b"a" * 32, b"b" * 32, b"c" * 32
    a, b, c = actor("a", a_seed), actor("b", b_seed), actor("c", c_seed)
    document = partnership_document(
        f"{a['id']}/partnerships/1",
        proposer=a["id"],
        partners=(a["id"], b["id"]),
        languages=["en"],
        charter=current_charter(),
        published="2026-12-01T09:00:00Z",
    )
    first = add_proof(document, a_seed, f"{a['id']}#ed25519-key", "2026-12-01T09:00:00Z")
    assert not complete(first)
    both = add_proof(first, b_seed, f"{b['id']}#ed25519-key", "2026-12-02T09:00:00Z")
    assert complete(both) and len(both["proof"]) == 2
    actors = {a["id"]: a, b["id"]: b}
    assert verify_partnership(both, actors).proposer == a["id"]
    assert independent_verify(both, actors) == set(actors)
    # The order of the set does not matter; the same proof twice is refused.
    assert verify_partnership({**both, "proof": both["proof"][::-1]}, actors)
    with pytest.raises(MalformedDocument, match="two proofs by one actor"):
        read_partnership({**both, "proof": [both["proof"][0]] * 2})
    # Only the proposer's proof is missing: refused with that reason.
    with pytest.raises(BadSignature, match=r"proposer .* has not signed"):
        verify_partnership({**both, "proof": both["proof"][1:]}, actors)
    with pytest.raises(UnknownKey, match="no actor document"):
        verify_partnership(both, {a["id"]: a})
    # A proof made with another key under b's name does not verify.
    forged = add_proof(first, c_seed, f"{b['id']}#ed25519-key", "2026-12-02T09:00:00Z")
    with pytest.raises(BadSignature, match=re.escape(f"the proof of {b['id']}")):
        verify_partnership(forged, actors)
    # An outsider's proof is refused as malformed.
    outsider = add_proof(first, c_seed, f"{c['id']}#ed25519-key", "2026-12-02T09:00:00Z")
    with pytest.raises(MalformedDocument, match="not part of"):
        read_partnership(outsider)
    # Proofs merge only onto the same object.
    with pytest.raises(MalformedDocument, match="differs"):
        merge_proofs(first, {**both, "workingLanguages": ["fr"]})
    assert merge_proofs(first, both) == both


def test_what_a_stranger_writes_in_an_offer_is_refused_not_an_error() -> None:
    """Found in review: a starter project that is not a string, a proposal `published`
    in the future (or at the calendar's end, which overflowed), and an Offer made to
    expire at once (which would free its sender's quota of pending proposals at once)."""
    now = "2026-12-02T03:00:00Z"
    document = partnership_document(
        "https://a.example/partnerships/1",
        proposer="https://a.example/actors/a",
        partners=("https://a.example/actors/a", "https://b.example/actors/b"),
        languages=["en"],
        charter=current_charter(),
        published=now,
    )
    for project in (["postcards"], {"postcards": 1}, 7):
        with pytest.raises(MalformedDocument, match="starterProject"):
            read_partnership({**document, "starterProject": project}, require_proof=False)

    moment = parse_time(now)
    for published, end, reason in (
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z", "in the future"),
        ("2026-12-09T03:00:00Z", "2026-12-20T03:00:00Z", "in the future"),
        ("2026-11-18T03:00:01Z", "2026-12-02T03:00:01Z", "less than 10 days away"),
    ):
        with pytest.raises(MalformedDocument, match=reason):
            offer_end_time({"endTime": end}, published, moment)
    # An Offer queued for a few days while the partner was down is still taken.
    assert offer_end_time({"endTime": "2026-12-13T03:00:00Z"}, "2026-11-29T03:00:00Z", moment)


def test_an_arranged_proposal_not_taken_up_blocks_no_other(school: Any) -> None:
    """Anyone may pose as an authority and 'arrange' this school with another: until the
    school accepts, that row must not make the other school's own proposal a duplicate."""
    db = school.store.db
    me, other = school.urls.id, "https://b.example/actors/b"
    row = partnership_store.Proposal(
        handle=school.config.handle,
        id="https://fake-authority.example/partnerships/1",
        short=partnership_store.short_id("https://fake-authority.example/partnerships/1"),
        role="incoming",
        proposer="https://fake-authority.example/actors/x",
        partner=other,
        partner_name="B",
        state="pending",
        signed=False,
        document={"partners": [me, other]},
        offer_id="https://fake-authority.example/activities/1",
        inboxes={},
        end_time=2e9,
        created_at=1.8e9,
        changed_at=1.8e9,
        reason=None,
    )
    partnership_store.insert(db, row, "fake-authority.example")
    assert partnership_store.open_between(db, school.config.handle, me, other) is None
    db.execute("UPDATE partnerships SET signed = 1")  # the school took it up
    found = partnership_store.open_between(db, school.config.handle, me, other)
    assert found is not None and found.id == row.id
