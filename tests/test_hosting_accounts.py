"""Hosted school accounts on one node: added, listed, opened by handle, each with its own
keys and signed profile; the node's first account stays the default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from amity.node.errors import NodeError
from amity.node.node import Node
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
