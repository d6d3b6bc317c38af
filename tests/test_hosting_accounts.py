"""Hosted school accounts on one node: added, listed, opened by handle, each with its own
keys and signed profile; the node's first account stays the default."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from amity.node.errors import NodeError
from amity.node.hosting import REMOVED_GRACE, removed_view
from amity.node.node import Node
from amity.node.school_accounts import listed_schools
from amity.protocol.profile import display_name
from amity.protocol.proofs import verify_with_actor

from .helpers import EXAMPLE_PROFILE, amity, query


def test_add_school_gives_an_account_of_its_own(school: Node, profile: dict[str, Any]) -> None:
    hosted = school.add_school("nairobi-east", {**profile, "country": "KE", "name": "East"})
    assert hosted.handle == "nairobi-east" and school.handle == "benito"
    assert hosted.urls.id == "http://127.0.0.1:8080/actors/nairobi-east"
    assert hosted.keys.ed25519_public != school.keys.ed25519_public
    actor = hosted.actor_document()
    assert actor["id"] == hosted.urls.id and actor["nodeKind"] == "school"
    assert actor["endpoints"]["sharedInbox"] == "http://127.0.0.1:8080/inbox"
    stored = hosted.profile()
    assert stored is not None and stored.data["name"] == "East"
    verify_with_actor(stored.document, actor)  # signed with its own key
    assert stored.document["attributedTo"] == hosted.urls.id
    assert school.profile() is not None and school.profile().data["name"] != "East"  # type: ignore[union-attr]
    assert school.school_handles() == ["benito", "nairobi-east"]
    assert school.for_school("nairobi-east").keys == hosted.keys


def test_open_for_a_school_and_an_unknown_one(school: Node, profile: dict[str, Any]) -> None:
    school.add_school("mombasa", profile)
    data_dir = school.config.data_dir
    with Node.open(data_dir, school="mombasa") as opened:
        assert opened.handle == "mombasa" and opened.config.handle == "benito"
        assert opened.profile() is not None
    with pytest.raises(NodeError, match=r"no school mombosa here; `amity school list`.*mombasa"):
        Node.open(data_dir, school="mombosa")
    with pytest.raises(NodeError, match="no school"):
        school.for_school("nowhere")


def test_add_school_refuses_and_leaves_nothing(school: Node, profile: dict[str, Any]) -> None:
    with pytest.raises(NodeError, match="already"):
        school.add_school("benito", profile)
    with pytest.raises(NodeError, match="lower-case"):
        school.add_school("Bad Name", profile)
    with pytest.raises(Exception, match="country"):
        school.add_school("broken", {**profile, "country": "XX"})
    assert school.school_handles() == ["benito"]
    assert not list(school.config.keys_dir.glob("broken*"))
    assert school.store.actor("broken") is None


def test_a_hub_hosts_schools_too(tmp_path: Path) -> None:
    from amity.node.node import init_node

    with init_node(
        tmp_path / "hub", handle="hub", base_url="http://127.0.0.1:8081", kind="hub"
    ) as hub:
        hosted = hub.add_school("village", EXAMPLE_PROFILE)
        assert hosted.kind == "school" and hub.kind == "hub"
        assert hub.school_handles() == ["village"]  # the hub itself is no school


def test_cli_school_add_and_list(tmp_path: Path) -> None:
    profile_file = tmp_path / "p.json"
    profile_file.write_text(json.dumps({**EXAMPLE_PROFILE, "name": "Second School"}))
    data = tmp_path / "node"
    amity(
        "init",
        "--name",
        "ministry",
        "--kind",
        "authority",
        "--base-url",
        "http://127.0.0.1:8090",
        data=data,
    )
    added = amity("school", "add", "second", "--profile", str(profile_file), data=data)
    assert "@second@127.0.0.1:8090" in added.stdout
    listed = json.loads(amity("school", "list", "--json", data=data).stdout)
    assert listed == [
        {
            "handle": "second",
            "actor": "http://127.0.0.1:8090/actors/second",
            "name": "Second School",
            "first_account": False,
        }
    ]
    assert "Second School" in amity("school", "list", data=data).stdout
    again = amity("school", "add", "second", "--profile", str(profile_file), data=data, check=False)
    assert (
        again.returncode == 1
        and again.stderr.startswith("error: ")
        and "choose another" in again.stderr
    )
    assert query(data, "SELECT handle FROM accounts ORDER BY handle") == [
        ("ministry",),
        ("second",),
    ]


def test_school_option_acts_for_one_school(tmp_path: Path) -> None:
    profile_file = tmp_path / "p.json"
    profile_file.write_text(json.dumps({**EXAMPLE_PROFILE, "name": "Lakeside School"}))
    data = tmp_path / "node"
    amity("init", "--name", "first", "--base-url", "http://127.0.0.1:8091", data=data)
    amity("school", "add", "lakeside", "--profile", str(profile_file), data=data)
    shown = amity("profile", "show", "--school", "lakeside", data=data).stdout
    assert "Lakeside School" in shown and "@lakeside@127.0.0.1:8091" in shown
    signed = json.loads(
        amity("profile", "show", "--signed", "--school", "lakeside", data=data).stdout
    )
    assert signed["attributedTo"] == "http://127.0.0.1:8091/actors/lakeside"
    # The first account stays the default; AMITY_SCHOOL picks a school as --school does.
    assert "no profile yet" in amity("profile", "show", data=data, check=False).stderr
    env_run = _with_env({"AMITY_SCHOOL": "lakeside"}, "profile", "show", data=data)
    assert "Lakeside School" in env_run
    wrong = amity("followers", "--school", "lakesid", data=data, check=False)
    assert wrong.returncode == 1
    assert wrong.stderr == (
        "error: no school lakesid here; `amity school list` shows them (did you mean lakeside?)\n"
    )
    amity("profile", "pause", "--school", "lakeside", data=data)
    assert query(
        data, "SELECT json_extract(document, '$.paused') FROM profiles WHERE handle = ?", "lakeside"
    ) == [(1,)]


def test_school_remove_refuses_the_first_account_and_unknown_ones(tmp_path: Path) -> None:
    data = tmp_path / "node"
    amity("init", "--name", "first", "--base-url", "http://127.0.0.1:8092", data=data)
    first = amity("school", "remove", "first", "--yes", data=data, check=False)
    assert first.returncode == 1 and "first account" in first.stderr
    unknown = amity("school", "remove", "nobody", "--yes", data=data, check=False)
    assert unknown.returncode == 1 and "no school nobody here" in unknown.stderr


def test_remove_school_withdraws_and_retires_its_keys(
    school: Node, profile: dict[str, Any]
) -> None:
    hosted = school.add_school("gone", profile)
    actor_id = hosted.urls.id
    school.remove_school("gone")
    keys_dir = school.config.keys_dir
    assert not list(keys_dir.glob("gone.*"))
    assert sorted(p.name for p in (keys_dir / "removed").iterdir()) == [
        "gone.ed25519",
        "gone.rsa.pem",
    ]
    assert school.school_handles() == ["benito"]
    listed = school.store.db.execute(
        "SELECT deleted_at FROM directory WHERE actor = ?", [actor_id]
    ).fetchall()
    assert listed and listed[0][0] is not None  # the local listing is withdrawn
    with pytest.raises(NodeError, match="was removed"):
        school.for_school("gone")
    with pytest.raises(NodeError, match="already"):
        school.add_school("gone", profile)  # a removed handle is not handed out again


def test_a_removed_school_s_actor_is_served_while_its_withdrawal_is_on_its_way(
    school: Node, profile: dict[str, Any]
) -> None:
    hosted = school.add_school("gone", profile)
    db = school.store.db
    db.table("followers").insert(
        {
            "handle": "gone",
            "actor": "https://far.example/actors/x",
            "inbox": "https://far.example/inbox",
            "follow_id": "https://far.example/activities/1",
            "created": "2026-12-01T00:00:00Z",
        }
    )
    school.remove_school("gone")  # its Delete is queued to the follower's inbox
    view = removed_view(school, "gone")
    assert view is not None
    actor = view.actor_document()
    assert actor["id"] == hosted.urls.id and actor["removed"] and not actor["discoverable"]
    assert actor["publicKey"]["publicKeyPem"] == hosted.keys.rsa_public_pem
    # Never longer than the grace window (a stepped clock), nor once nothing is pending.
    start = school.clock()
    school.clock = lambda: start + timedelta(seconds=REMOVED_GRACE + 1)
    assert removed_view(school, "gone") is None
    school.clock = lambda: start + timedelta(seconds=REMOVED_GRACE - 60)
    assert removed_view(school, "gone") is not None
    db.execute("UPDATE deliveries SET state = 'dead' WHERE handle = 'gone'")
    assert removed_view(school, "gone") is None


def test_school_list_reads_every_school_in_one_query(school: Node, profile: dict[str, Any]) -> None:
    without_name = {k: v for k, v in profile.items() if k != "name"}
    school.add_school("mapped", {**without_name, "name_map": {"fr": "École", "en": "Tree"}})
    school.add_school("plain", {**profile, "name": "Plain\u200b School"})
    school.add_school("quiet", profile).withdraw_profile()
    school.add_school("gone", profile)
    school.remove_school("gone")
    db = school.store.db
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        rows = listed_schools(db, school.config)
    finally:
        db.conn.set_trace_callback(None)
    assert len(statements) == 1, statements  # not one read per school
    # The same rows as reading each school's profile on its own.
    expected = []
    for handle in school.school_handles():
        stored = school.store.profile(handle)
        name = display_name(stored.data) if stored else None
        actor = f"{school.config.base_url}/actors/{handle}"
        expected.append(
            {"handle": handle, "actor": actor, "name": name, "first_account": handle == "benito"}
        )
    assert rows == expected
    assert [(r["handle"], r["name"]) for r in rows] == [
        ("benito", display_name(profile)),
        ("mapped", "Tree"),
        ("plain", "Plain School"),
        ("quiet", None),
    ]


def _with_env(env: dict[str, str], *args: str, data: Path) -> str:
    import os

    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        return amity(*args, data=data).stdout
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def test_a_school_whose_keys_vanished_is_no_actor_never_a_500(
    school: Node, profile: dict[str, Any], served_app: Any
) -> None:
    school.add_school("vanishing", profile)
    client = await served_app(school)
    assert (await client.get("/actors/vanishing")).status == 200
    # Another process is removing it: its keys are gone before this one sees the row change.
    for path in school.config.keys_dir.glob("vanishing.*"):
        path.unlink()
    for path in ("/actors/vanishing", "/actors/vanishing/profile", "/actors/vanishing/outbox"):
        assert (await client.get(path)).status == 404, path
    school.store.db.execute("UPDATE accounts SET removed_at = '2026-01-01T00:00:00Z'")
    school.store.db.execute("UPDATE accounts SET removed_at = NULL WHERE handle = 'benito'")
    assert (await client.get("/actors/vanishing")).status == 410
    finger = await client.get("/.well-known/webfinger?resource=acct:vanishing@127.0.0.1:8080")
    assert finger.status == 410
    assert (await client.post("/actors/vanishing/inbox", data=b"{}")).status == 404
    assert (await client.get("/actors/benito")).status == 200


def test_hosted_schools_are_matched_and_paired_like_any_other(tmp_path: Path) -> None:
    from amity.node import matching, pairing
    from amity.node.node import init_node

    with init_node(
        tmp_path / "ministry", handle="ministry", base_url="http://127.0.0.1:8093", kind="authority"
    ) as ministry:
        mx = ministry.add_school("oaxaca", {**EXAMPLE_PROFILE, "pairing_rounds": True})
        ke = ministry.add_school(
            "nairobi",
            {
                **EXAMPLE_PROFILE,
                "country": "KE",
                "timezone": "Africa/Nairobi",
                "languages": {"instruction": ["en"], "learning": ["es"]},
                "pairing_rounds": True,
            },
        )
        me = matching.own_school(mx)
        found = matching.ranked(mx, me, matching.default_week(mx), 10)
        assert [m.other.actor for m in found] == [ke.urls.id]  # not itself
        assert {s.actor for s in pairing.round_input(ministry, []).schools} == {
            mx.urls.id,
            ke.urls.id,
        }
