"""`amity directory`: filters, free text, stale listings, and the directory endpoint's pages."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from amity.cli.main import cli
from amity.federation import directory
from amity.node.app_state import DB
from amity.node.node import Node
from amity.protocol.profile import validate_profile
from amity.protocol.profile_document import profile_document
from amity.protocol.proofs import ProofInfo

from .helpers import EXAMPLE_PROFILE

SCHOOLS = [
    # handle, changes to the example profile, days since its last update
    (
        "nairobi",
        {
            "name": "Nairobi Hill School",
            "country": "KE",
            "timezone": "Africa/Nairobi",
            "languages": {"instruction": ["en", "sw"], "learning": ["fr"]},
            "ages": [12, 15],
            "subjects": ["science", "music"],
            "description": "Coastal ecology club and a choir.",
        },
        8,
    ),
    (
        "lyon",
        {
            "name": "Collège Lumière",
            "country": "FR",
            "timezone": "Europe/Paris",
            "languages": {"instruction": ["fr"], "learning": ["en", "es"]},
            "ages": [11, 15],
            "subjects": ["history"],
            "modes": ["async"],
            "description": "Cinema and history projects.",
        },
        3,
    ),
    (
        "old",
        {
            "name": "Forgotten Academy",
            "country": "KE",
            "timezone": "Africa/Nairobi",
            "description": "Nobody has heard from us.",
        },
        180,
    ),
]


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _add(node: Node, handle: str, changes: dict[str, Any], days: int) -> None:
    updated = _days_ago(days)
    actor = f"https://{handle}.example/actors/{handle}"
    data = validate_profile({**EXAMPLE_PROFILE, **changes})
    document = profile_document(
        data, profile_id=f"{actor}/profile", actor_id=actor, published=updated, updated=updated
    )
    document["proof"] = {"type": "DataIntegrityProof"}  # the directory trusts its callers
    checked = ProofInfo(f"{actor}#ed25519-key", updated, bytes(32))
    directory.store_profile(node.store.db, document, time.time(), [], checked, time.time())


@pytest.fixture
def node_with_listings(school: Node) -> Node:
    for handle, changes, days in SCHOOLS:
        _add(school, handle, changes, days)
    return school


def _directory(node: Node, *args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(
        cli, ["directory", "--json", "--data", str(node.config.data_dir), *args]
    )
    assert result.exit_code == 0, result.stderr
    return list(json.loads(result.stdout))


def _names(listings: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in listings]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # The node's own school (Escuela Primaria Benito Juárez) is never listed.
        ((), ["Collège Lumière", "Nairobi Hill School"]),
        (("--country", "ke"), ["Nairobi Hill School"]),
        (("--language", "fr"), ["Collège Lumière", "Nairobi Hill School"]),
        (("--language", "sw", "--age", "13"), ["Nairobi Hill School"]),
        (("--age", "9"), []),
        (("--subject", "history"), ["Collège Lumière"]),
        (("--mode", "live", "--language", "en"), ["Nairobi Hill School"]),  # Lumière: async
        (("--query", "choir"), ["Nairobi Hill School"]),
        (("--query", "cinéma"), ["Collège Lumière"]),  # accents do not matter
        (("--query", "cinema histor"), ["Collège Lumière"]),
        (("--query", 'water" OR "x'), []),
        (("--all", "--country", "KE"), ["Forgotten Academy", "Nairobi Hill School"]),
    ],
)
def test_filters_and_free_text(
    node_with_listings: Node, args: tuple[str, ...], expected: list[str]
) -> None:
    assert _names(_directory(node_with_listings, *args)) == expected


def test_json_listing_fields_and_stale_flag(node_with_listings: Node) -> None:
    listings = {item["name"]: item for item in _directory(node_with_listings, "--all")}
    nairobi = listings["Nairobi Hill School"]
    assert nairobi["actor"] == "https://nairobi.example/actors/nairobi"
    assert nairobi["languages"] == {"instruction": ["en", "sw"], "learning": ["fr"]}
    assert nairobi["ages"] == [12, 15]
    assert nairobi["last_active"] == nairobi["updated"]
    assert nairobi["updated"][:10] == _days_ago(8)[:10]
    assert nairobi["stale"] is False
    assert listings["Forgotten Academy"]["stale"] is True  # 180 days without a refresh


def test_human_output_and_empty_directory(node_with_listings: Node, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["directory", "--data", str(node_with_listings.config.data_dir), "--country", "FR"]
    )
    assert "Collège Lumière  [FR]" in result.stdout
    assert "teaches in fr, learning en/es" in result.stdout
    empty = CliRunner().invoke(
        cli, ["directory", "--data", str(node_with_listings.config.data_dir), "--country", "JP"]
    )
    assert "No schools found" in empty.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--country", "Kenya"),
            "error: Invalid value for '--country': 'Kenya' is a country name, not an ISO 3166-1 "
            "alpha-2 code; did you mean KE (Kenya)? (see: amity directory --help)",
        ),
        (
            ("--language", "English"),
            "error: Invalid value for '--language': 'English' is a language name, not a BCP 47 "
            "tag; did you mean en (English)? (see: amity directory --help)",
        ),
        (
            ("--subject", "Science"),
            "error: Invalid value for '--subject': 'Science' is not a subject code; "
            "did you mean science? (see: amity directory --help)",
        ),
    ],
)
def test_filters_say_what_was_meant(
    node_with_listings: Node, args: tuple[str, ...], message: str
) -> None:
    result = CliRunner().invoke(
        cli,
        ["directory", "--data", str(node_with_listings.config.data_dir), *args],
        prog_name="amity",
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == message
    assert result.stdout == ""


def test_filters_take_codes_in_any_case_their_standard_ignores(node_with_listings: Node) -> None:
    assert _names(_directory(node_with_listings, "--country", "ke", "--language", "EN")) == [
        "Nairobi Hill School"
    ]


async def test_directory_endpoint_pages_by_cursor(
    node_with_listings: Node, served_app: Any
) -> None:
    client = await served_app(node_with_listings)
    root = await (await client.get("/directory")).json(content_type=None)
    assert root["type"] == "OrderedCollection"
    assert root["totalItems"] == 4
    page = await (await client.get("/directory?since=0")).json(content_type=None)
    assert [item["type"] for item in page["orderedItems"]] == ["SchoolProfile"] * 4
    cursor = page["cursor"]
    assert "next" not in page
    # Only what changed after the cursor: a deletion, as a tombstone.
    deleted = _days_ago(1)
    await client.server.app[DB](  # on the app's database thread, which owns the connection
        lambda db: directory.remove_profile(
            db, "https://lyon.example/actors/lyon", deleted, time.time()
        )
    )
    later = await (await client.get(f"/directory?since={cursor}")).json(content_type=None)
    [tombstone] = later["orderedItems"]
    assert tombstone == {
        "type": "Tombstone",
        "id": "https://lyon.example/actors/lyon/profile",
        "formerType": "SchoolProfile",
        "attributedTo": "https://lyon.example/actors/lyon",
        "deleted": deleted,
    }
    assert (await client.get("/directory?since=x")).status == 400
