"""One node hosting several schools, with real nodes on 127.0.0.1 (subprocesses): a ministry
(an authority node) hosting three schools, a single-school node and a hub."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from amity.protocol.proofs import verify_with_actor

from .helpers import EXAMPLE_PROFILE, ServedNode, amity, free_port, make_school, query, wait_until
from .mastodon_peer import MastodonPeer

PRIVATE = "--allow-private-network"
HOSTED = ("north", "south", "east")


@dataclass
class Federation:
    tmp: Path
    hub: ServedNode
    ministry: ServedNode
    solo: ServedNode

    def actor(self, handle: str) -> str:
        return f"{self.ministry.base_url}/actors/{handle}"

    @property
    def host(self) -> str:
        return self.ministry.base_url.removeprefix("http://")

    @property
    def solo_actor(self) -> str:
        return f"{self.solo.base_url}/actors/solo"


def _init(data: Path, handle: str, port: int, kind: str) -> None:
    amity(
        "init",
        "--name",
        handle,
        "--kind",
        kind,
        "--base-url",
        f"http://127.0.0.1:{port}",
        data=data,
    )
    with (data / "amity.toml").open("a") as config:
        config.write("\n[federation]\nfirst_retry_seconds = 1\n")


def _profile_file(tmp: Path, handle: str, **changes: Any) -> Path:
    path = tmp / f"{handle}-profile.json"
    path.write_text(json.dumps({**EXAMPLE_PROFILE, "name": f"{handle.title()} School", **changes}))
    return path


def _listed(data: Path) -> set[str]:
    return {row[0] for row in query(data, "SELECT actor FROM directory WHERE deleted_at IS NULL")}


def _accepted(data: Path, handle: str, actor: str) -> bool:
    rows = query(data, "SELECT state FROM following WHERE handle = ? AND actor = ?", handle, actor)
    return rows == [("accepted",)]


def _capacity(data: Path, actor: str) -> int | None:
    rows = query(data, "SELECT document FROM directory WHERE actor = ?", actor)
    return json.loads(rows[0][0])["capacity"] if rows and rows[0][0] else None


def _partnership_states(data: Path, school: str) -> list[str]:
    found = amity("partnerships", "--json", "--school", school, data=data).stdout
    return [row["state"] for row in json.loads(found)]


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    tmp = tmp_path_factory.mktemp("hosting")
    ports = {name: free_port() for name in ("hub", "ministry", "solo")}
    _init(tmp / "hub", "hub", ports["hub"], "hub")
    _init(tmp / "ministry", "ministry", ports["ministry"], "authority")
    for handle in HOSTED:
        amity(
            "school",
            "add",
            handle,
            "--profile",
            str(_profile_file(tmp, handle)),
            data=tmp / "ministry",
        )
    make_school(tmp, "solo", ports["solo"], country="KE", timezone="Africa/Nairobi")
    started = [ServedNode(tmp / name, port, PRIVATE).start() for name, port in ports.items()]
    fed = Federation(tmp, *started)
    try:
        # The ministry follows the hub once, for all the schools it hosts.
        amity("follow", f"hub@127.0.0.1:{ports['hub']}", PRIVATE, data=tmp / "ministry")
        hub_actor = f"{fed.hub.base_url}/actors/hub"
        wait_until(lambda: _accepted(tmp / "ministry", "ministry", hub_actor))
        yield fed
    finally:
        for node in started:
            node.stop()


def _get_json(node: ServedNode, path: str) -> tuple[int, Any]:
    status, _, body = node.get(path)
    return status, json.loads(body) if body else None


def test_each_hosted_school_is_an_actor_of_its_own_and_the_hub_lists_all(
    federation: Federation,
) -> None:
    keys = set()
    for handle in HOSTED:
        resource = urllib.parse.quote(f"acct:{handle}@{federation.host}")
        status, finger = _get_json(
            federation.ministry, f"/.well-known/webfinger?resource={resource}"
        )
        assert status == 200 and finger["subject"] == f"acct:{handle}@{federation.host}"
        [link] = [link for link in finger["links"] if link.get("rel") == "self"]
        assert link["href"] == federation.actor(handle)
        status, actor = _get_json(federation.ministry, f"/actors/{handle}")
        assert status == 200 and actor["id"] == federation.actor(handle)
        assert actor["nodeKind"] == "school" and actor["name"] == f"{handle.title()} School"
        assert actor["endpoints"]["sharedInbox"] == f"{federation.ministry.base_url}/inbox"
        status, profile = _get_json(federation.ministry, f"/actors/{handle}/profile")
        assert status == 200 and profile["attributedTo"] == actor["id"]
        verify_with_actor(profile, actor)  # signed with the school's own Ed25519 key
        keys.add(actor["assertionMethod"][0]["publicKeyMultibase"])
        keys.add(actor["publicKey"]["publicKeyPem"])
        status, followers = _get_json(federation.ministry, f"/actors/{handle}/followers")
        assert status == 200 and followers["id"] == f"{actor['id']}/followers"
    assert len(keys) == 2 * len(HOSTED)  # no two schools share a key
    status, _ = _get_json(federation.ministry, "/actors/nobody")
    assert status == 404
    hub_data = federation.tmp / "hub"
    wait_until(lambda: {federation.actor(h) for h in HOSTED} <= _listed(hub_data))


def test_a_hosted_school_is_followed_on_its_own_and_updates_reach_its_followers_only(
    federation: Federation,
) -> None:
    ministry, solo = federation.tmp / "ministry", federation.tmp / "solo"
    north = federation.actor("north")
    amity("follow", f"north@{federation.host}", PRIVATE, data=solo)
    wait_until(lambda: _accepted(solo, "solo", north))
    followers = json.loads(amity("followers", "--json", "--school", "north", data=ministry).stdout)
    assert [row["actor"] for row in followers] == [federation.solo_actor]
    assert json.loads(amity("followers", "--json", "--school", "south", data=ministry).stdout) == []

    for handle, capacity in (("south", 7), ("north", 5)):  # south first: its update must not come
        path = _profile_file(
            federation.tmp, f"{handle}-new", capacity=capacity, name=f"{handle.title()} School"
        )
        amity("profile", "import", str(path), "--school", handle, data=ministry)
    wait_until(lambda: _capacity(solo, north) == 5)
    wait_until(lambda: _capacity(federation.tmp / "hub", federation.actor("south")) == 7)
    updates = query(solo, "SELECT actor FROM seen_activities WHERE type = 'Update'")
    assert (federation.actor("south"),) not in updates and (north,) in updates


def test_two_hosted_schools_get_a_followed_schools_update_through_one_post(
    federation: Federation,
) -> None:
    ministry, solo = federation.tmp / "ministry", federation.tmp / "solo"
    for handle in ("north", "east"):
        amity(
            "follow",
            f"solo@{federation.solo.base_url.removeprefix('http://')}",
            PRIVATE,
            "--school",
            handle,
            data=ministry,
        )
    wait_until(
        lambda: (
            _accepted(ministry, "north", federation.solo_actor)
            and _accepted(ministry, "east", federation.solo_actor)
        )
    )
    following = json.loads(amity("following", "--json", "--school", "east", data=ministry).stdout)
    assert [row["actor"] for row in following] == [federation.solo_actor]
    assert json.loads(amity("following", "--json", "--school", "south", data=ministry).stdout) == []
    # Both are followers at the node's shared inbox: the update is queued once for both.
    inboxes = query(
        solo,
        "SELECT DISTINCT inbox FROM followers WHERE actor LIKE ?",
        f"{federation.ministry.base_url}/%",
    )
    assert inboxes == [(f"{federation.ministry.base_url}/inbox",)]

    federation.ministry.kill()
    try:
        path = _profile_file(
            federation.tmp, "solo-new", country="KE", timezone="Africa/Nairobi", capacity=4
        )
        amity("profile", "import", str(path), data=solo)
        queued = json.loads(amity("queue", "--json", data=solo).stdout)
        to_ministry = [
            row for row in queued if row["inbox"].startswith(federation.ministry.base_url)
        ]
        assert [row["inbox"] for row in to_ministry] == [f"{federation.ministry.base_url}/inbox"]
    finally:
        federation.ministry.start()
    wait_until(lambda: _capacity(ministry, federation.solo_actor) == 4, timeout=30)
    for handle in ("north", "east"):
        listed = json.loads(amity("directory", "--json", "--school", handle, data=ministry).stdout)
        assert [item["capacity"] for item in listed if item["actor"] == federation.solo_actor] == [
            4
        ]
    seen = query(
        ministry,
        "SELECT count(*) FROM seen_activities WHERE type = 'Update' AND actor = ?",
        federation.solo_actor,
    )
    assert seen == [(1,)]


async def test_a_mastodon_server_with_two_followers_of_a_hosted_school_gets_one_post(
    federation: Federation,
) -> None:
    ministry = federation.tmp / "ministry"
    peer = MastodonPeer("ana", "ben")
    await peer.server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            inbox = f"{federation.actor('south')}/inbox"
            for name in ("ana", "ben"):
                follow = peer.activity(name, "Follow", federation.actor("south"))
                assert await peer.post(session, name, inbox, follow) == 202
            for name in ("ana", "ben"):  # the follow policy holds non-Amity followers
                await asyncio.to_thread(
                    amity, "approve", peer.actor_id(name), "--school", "south", data=ministry
                )
            for _ in range(300):
                if len(peer.received) >= 2:
                    break
                await asyncio.sleep(0.05)
            assert sorted(path for path, _ in peer.received) == [
                "/users/ana/inbox",
                "/users/ben/inbox",
            ]
            peer.received.clear()
            path = _profile_file(federation.tmp, "south-masto", capacity=3, name="South School")
            await asyncio.to_thread(
                amity, "profile", "import", str(path), "--school", "south", data=ministry
            )
            for _ in range(300):
                if peer.received:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # time for a second POST, which must not come
            [(at, update)] = peer.received
            assert at == "/inbox" and update["type"] == "Update"
            assert update["actor"] == federation.actor("south")
            assert peer.signatures[-1].startswith(f'keyId="{federation.actor("south")}#main-key"')
    finally:
        await peer.server.close()


def test_removing_a_school_withdraws_it_everywhere_and_leaves_the_others(
    federation: Federation,
) -> None:
    ministry, hub = federation.tmp / "ministry", federation.tmp / "hub"
    # Added while the node serves: the hub lists it within seconds.
    amity(
        "school",
        "add",
        "gone",
        "--profile",
        str(_profile_file(federation.tmp, "gone")),
        data=ministry,
    )
    gone = federation.actor("gone")
    wait_until(lambda: gone in _listed(hub))
    status, _ = _get_json(federation.ministry, "/actors/gone")
    assert status == 200
    solo = federation.tmp / "solo"
    solo_handle = f"solo@{federation.solo.base_url.removeprefix('http://')}"

    def offered() -> list[str]:
        rows = json.loads(amity("proposals", "--json", data=solo).stdout)
        return [row["state"] for row in rows if row["proposer"] == gone]

    # A partnership in force holds the school back until it leaves it.
    amity("propose", solo_handle, PRIVATE, "--school", "gone", data=ministry)
    wait_until(lambda: offered() == ["pending"])
    rows = json.loads(amity("proposals", "--json", data=solo).stdout)
    [first] = [row for row in rows if row["proposer"] == gone]
    amity("accept", first["id"][:8], data=solo)
    wait_until(lambda: _partnership_states(ministry, "gone") == ["accepted"])
    refused = amity("school", "remove", "gone", "--yes", data=ministry, check=False)
    assert refused.returncode == 1 and "amity leave ID --school gone" in refused.stderr
    assert gone in _listed(hub)  # nothing withdrawn
    amity("leave", first["id"][:8], "--school", "gone", data=ministry)
    wait_until(lambda: offered() == ["left"])
    # An open proposal is withdrawn by the removal: nothing comes into force with it later.
    amity("propose", solo_handle, PRIVATE, "--school", "gone", data=ministry)
    wait_until(lambda: sorted(offered()) == ["left", "pending"])

    removed = amity("school", "remove", "gone", "--yes", data=ministry)
    assert "removed" in removed.stdout
    wait_until(lambda: gone not in _listed(hub))
    # Its open proposal was withdrawn first: no partnership comes into force with it.
    wait_until(lambda: sorted(offered()) == ["left", "withdrawn"])
    assert {federation.actor(h) for h in HOSTED} <= _listed(hub)
    handles = [
        row["handle"] for row in json.loads(amity("school", "list", "--json", data=ministry).stdout)
    ]
    assert handles == sorted(HOSTED)
    # Its actor answers (for its withdrawal's receivers) until its deliveries are done.
    wait_until(lambda: _get_json(federation.ministry, "/actors/gone")[0] == 410)
    resource = urllib.parse.quote(f"acct:gone@{federation.host}")
    for path in (
        "/actors/gone",
        "/actors/gone/profile",
        "/actors/gone/followers",
        f"/.well-known/webfinger?resource={resource}",
    ):
        status, _ = _get_json(federation.ministry, path)
        assert status in (404, 410), path
    for handle in HOSTED:
        status, _ = _get_json(federation.ministry, f"/actors/{handle}")
        assert status == 200
    # Its key files were moved aside while the node kept serving: still no 5xx.
    assert not list((ministry / "keys").glob("gone.*"))
    status, _ = _get_json(federation.ministry, "/actors/gone")
    assert status == 410


def test_a_removed_school_s_withdrawal_verifies_at_a_hub_that_never_cached_its_actor(
    federation: Federation,
) -> None:
    ministry, hub_data = federation.tmp / "ministry", federation.tmp / "hub"
    amity("school", "add", "brief", "--profile", str(_profile_file(federation.tmp, "brief")),
          data=ministry)  # fmt: skip
    brief = federation.actor("brief")
    wait_until(lambda: brief in _listed(hub_data))
    # The hub goes down and forgets the school's actor (as when its cache expired, or a
    # hub that got the listing relayed): it must fetch the key to check the Delete.
    federation.hub.stop()
    with sqlite3.connect(hub_data / "amity.db") as connection:
        connection.execute("DELETE FROM remote_actors WHERE id = ?", [brief])
    connection.close()
    amity("school", "remove", "brief", "--yes", data=ministry)
    # While the Delete waits for the hub, the removed school's actor is served, with its
    # keys and marked removed; nothing else of it is.
    status, document = _get_json(federation.ministry, "/actors/brief")
    assert status == 200, document
    assert document["removed"] and document["publicKey"]["id"] == f"{brief}#main-key"
    assert document["assertionMethod"][0]["id"] == f"{brief}#ed25519-key"
    assert "schoolProfile" not in document and document["discoverable"] is False
    resource = urllib.parse.quote(f"acct:brief@{federation.host}")
    for path in ("/actors/brief/profile", f"/.well-known/webfinger?resource={resource}"):
        assert _get_json(federation.ministry, path)[0] == 410, path

    federation.hub.start()  # the Delete's next retry: the hub fetches the key, verifies it
    wait_until(lambda: brief not in _listed(hub_data), timeout=60)
    cached = query(hub_data, "SELECT document FROM remote_actors WHERE id = ?", brief)
    assert json.loads(cached[0][0])["removed"] == document["removed"]
    # Every delivery of the school done (none dead), its actor is gone.
    wait_until(lambda: _get_json(federation.ministry, "/actors/brief")[0] == 410)
    assert query(ministry, "SELECT state FROM deliveries WHERE handle = 'brief'") == []
