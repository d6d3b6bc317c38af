"""Moving out: a school exports itself, starts its own node from the export, and the old
node sends a Move; followers and partners now address the new actor, the partnership
still verifies, and forged Moves change nothing."""

from __future__ import annotations

import json
import re
import shutil
import stat
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from amity.node.keys import load_keys
from amity.protocol.errors import BadSignature, MalformedDocument, UnknownKey
from amity.protocol.httpsig import sign_request
from amity.protocol.move import (
    MAX_ALIASES,
    also_known_as,
    check_target,
    move_activity,
    moved_to,
    read_move,
    verify_as_alias,
)
from amity.protocol.multikey import encode_ed25519_public
from amity.protocol.partnership import verify_partnership
from amity.protocol.proofs import sign_document

from .helpers import (
    EXAMPLE_PROFILE,
    ROOT,
    ServedNode,
    amity,
    free_port,
    make_school,
    query,
    wait_until,
)

PRIVATE = "--allow-private-network"
KENYA = {
    "name": "Uhuru Primary School",
    "country": "KE",
    "timezone": "Africa/Nairobi",
    "languages": {"instruction": ["en"], "learning": ["fr"]},
}
FRANCE = {
    "name": "École des Tilleuls",
    "country": "FR",
    "timezone": "Europe/Paris",
    "languages": {"instruction": ["fr"], "learning": ["es"]},
}
OLD = "https://old.example/actors/benito"
NOW = "2026-12-01T00:00:00Z"
NEW = "https://new.example/actors/benito"


# -- the pure parts ------------------------------------------------------------------------


def test_a_move_is_built_and_read_back() -> None:
    move = move_activity(
        f"{OLD}/activities/1", OLD, NEW, [f"{OLD}/followers"], "2026-12-01T00:00:00Z"
    )
    assert move["type"] == "Move" and move["object"] == OLD and move["target"] == NEW
    read = read_move(move)
    assert (read.old, read.new) == (OLD, NEW)
    assert read_move({**move, "object": {"id": OLD}, "target": {"id": NEW}}).new == NEW


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "Follow"}, "not a Move"),
        ({"object": NEW}, "moves only itself"),
        ({"target": OLD}, "another actor"),
        ({"target": None}, "target must be a URL"),
        ({"target": "ftp://x/y"}, "not an http"),
        ({"id": 5}, "id must be a URL"),
    ],
)
def test_a_malformed_move_is_refused_with_its_reason(change: dict[str, Any], message: str) -> None:
    move = move_activity(f"{OLD}/activities/1", OLD, NEW, [], "2026-12-01T00:00:00Z")
    with pytest.raises(MalformedDocument, match=message):
        read_move({**move, **change})


def test_the_move_in_the_docs_is_one_amity_sends_and_reads() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text()
    example = json.loads(re.search(r"<!-- example: move -->\n```json\n(.*?)\n```", text, re.S)[1])
    move = read_move(example)
    built = move_activity(move.id, move.old, move.new, example["to"], example["published"])
    assert built == example


def test_actor_fields_for_a_move() -> None:
    assert also_known_as({"alsoKnownAs": OLD}) == [OLD]
    many = [f"https://h{i}.example/a" for i in range(20)] + [5, "not a url"]
    assert also_known_as({"alsoKnownAs": many}) == many[:MAX_ALIASES]
    assert also_known_as({}) == []
    assert moved_to({"movedTo": NEW}) == NEW and moved_to({"movedTo": 3}) is None
    move = read_move(move_activity(f"{OLD}/activities/1", OLD, NEW, [], "2026-12-01T00:00:00Z"))
    check_target(move, {"id": NEW, "alsoKnownAs": [OLD]})
    with pytest.raises(MalformedDocument, match="alsoKnownAs"):
        check_target(move, {"id": NEW, "alsoKnownAs": ["https://x.example/a"]})
    with pytest.raises(MalformedDocument, match="another actor"):
        check_target(move, {"id": "https://x.example/a", "alsoKnownAs": [OLD]})


def _actor(actor_id: str, public: bytes, aliases: list[str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": actor_id,
        "assertionMethod": [
            {
                "id": f"{actor_id}#ed25519-key",
                "type": "Multikey",
                "controller": actor_id,
                "publicKeyMultibase": encode_ed25519_public(public),
            }
        ],
    }
    if aliases:
        doc["alsoKnownAs"] = aliases
    return doc


def test_a_proof_under_the_old_id_verifies_with_the_moved_key() -> None:
    from nacl.signing import SigningKey

    seed = bytes(range(32))
    public = bytes(SigningKey(seed).verify_key)
    signed = sign_document(
        {"id": "x", "type": "Note"}, seed, f"{OLD}#ed25519-key", "2026-12-01T00:00:00Z"
    )
    assert verify_as_alias(signed, _actor(NEW, public, [OLD])).public_key == public
    with pytest.raises(UnknownKey):
        verify_as_alias(signed, _actor(NEW, public))  # the new actor does not name the old
    other = bytes(SigningKey(bytes(32)).verify_key)
    with pytest.raises(BadSignature):
        verify_as_alias(signed, _actor(NEW, other, [OLD]))  # another key: no continuity


# -- real nodes: export, init --from, move -------------------------------------------------


def _json(data: Path, *args: str) -> Any:
    return json.loads(amity(*args, "--json", data=data).stdout)


def _states(data: Path, *args: str) -> list[str]:
    return [row["state"] for row in _json(data, "partnerships", *args)]


def _get(url: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/activity+json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read()))


def _post_signed(url: str, activity: dict[str, Any], data: Path, handle: str, actor: str) -> int:
    """POST `activity` to `url` signed with the RSA key of the node in `data`."""
    body = json.dumps(activity).encode()
    keys = load_keys(data / "keys", handle)
    headers = sign_request(
        method="POST",
        url=url,
        body=body,
        key_id=f"{actor}#main-key",
        private_key=keys.rsa_private,
        now=datetime.now(UTC),
    )
    headers["Content-Type"] = "application/activity+json"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _state(data: Path, table: str) -> list[tuple[Any, ...]]:
    return query(data, f"SELECT * FROM {table} ORDER BY 1, 2")


def _with_fast_retries(data: Path) -> Path:
    with (data / "amity.toml").open("a") as config:
        config.write("\n[federation]\nfirst_retry_seconds = 1\n")
    return data


def test_a_hosted_school_moves_out_with_its_followers_and_partnership(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("old", "follower", "partner", "new")}
    # The old node is a ministry's, hosting the school that moves out.
    old_data = tmp_path / "ministry"
    amity(
        "init", "--name", "ministry", "--kind", "authority",
        "--base-url", f"http://127.0.0.1:{ports['old']}", data=old_data,
    )  # fmt: skip
    _with_fast_retries(old_data)
    (tmp_path / "benito.json").write_text(json.dumps(EXAMPLE_PROFILE))
    amity("school", "add", "benito", "--profile", str(tmp_path / "benito.json"), data=old_data)
    school = ("--school", "benito")
    follower_data = make_school(tmp_path, "tilleuls", ports["follower"], **FRANCE)
    partner_data = make_school(tmp_path, "uhuru", ports["partner"], **KENYA)
    started: list[ServedNode] = []
    try:
        old = ServedNode(old_data, ports["old"], PRIVATE).start()
        follower = ServedNode(follower_data, ports["follower"], PRIVATE).start()
        partner = ServedNode(partner_data, ports["partner"], PRIVATE).start()
        started += [old, follower, partner]
        old_actor = f"{old.base_url}/actors/benito"
        partner_actor = f"{partner.base_url}/actors/uhuru"
        follower_actor = f"{follower.base_url}/actors/tilleuls"

        # A follower, and a partnership in force with both proofs.
        amity("follow", old_actor, PRIVATE, data=follower_data)
        wait_until(
            lambda: (
                query(follower_data, "SELECT state FROM following WHERE actor = ?", old_actor)
                == [("accepted",)]
            )
        )
        amity("propose", partner_actor, PRIVATE, *school, data=old_data)
        [incoming] = wait_until(lambda: _json(partner_data, "proposals"))
        amity("accept", incoming["id"][:6], data=partner_data)
        wait_until(lambda: _states(old_data, *school) == ["accepted"])
        partnership_id = incoming["id"]
        # The ministry (an authority) endorses its school, which holds the endorsement.
        amity("endorse", old_actor, PRIVATE, data=old_data)
        wait_until(lambda: _json(old_data, "endorsements", *school))
        # And a proposal from the follower, still waiting for the school's answer.
        amity("propose", old_actor, PRIVATE, data=follower_data)
        wait_until(lambda: len(_json(old_data, "proposals", *school)) == 2)

        # The export: every file the documented layout names, secret modes, refusals.
        export = tmp_path / "export"
        out = amity("school", "export", "benito", str(export), data=old_data)
        assert "Exported benito" in out.stdout
        assert stat.S_IMODE(export.stat().st_mode) == 0o700
        names = sorted(str(p.relative_to(export)) for p in export.rglob("*") if p.is_file())
        assert names == sorted(
            [
                "endorsements.json",
                "followers.json",
                "following.json",
                "keys/benito.ed25519",
                "keys/benito.rsa.pem",
                "manifest.json",
                "partnerships.json",
                "profile.json",
                "profile.signed.json",
            ]
        )
        assert all(stat.S_IMODE((export / n).stat().st_mode) == 0o600 for n in names)
        manifest = json.loads((export / "manifest.json").read_text())
        assert manifest["actor"] == old_actor and manifest["version"] == 1
        rows = json.loads((export / "partnerships.json").read_text())
        assert sorted(len(row["document"]["proof"]) for row in rows) == [1, 2]
        [endorsement] = json.loads((export / "endorsements.json").read_text())
        assert endorsement["object"] == old_actor
        again = amity("school", "export", "benito", str(export), data=old_data, check=False)
        assert again.returncode == 1 and "not empty" in again.stderr

        new_data = tmp_path / "new"
        same = amity("init", "--from", str(export), "--base-url", old.base_url, check=False)
        assert same.returncode == 1 and "old node's address" in same.stderr
        not_export = amity(
            "init", "--from", str(tmp_path), "--base-url", "http://127.0.0.1:9", check=False
        )
        assert not_export.returncode == 1 and "not an Amity school export" in not_export.stderr
        tampered = tmp_path / "tampered"
        shutil.copytree(export, tampered)
        followers_file = tampered / "followers.json"
        followers_file.write_text(followers_file.read_text().replace("tilleuls", "intruder"))
        damaged = amity(
            "init", "--from", str(tampered), "--base-url", "http://127.0.0.1:9", check=False
        )
        assert damaged.returncode == 1 and "was changed since the export" in damaged.stderr
        assert "Traceback" not in damaged.stderr + same.stderr + not_export.stderr

        new_url = f"http://127.0.0.1:{ports['new']}"
        amity("init", "--from", str(export), "--base-url", new_url, data=new_data)
        new = ServedNode(_with_fast_retries(new_data), ports["new"], PRIVATE).start()
        started.append(new)
        new_actor = f"{new_url}/actors/benito"
        new_doc = _get(new_actor)
        assert new_doc["alsoKnownAs"] == [old_actor]
        old_doc = _get(old_actor)
        assert (
            new_doc["assertionMethod"][0]["publicKeyMultibase"]
            == (old_doc["assertionMethod"][0]["publicKeyMultibase"])
        )  # the same key: what the school signed before still verifies
        assert _json(new_data, "profile", "show", "--signed")["attributedTo"] == new_actor
        assert [r["actor"] for r in _json(new_data, "followers")] == [follower_actor]
        [carried] = _json(new_data, "partnerships")
        assert carried["state"] == "accepted" and carried["id"] == partnership_id
        assert len(_json(new_data, "proposals")) == 2

        # Forged Moves reach the partner before the real one, and change nothing.
        before = _state(partner_data, "partnerships")
        forged = move_activity(
            f"{old_actor}/activities/{uuid.uuid4()}",
            old_actor,
            follower_actor,
            [],
            "2026-12-01T00:00:00Z",
        )
        inbox = f"{partner.base_url}/inbox"
        # Signed by the old actor, but its target does not name it in alsoKnownAs.
        assert _post_signed(inbox, forged, old_data, "benito", old_actor) == 400
        # Not signed by the old actor (the follower's key).
        stolen = {**forged, "id": f"{old_actor}/activities/{uuid.uuid4()}", "target": new_actor}
        assert _post_signed(inbox, stolen, follower_data, "tilleuls", follower_actor) == 401
        malformed = {**stolen, "object": new_actor}
        assert _post_signed(inbox, malformed, old_data, "benito", old_actor) == 400
        assert _state(partner_data, "partnerships") == before

        # The move.
        out = amity("school", "move", "benito", new_actor, PRIVATE, data=old_data)
        assert "moved to" in out.stdout
        twice = amity("school", "move", "benito", new_actor, PRIVATE, data=old_data, check=False)
        assert twice.returncode == 1 and "moved" in twice.stderr
        assert _get(old_actor)["movedTo"] == new_actor  # answered, not 404

        # The follower now follows the new actor (and the new node has it as follower).
        wait_until(
            lambda: (
                query(follower_data, "SELECT actor, state FROM following")
                == [(new_actor, "accepted")]
            ),
            timeout=30,
        )
        # The partner addresses the new actor, and the partnership verifies on both sides.
        wait_until(
            lambda: [p["partner"] for p in _json(partner_data, "partnerships")] == [new_actor],
            timeout=30,
        )
        [theirs] = _json(partner_data, "partnerships")
        [mine] = _json(new_data, "partnerships")
        assert theirs["document"] == mine["document"]
        actors = {new_actor: _get(new_actor), partner_actor: _get(partner_actor)}
        for held in (theirs, mine):
            verified = verify_partnership(held["document"], actors)
            assert verified.id == held["document"]["id"] and verified.partners[0] == old_actor
        inboxes = query(partner_data, "SELECT inboxes FROM partnerships")
        assert json.loads(inboxes[0][0]) == {new_actor: f"{new_url}/actors/benito/inbox"}

        # The proposal made to the old actor is accepted by the new one: its proof, under
        # the old id the partnership names, verifies with the moved key.
        [waiting] = [p for p in _json(new_data, "proposals") if p["state"] == "pending"]
        wait_until(
            lambda: query(follower_data, "SELECT partner FROM partnerships") == [(new_actor,)]
        )
        amity("accept", waiting["id"], data=new_data)
        wait_until(
            lambda: query(follower_data, "SELECT state FROM partnerships") == [("accepted",)],
            timeout=30,
        )
        [held] = _json(follower_data, "partnerships")
        both = {new_actor: _get(new_actor), follower_actor: _get(follower_actor)}
        assert verify_partnership(held["document"], both).partners == (follower_actor, old_actor)

        # Leaving from the new node ends it on the partner's side too (the new id acts for
        # the old one the partnership names).
        amity("leave", partnership_id, data=new_data)
        wait_until(lambda: _states(partner_data) == ["left"], timeout=30)
    finally:
        for node in started:
            node.stop()


def test_a_single_school_node_moves_out(tmp_path: Path) -> None:
    port, new_port = free_port(), free_port()
    old_data = make_school(tmp_path, "oaxaca", port)
    export = tmp_path / "export"
    out = amity("school", "export", "oaxaca", str(export), data=old_data)
    assert "Exported oaxaca" in out.stdout
    manifest = json.loads((export / "manifest.json").read_text())
    old_actor = f"http://127.0.0.1:{port}/actors/oaxaca"
    assert (manifest["actor"], manifest["kind"]) == (old_actor, "school")

    new_data = tmp_path / "own"
    new_url = f"http://127.0.0.1:{new_port}"
    amity("init", "--from", str(export), "--base-url", new_url, data=new_data)
    key = "keys/oaxaca.ed25519"
    assert (new_data / key).read_bytes() == (old_data / key).read_bytes()
    nodes = [ServedNode(d, p, PRIVATE).start() for d, p in ((old_data, port), (new_data, new_port))]
    try:
        new_actor = f"{new_url}/actors/oaxaca"
        wrong = amity("school", "move", "oaxaca", old_actor, PRIVATE, data=old_data, check=False)
        assert wrong.returncode == 1 and "another actor" in wrong.stderr
        amity("school", "move", "oaxaca", new_actor, PRIVATE, data=old_data)
        assert _get(old_actor)["movedTo"] == new_actor
        status, _, _ = nodes[0].get(
            "/.well-known/webfinger?resource=acct:oaxaca@127.0.0.1:" + str(port)
        )
        assert status == 200  # a late peer still finds the old actor, and its movedTo
    finally:
        for node in nodes:
            node.stop()
    assert query(old_data, "SELECT moved_to FROM accounts") == [(new_actor,)]
    again = amity("school", "move", "oaxaca", new_actor, PRIVATE, data=old_data, check=False)
    assert again.returncode == 1 and "already" in again.stderr


def test_only_a_school_of_this_node_is_exported(tmp_path: Path) -> None:
    ministry = tmp_path / "ministry"
    amity(
        "init",
        "--name",
        "ministry",
        "--kind",
        "authority",
        "--base-url",
        "http://127.0.0.1:9",
        data=ministry,
    )
    own = amity("school", "export", "ministry", str(tmp_path / "x"), data=ministry, check=False)
    assert own.returncode == 1 and "only schools" in own.stderr
    unknown = amity("school", "export", "oaxacq", str(tmp_path / "y"), data=ministry, check=False)
    assert unknown.returncode == 1 and "amity school list" in unknown.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    hub = amity(
        "school", "move", "ministry", "http://127.0.0.1:9/actors/x", data=ministry, check=False
    )
    assert hub.returncode == 1 and "only schools move" in hub.stderr


def test_the_export_reader_says_what_is_wrong(school: Any, tmp_path: Path) -> None:
    from amity.node.errors import NodeError
    from amity.node.school_export import export_school, read_export

    export = tmp_path / "export"
    export_school(school, school.handle, export)
    read = read_export(export)
    assert read.actor == school.urls.id and read.keys.ed25519_seed == school.keys.ed25519_seed
    assert read.profile == school.profile().data

    def broken(change: Any) -> str:
        copy = tmp_path / f"copy{uuid.uuid4().hex[:6]}"
        shutil.copytree(export, copy)
        change(copy)
        with pytest.raises(NodeError) as caught:
            read_export(copy)
        return str(caught.value)

    def manifest(copy: Path, **fields: Any) -> None:
        path = copy / "manifest.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))

    assert "format version 2" in broken(lambda c: manifest(c, version=2))
    assert "its proof does not verify" in broken(
        lambda c: manifest(c, exported="2020-01-01T00:00:00Z")
    )
    assert "missing from the export" in broken(lambda c: (c / "keys" / "benito.rsa.pem").unlink())
    assert "not JSON" in broken(lambda c: (c / "manifest.json").write_text("{"))
    assert "not an Amity school export" in broken(lambda c: manifest(c, format="other"))
    with pytest.raises(NodeError, match="not empty"):
        export_school(school, school.handle, export)


async def test_a_mastodon_follower_gets_the_move_as_mastodon_sends_it(tmp_path: Path) -> None:
    import asyncio

    from amity.federation import relations
    from amity.node import account_moves
    from amity.node.moving_out import move_account

    from .inprocess import start_node
    from .mastodon_peer import MastodonPeer
    from .test_bounds import UNLIMITED

    peer = MastodonPeer("ana")
    await peer.server.start_server()
    old = await start_node(tmp_path, "oldschool", UNLIMITED)
    new = await start_node(tmp_path, "newschool", UNLIMITED)
    try:
        old_id, ana = old.actor, peer.actor_id("ana")

        def follower() -> None:
            with old.node.store.db.atomic():
                inbox = f"{peer.base}/inbox"
                relations.add_follower(old.node.store.db, "oldschool", ana, inbox, f"{ana}#f", NOW)

        await old.run(follower)
        # The new node holds the school's keys (as init --from makes it) and names the old.
        await new.run(lambda: account_moves.add_alias(new.node.store.db, "newschool", old_id))
        new.node.keys = old.node.keys
        target = await new.run(new.node.actor_document)
        await old.run(lambda: move_account(old.node, "oldschool", target))
        for _ in range(200):
            if any(body.get("type") == "Move" for _, body in peer.received):
                break
            await asyncio.sleep(0.05)
        [(path, move)] = [(p, b) for p, b in peer.received if b.get("type") == "Move"]
        assert path == "/inbox"
        assert (move["actor"], move["object"], move["target"]) == (old_id, old_id, new.actor)
        signature = next(s for s in peer.signatures if not s.startswith("RFC 9421"))
        assert signature.startswith(f'keyId="{old_id}#main-key"')  # draft-cavage, as Mastodon reads
        actor = await old.run(old.node.actor_document)
        assert actor["movedTo"] == new.actor
    finally:
        for node in (old, new):
            await node.server.close()
            node.node.close()
        await peer.server.close()
