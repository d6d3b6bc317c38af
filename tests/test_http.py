"""The HTTP surface of one node, through the real aiohttp application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from amity.node.app import create_app
from amity.node.app_state import DB
from amity.node.node import Node, init_node
from amity.protocol.discovery import NODEINFO_CONTENT_TYPE
from amity.protocol.profile_document import profile_from_document
from amity.protocol.proofs import verify_with_actor

AP = "application/activity+json"
LD = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ACTOR = "http://127.0.0.1:8080/actors/benito"


@pytest.fixture
async def client(aiohttp_client: Any, school: Node) -> AsyncIterator[TestClient]:
    client = await aiohttp_client(create_app(school))
    yield client
    await client.close()  # the app stops before the node's database closes


async def test_webfinger_finds_the_actor_by_handle_and_url(client: TestClient) -> None:
    for resource in ("acct:benito@127.0.0.1:8080", ACTOR):
        response = await client.get("/.well-known/webfinger", params={"resource": resource})
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/jrd+json"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        jrd = await response.json(content_type=None)
        assert jrd["subject"] == "acct:benito@127.0.0.1:8080"
        self_links = [link for link in jrd["links"] if link["rel"] == "self"]
        assert self_links == [{"rel": "self", "type": AP, "href": ACTOR}]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"resource": "acct:nobody@127.0.0.1:8080"}, 404),
        ({"resource": "acct:benito@other.example"}, 404),
        ({"resource": "http://127.0.0.1:8080/actors/nobody"}, 404),
        ({"resource": "acct:not-a-handle"}, 400),
        ({}, 400),
    ],
)
async def test_webfinger_refuses_unknown_and_malformed(
    client: TestClient, params: dict[str, str], status: int
) -> None:
    response = await client.get("/.well-known/webfinger", params=params)
    assert response.status == status
    assert "error" in await response.json()


async def test_nodeinfo_discovery_and_document(client: TestClient) -> None:
    links = await (await client.get("/.well-known/nodeinfo")).json()
    [link] = links["links"]
    assert link["rel"] == "http://nodeinfo.diaspora.software/ns/schema/2.1"
    assert link["href"] == "http://127.0.0.1:8080/nodeinfo/2.1"
    response = await client.get("/nodeinfo/2.1")
    assert response.headers["Content-Type"] == NODEINFO_CONTENT_TYPE
    info = await response.json(content_type=None)
    assert info["version"] == "2.1"
    assert info["software"]["name"] == "amity"
    assert info["protocols"] == ["activitypub"]
    assert info["metadata"]["kind"] == "school"
    assert info["usage"]["users"]["total"] == 1


@pytest.mark.parametrize(("accept", "content_type"), [(AP, AP), (LD, LD), (None, AP), ("*/*", AP)])
async def test_actor_is_json_for_activitypub_clients(
    client: TestClient, accept: str | None, content_type: str
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = await client.get("/actors/benito", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Vary"] == "Accept"
    actor = await response.json(content_type=None)
    assert actor["id"] == ACTOR
    assert actor["type"] == "Organization"
    assert actor["preferredUsername"] == "benito"
    assert actor["name"] == "Escuela Primaria Benito Juárez"
    assert actor["inbox"] == ACTOR + "/inbox"
    assert actor["outbox"] == ACTOR + "/outbox"
    assert actor["followers"] == ACTOR + "/followers"
    assert actor["following"] == ACTOR + "/following"
    assert actor["endpoints"]["sharedInbox"] == "http://127.0.0.1:8080/inbox"
    assert actor["publicKey"]["id"] == ACTOR + "#main-key"
    assert actor["publicKey"]["owner"] == ACTOR
    assert actor["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
    [method] = actor["assertionMethod"]
    assert method["type"] == "Multikey"
    assert method["controller"] == ACTOR
    assert method["publicKeyMultibase"].startswith("z6Mk")
    assert actor["schoolProfile"] == ACTOR + "/profile"


async def test_browser_gets_a_public_html_page(client: TestClient) -> None:
    response = await client.get("/actors/benito", headers={"Accept": BROWSER})
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert "<h1>Escuela Primaria Benito Juárez</h1>" in page
    assert "Oaxaca, Mexico" in page
    assert "Spanish" in page
    assert "@benito@127.0.0.1:8080" in page


async def test_the_page_of_a_profile_without_optional_fields(
    aiohttp_client: Any, school: Node
) -> None:
    """No languages being learned, no subjects, no terms: all optional, so the page shows
    a dash for each instead of failing."""
    stored = school.profile()
    assert stored is not None
    bare = {k: v for k, v in stored.data.items() if k not in ("subjects", "terms")}
    bare["languages"] = {"instruction": ["es"]}
    school.publish_profile(bare)
    client = await aiohttp_client(create_app(school))
    response = await client.get("/actors/benito", headers={"Accept": BROWSER})
    assert response.status == 200
    page = await response.text()
    assert "Spanish" in page
    await client.close()


async def test_profile_is_signed_and_verifies_from_the_actor_alone(client: TestClient) -> None:
    actor = await (await client.get("/actors/benito", headers={"Accept": AP})).json(
        content_type=None
    )
    response = await client.get("/actors/benito/profile", headers={"Accept": AP})
    assert response.status == 200
    assert response.headers["Content-Type"] == AP
    document = await response.json(content_type=None)
    assert document["type"] == "SchoolProfile"
    assert document["attributedTo"] == ACTOR
    info = verify_with_actor(document, actor)
    assert info.verification_method == ACTOR + "#ed25519-key"
    assert profile_from_document(document)["country"] == "MX"


async def test_profile_in_a_browser_leads_to_the_page(client: TestClient) -> None:
    response = await client.get(
        "/actors/benito/profile", headers={"Accept": BROWSER}, allow_redirects=False
    )
    assert response.status == 302
    assert response.headers["Location"] == ACTOR


@pytest.mark.parametrize(
    "path",
    ["/actors/nobody", "/actors/nobody/profile", "/actors/nobody/outbox", "/nothing-here"],
)
async def test_unknown_actors_and_resources_are_404(client: TestClient, path: str) -> None:
    response = await client.get(path, headers={"Accept": AP})
    assert response.status == 404
    assert "error" in await response.json()


@pytest.mark.parametrize("name", ["outbox", "followers", "following"])
async def test_collections_are_ordered_collections(client: TestClient, name: str) -> None:
    response = await client.get(f"/actors/benito/{name}", headers={"Accept": AP})
    assert response.status == 200
    collection = await response.json(content_type=None)
    assert collection["id"] == f"{ACTOR}/{name}"
    assert collection["type"] == "OrderedCollection"
    first_path = collection["first"].removeprefix("http://127.0.0.1:8080")
    first = await (await client.get(first_path, headers={"Accept": AP})).json(content_type=None)
    assert first["type"] == "OrderedCollectionPage"
    assert first["partOf"] == f"{ACTOR}/{name}"
    assert collection["totalItems"] == len(first["orderedItems"])
    # init published the profile once: the outbox holds its Update; nobody follows yet.
    assert collection["totalItems"] == (1 if name == "outbox" else 0)
    bad = await client.get(f"/actors/benito/{name}?page=0", headers={"Accept": AP})
    assert bad.status == 400


async def test_school_without_profile_has_no_profile_link(served_app: Any, tmp_path: Any) -> None:
    client = await served_app(
        init_node(tmp_path / "n", handle="newschool", base_url="http://127.0.0.1:9", kind="school")
    )
    actor = await (await client.get("/actors/newschool")).json(content_type=None)
    assert "schoolProfile" not in actor
    assert actor["name"] == "newschool"
    assert (await client.get("/actors/newschool/profile")).status == 404


@pytest.mark.parametrize(("kind", "actor_type"), [("hub", "Service"), ("authority", "Group")])
async def test_hub_and_authority_have_their_own_actor_types(
    served_app: Any, tmp_path: Any, kind: str, actor_type: str
) -> None:
    client = await served_app(
        init_node(tmp_path / kind, handle=kind, base_url="http://127.0.0.1:9", kind=kind)
    )
    actor = await (await client.get(f"/actors/{kind}")).json(content_type=None)
    assert actor["type"] == actor_type
    assert actor["nodeKind"] == kind
    info = await (await client.get("/nodeinfo/2.1")).json(content_type=None)
    assert info["metadata"]["kind"] == kind


async def test_profile_change_is_live_with_new_updated_and_proof(
    client: TestClient, school: Node, profile: dict[str, Any]
) -> None:
    first = await (await client.get("/actors/benito/profile")).json(content_type=None)
    profile["capacity"] = 5
    # On the app's database thread: the node's connection is not shared between threads.
    await client.server.app[DB](lambda _db: school.publish_profile(profile))
    second = await (await client.get("/actors/benito/profile")).json(content_type=None)
    assert second["capacity"] == 5
    assert second["updated"] > first["updated"]
    assert second["published"] == first["published"]
    assert second["proof"]["proofValue"] != first["proof"]["proofValue"]
    actor = await (await client.get("/actors/benito")).json(content_type=None)
    verify_with_actor(second, actor)
