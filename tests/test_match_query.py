"""The match query on real served nodes: a hub ranks its directory for a school that signed
the query; `amity match --via` and the followed hubs' fallback check every profile against
its author's key and match it here."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ed25519
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from amity.federation.client import FederationClient
from amity.federation.errors import FetchFailed
from amity.federation.match_query import query_url
from amity.node.node import Node

from .helpers import amity, free_port, make_school, query, wait_until

PRIVATE = "--allow-private-network"
WEEK = "2026-12-14"
# The example school is Benito Juárez (MX, teaches es, learns en, Mexico City 08:00-14:00,
# i.e. 14:00-20:00 UTC in December, in term until Friday 2026-12-18).
LEEDS = {
    "name": "Leeds Primary",
    "country": "GB",
    "timezone": "Europe/London",
    "languages": {"instruction": ["en"], "learning": ["es"]},
    "school_hours": ["08:00", "16:00"],
    "terms": [],
}
LUMIERE = {
    "name": "Collège Lumière",
    "country": "FR",
    "timezone": "Europe/Paris",
    "languages": {"instruction": ["fr"], "learning": ["en", "es"]},
    "school_hours": ["08:00", "16:00"],
    "terms": [],
}


def _make_hub(tmp_path: Path, port: int, name: str = "hub", kind: str = "hub") -> Path:
    data = tmp_path / name
    amity(
        "init",
        "--name",
        name,
        "--kind",
        kind,
        "--base-url",
        f"http://127.0.0.1:{port}",
        data=data,
    )
    with (data / "amity.toml").open("a") as config:
        config.write("\n[federation]\nfirst_retry_seconds = 1\n")
    return data


def _listed(data: Path) -> set[str]:
    rows = query(data, "SELECT actor FROM directory WHERE deleted_at IS NULL")
    return {row[0] for row in rows}


def _accepted(data: Path, actor: str) -> bool:
    rows = query(data, "SELECT state FROM following WHERE actor = ?", actor)
    return rows == [("accepted",)]


def _get(data: Path, url: str, signed: bool = True) -> tuple[int | None, Any]:
    """GET `url` signed with the key of the node in `data`: (None, JSON) or (status, reason)."""

    async def fetch() -> Any:
        with Node.open(data) as node:
            signer = node.signer() if signed else None
            async with FederationClient(allow_private_network=True, clock=node.clock) as client:
                return await client.get_json(url, signer, accept="application/json")

    try:
        return None, asyncio.run(fetch())
    except FetchFailed as exc:
        return exc.status, str(exc)


@dataclass
class _Message:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


def _get_rfc9421(data: Path, url: str, sent_to: str | None = None) -> tuple[int, Any]:
    """GET `url` signed by RFC 9421 with the Ed25519 key of the node in `data` (sent to
    `sent_to` instead, if given)."""
    with Node.open(data) as node:
        key = ed25519.Ed25519PrivateKey.from_private_bytes(node.keys.ed25519_seed)
        key_id = node.urls.ed25519_key_id
    message = _Message("GET", url)
    HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: key}),
    ).sign(message, key_id=key_id, covered_component_ids=("@method", "@target-uri"))
    request = urllib.request.Request(sent_to or url, headers=message.headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def region(tmp_path: Path, served: Any) -> dict[str, Any]:
    """A hub; Benito (MX) and Leeds (GB) follow it; Lumière (FR) only knows its address."""
    ports = {name: free_port() for name in ("hub", "benito", "leeds", "lumiere")}
    data = {
        "hub": _make_hub(tmp_path, ports["hub"]),
        "benito": make_school(tmp_path, "benito", ports["benito"]),
        "leeds": make_school(tmp_path, "leeds", ports["leeds"], **LEEDS),
        "lumiere": make_school(tmp_path, "lumiere", ports["lumiere"], **LUMIERE),
    }
    nodes = {name: served(path, ports[name], PRIVATE) for name, path in data.items()}
    actor = {name: f"http://127.0.0.1:{port}/actors/{name}" for name, port in ports.items()}
    for name in ("benito", "leeds"):
        amity("follow", f"hub@127.0.0.1:{ports['hub']}", PRIVATE, data=data[name])
    wait_until(lambda: _listed(data["hub"]) >= {actor["benito"], actor["leeds"]}, timeout=30)
    return {"data": data, "actor": actor, "nodes": nodes, "ports": ports}


def test_a_hub_answers_a_signed_match_query_and_refuses_the_rest(region: dict[str, Any]) -> None:
    data, actor = region["data"], region["actor"]
    hub = actor["hub"]
    monday = date.fromisoformat(WEEK)

    # Lumière is not in the hub's directory: the hub fetches its signed profile and checks it.
    status, answer = _get(data["lumiere"], query_url(hub, actor["lumiere"], 10, monday))
    assert status is None, answer
    assert (answer["actor"], answer["week"]) == (actor["lumiere"], WEEK)
    found = {item["actor"]: item for item in answer["candidates"]}
    assert set(found) == {actor["benito"], actor["leeds"]}
    held = json.loads(region["nodes"]["leeds"].get("/actors/leeds/profile")[2])
    assert found[actor["leeds"]]["profile"] == held  # as signed, proof included
    assert "proof" in held
    assert found[actor["leeds"]]["score"] > 0 and found[actor["leeds"]]["reasons"]
    # Benito is listed: its listing is the input. Leeds (tandem) is its one candidate.
    status, answer = _get(data["benito"], query_url(hub, actor["benito"], 1, monday))
    assert [item["actor"] for item in answer["candidates"]] == [actor["leeds"]]
    # The same query signed by RFC 9421 with Benito's Ed25519 key.
    url = query_url(hub, actor["benito"], 1, monday)
    status, signed = _get_rfc9421(data["benito"], url)
    assert (status, signed) == (200, answer)
    # Sent to another URL than the one signed: refused.
    assert _get_rfc9421(data["benito"], url, url.replace("limit=1", "limit=2"))[0] == 401

    good = query_url(hub, actor["lumiere"], 10, monday)
    assert _get(data["lumiere"], good, signed=False) == (
        401,
        f"the server at {good} answered HTTP 401: request is not signed",
    )
    status, reason = _get(data["lumiere"], query_url(hub, actor["benito"], 10, monday))
    assert status == 403
    assert reason.endswith(f"the query is signed by {actor['lumiere']}, not by the school it names")
    base = f"http://127.0.0.1:{region['ports']['hub']}/match"
    for params, words in [
        (f"actor={actor['lumiere']}&limit=0", "limit must be a whole number from 1 to 50"),
        (f"actor={actor['lumiere']}&limit=51", "limit must be a whole number from 1 to 50"),
        (f"actor={actor['lumiere']}&limit=ten", "limit must be a whole number from 1 to 50"),
        (f"actor={actor['lumiere']}&week=2026-12-15", "week must be a Monday, as YYYY-MM-DD"),
        (f"actor={actor['lumiere']}&week=soon", "week must be a Monday, as YYYY-MM-DD"),
        ("limit=5", "actor is required: the querying school's actor URL"),
        ("actor=ftp://example.org/a", "actor must be an http(s) actor URL"),
        ("actor=http://[::1/a", "actor must be an http(s) actor URL"),
        (f"actor=http://a.example/{'a' * 2100}", "actor must be an http(s) actor URL"),
        (f"actor={actor['lumiere']}&limit=%D9%A3", "limit must be a whole number from 1 to 50"),
        (f"actor={actor['lumiere']}&week=2026-W51-1", "week must be a Monday, as YYYY-MM-DD"),
        (f"actor={actor['lumiere']}&week=9999-12-27", "week must be within ten years of "),
        (f"actor={actor['lumiere']}&week=0001-01-01", "week must be within ten years of "),
    ]:
        status, reason = _get(data["lumiere"], f"{base}?{params}")
        assert status == 400 and words in reason, (params, reason)
    # A querier without a school profile (the hub itself, here) gets a reason.
    status, reason = _get(data["hub"], query_url(hub, hub, 10, monday))
    assert status == 400 and reason.endswith(f"{hub} publishes no school profile"), reason
    # A school answers no match queries.
    school = f"http://127.0.0.1:{region['ports']['leeds']}/match?actor={actor['lumiere']}"
    assert _get(data["lumiere"], school)[0] == 404


def test_match_via_a_hub_shows_schools_beyond_the_own_directory(region: dict[str, Any]) -> None:
    data, actor = region["data"], region["actor"]
    lumiere = data["lumiere"]
    assert _listed(lumiere) == {actor["lumiere"]}  # its own listing: it follows no one
    hub = f"hub@127.0.0.1:{region['ports']['hub']}"
    result = amity("match", "--json", "--week", WEEK, "--via", hub, PRIVATE, data=lumiere)
    found = json.loads(result.stdout)
    assert result.stderr == ""
    assert [item["actor"] for item in found] == [actor["leeds"], actor["benito"]]
    leeds, benito = found
    # Computed here: Paris 08:00-16:00 (07:00-15:00 UTC) against London 08:00-16:00 UTC:
    # 7 hours a day, Monday to Friday.
    assert (leeds["live_minutes"], len(leeds["windows"])) == (2100, 5)
    assert leeds["windows"][0] == {
        "start": "2026-12-14T08:00:00Z",
        "end": "2026-12-14T15:00:00Z",
        "local_self": {"start": "2026-12-14T09:00:00+01:00", "end": "2026-12-14T16:00:00+01:00"},
        "local_partner": {
            "start": "2026-12-14T08:00:00+00:00",
            "end": "2026-12-14T15:00:00+00:00",
        },
    }
    assert leeds["working_languages"] == ["en"]
    # Against Mexico City 14:00-20:00 UTC: one hour a day, to the end of Benito's term.
    assert (benito["live_minutes"], benito["working_languages"]) == (300, ["es"])
    assert _listed(lumiere) == {actor["lumiere"]}  # the suggestions are not kept
    limited = amity("match", "--json", "--limit", "1", "--via", hub, PRIVATE, data=lumiere)
    assert [item["actor"] for item in json.loads(limited.stdout)] == [actor["leeds"]]
    text = amity("match", "--week", WEEK, "--via", hub, PRIVATE, data=lumiere).stdout
    assert "1. Leeds Primary  [GB]  score " in text

    refused = amity("match", "--via", hub, data=lumiere, check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: http://127.0.0.1:")
    assert "add --allow-private-network" in refused.stderr
    school = f"leeds@127.0.0.1:{region['ports']['leeds']}"
    refused = amity("match", "--via", school, PRIVATE, data=lumiere, check=False)
    assert refused.stderr == (
        f"error: --via {school}: is a school, not a hub; name a hub or an authority\n"
    )


class FakeHub:
    """A hub that answers every match query with the candidates it is given, served by
    this test on 127.0.0.1 (in a thread of its own: `amity` runs as a subprocess)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.actor = f"http://127.0.0.1:{self.port}/actors/fakehub"
        self.candidates: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    async def _actor(self, _request: web.Request) -> web.Response:
        document = {"id": self.actor, "type": "Service", "nodeKind": "hub"}
        return web.json_response(document, content_type="application/activity+json")

    async def _match(self, _request: web.Request) -> web.Response:
        return web.json_response({"candidates": self.candidates})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/actors/fakehub", self._actor)
        app.router.add_get("/match", self._match)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def __enter__(self) -> FakeHub:
        started = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        started.result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        yield hub


def test_a_forged_profile_in_an_answer_is_dropped_and_the_genuine_one_kept(
    tmp_path: Path, served: Any, fake_hub: FakeHub
) -> None:
    ports = {name: free_port() for name in ("benito", "leeds", "lumiere")}
    benito = served(make_school(tmp_path, "benito", ports["benito"]), ports["benito"], PRIVATE)
    leeds = served(make_school(tmp_path, "leeds", ports["leeds"], **LEEDS), ports["leeds"], PRIVATE)
    lumiere = make_school(tmp_path, "lumiere", ports["lumiere"], **LUMIERE)
    genuine = json.loads(leeds.get("/actors/leeds/profile")[2])
    forged = json.loads(benito.get("/actors/benito/profile")[2])
    forged["capacity"] = 9  # changed after signing: the proof no longer holds
    fake_hub.candidates = [
        {"actor": forged["attributedTo"], "score": 1000, "profile": forged},
        {"actor": genuine["attributedTo"], "score": 1, "profile": genuine},
        {"actor": "x", "profile": {"type": "Note"}},
    ]
    result = amity(
        "match", "--json", "--week", WEEK, "--via", fake_hub.actor, PRIVATE, data=lumiere
    )
    assert [item["actor"] for item in json.loads(result.stdout)] == [genuine["attributedTo"]]
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "warning: dropped 2 suggested profile(s) whose proof or content did not check out:"
    )
    assert lines[1] == (
        f"  from {fake_hub.actor}: {forged['attributedTo']}: integrity proof does not verify"
    )
    assert lines[2] == f"  from {fake_hub.actor}: a candidate: not a school profile with its author"


def test_a_school_with_a_short_directory_asks_the_hubs_it_follows(
    region: dict[str, Any], tmp_path: Path, served: Any
) -> None:
    data, actor, nodes = region["data"], region["actor"], region["nodes"]
    benito = data["benito"]
    wait_until(lambda: actor["leeds"] in _listed(benito), timeout=30)
    # Benito stops serving; Lumière, endorsed by a ministry Benito trusts, then joins the
    # hub, so only the hub lists it.
    nodes["benito"].stop()
    port = free_port()
    ministry = _make_hub(tmp_path, port, "ministry", "authority")
    served(ministry, port, PRIVATE)
    amity("endorse", f"lumiere@127.0.0.1:{region['ports']['lumiere']}", PRIVATE, data=ministry)
    amity("trust", f"ministry@127.0.0.1:{port}", PRIVATE, data=benito)
    amity("follow", f"hub@127.0.0.1:{region['ports']['hub']}", PRIVATE, data=data["lumiere"])

    def endorsed_at_hub() -> bool:
        rows = query(
            data["hub"], "SELECT document FROM directory WHERE actor = ?", actor["lumiere"]
        )
        return bool(rows and rows[0][0] and json.loads(rows[0][0]).get("endorsements"))

    wait_until(endorsed_at_hub, timeout=30)
    assert actor["lumiere"] not in _listed(benito)

    # One local candidate, fewer than --limit 10: the hub is asked too (its copy of Leeds
    # is not shown twice). The hub knows Benito's key from its listing.
    result = amity("match", "--json", "--week", WEEK, PRIVATE, data=benito)
    found = json.loads(result.stdout)
    assert result.stderr == ""
    assert [item["actor"] for item in found] == [actor["leeds"], actor["lumiere"]]
    assert found[1]["live_minutes"] == 300  # 14:00-15:00 UTC, Monday to Friday
    # The endorsement it carries is checked against the ministry's key and counts.
    assert found[1]["score_parts"]["endorsed"] == 10.0
    # Enough local candidates for --limit 1: no hub is asked.
    alone = amity("match", "--json", "--limit", "1", "--week", WEEK, PRIVATE, data=benito)
    assert [item["actor"] for item in json.loads(alone.stdout)] == [actor["leeds"]]

    nodes["hub"].stop()
    result = amity("match", "--json", "--week", WEEK, PRIVATE, data=benito)
    assert [item["actor"] for item in json.loads(result.stdout)] == [actor["leeds"]]
    assert result.stderr.startswith(f"warning: hub {actor['hub']} gave no suggestions: ")
    assert "connection refused" in result.stderr
    assert len(result.stderr.splitlines()) == 1
