"""Text that cannot spoof: bidi controls and invisible characters never reach a display or
a search, whoever signed them; pages carry headers that keep browsers from misreading or
framing them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from amity.cli.main import cli
from amity.node.clock import format_time
from amity.node.node import Node
from amity.protocol.profile import validate_profile
from amity.protocol.profile_document import profile_document
from amity.protocol.proofs import sign_document
from amity.protocol.text import clean_text

from .helpers import EXAMPLE_PROFILE
from .inprocess import post_signed, start_node

RLO, PDF, ZWSP, LRI, PDI = "\u202e", "\u202c", "\u200b", "\u2066", "\u2069"
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want", with a ZWNJ
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (f"Evil{RLO}loohcS{PDF}", "EvilloohcS"),
        (f"Sch{ZWSP}ool", "School"),
        (f"{LRI}name{PDI}\u200e\u200f\u061c", "name"),
        ("\ufeffA\u2060B\u00adC", "ABC"),
        ("a\u200cb\u200dc", "abc"),  # joiners between Latin letters only hide a split
        (PERSIAN, PERSIAN),  # ZWNJ chooses the unjoined form
        ("क्\u200dष", "क्\u200dष"),  # Devanagari: ZWJ after a virama
        ("👨\u200d👩\u200d👧", "👨\u200d👩\u200d👧"),  # an emoji family
        ("red\x1b[31m alert\x07", "red[31m alert"),  # no terminal escapes
        ("two\nlines\tand tab", "two lines and tab"),
        ("\u3164", ""),  # a blank letter
        ("a\ud800b", "ab"),  # a lone surrogate JSON allows
        ("e\u0301cole", "école"),  # NFC
    ],
)
def test_clean_text(raw: str, shown: str) -> None:
    assert clean_text(raw) == shown


def test_clean_text_keeps_line_breaks_when_asked() -> None:
    assert clean_text("one\r\ntwo\u2028three\x85four", multiline=True) == "one\ntwo\nthree\nfour"
    assert clean_text("one\r\ntwo") == "one two"


def _signed_profile(node: Node, changes: dict[str, Any]) -> dict[str, Any]:
    """A profile the node signs as it is, bypassing import (as a peer of an earlier
    version, or a hostile one, could publish it)."""
    updated = format_time(datetime.now(UTC) + timedelta(seconds=5))
    data = {**validate_profile(EXAMPLE_PROFILE), **changes}
    document = profile_document(
        data,
        profile_id=node.urls.profile,
        actor_id=node.urls.id,
        published=updated,
        updated=updated,
    )
    return sign_document(document, node.keys.ed25519_seed, node.urls.ed25519_key_id, updated)


async def test_a_peers_signed_bidi_name_is_shown_and_searched_clean(tmp_path: Path) -> None:
    peer = await start_node(tmp_path, "peer")
    viewer = await start_node(tmp_path, "viewer")
    try:
        signed = _signed_profile(
            peer.node,
            {
                "name": f"Evil{RLO}loohcS{ZWSP} Academy",
                "locality": f"Hid{ZWSP}den",
                "description": f"Spoof{LRI}ed",
            },
        )
        update = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{peer.actor}/activities/spoof",
            "type": "Update",
            "actor": peer.actor,
            "object": signed,
        }
        async with aiohttp.ClientSession() as session:
            status, _ = await post_signed(session, f"{viewer.base}/inbox", update, peer.node)
            assert status == 202

            async def listed() -> bool:
                db = viewer.node.store.db
                return await viewer.run(
                    lambda: (
                        db.execute(
                            "SELECT 1 FROM directory WHERE actor = ?", [peer.actor]
                        ).fetchone()
                        is not None
                    )
                )

            for _ in range(200):
                if await listed():
                    break
                await asyncio.sleep(0.05)
            # The signed document is relayed as its author signed it (or its proof breaks).
            async with session.get(f"{viewer.base}/directory?since=0") as response:
                page = await response.json(content_type=None)
        relayed = [d for d in page["orderedItems"] if d.get("attributedTo") == peer.actor]
        assert relayed[0]["name"] == signed["name"]
    finally:
        for live in (peer, viewer):
            await live.server.close()
        peer.node.close()
        viewer.node.close()

    data_dir = str(tmp_path / "viewer")
    runner = CliRunner()
    listing = json.loads(runner.invoke(cli, ["directory", "--json", "--data", data_dir]).stdout)
    shown = next(item for item in listing if item["actor"] == signed["attributedTo"])
    assert shown["name"] == "EvilloohcS Academy"
    assert shown["locality"] == "Hidden"
    assert shown["description"] == "Spoofed"
    text = runner.invoke(cli, ["directory", "--data", data_dir]).stdout
    assert "EvilloohcS Academy  [MX]" in text
    assert not re.search("[\u200b-\u200f\u202a-\u202e\u2066-\u2069]", text)
    # Search runs on the cleaned text: the split word is found whole.
    found = json.loads(
        runner.invoke(cli, ["directory", "--json", "--query", "hidden", "--data", data_dir]).stdout
    )
    assert [item["actor"] for item in found] == [signed["attributedTo"]]


def _hash(style: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(style.encode()).digest()).decode() + "'"


async def test_pages_and_json_carry_security_headers(school: Node, served_app: Any) -> None:
    # A profile stored before cleaning existed: the page shows its name clean anyway.
    school.publish_profile({**school.profile().data, "name": f"Evil{RLO}loohcS"})  # type: ignore[union-attr]
    client = await served_app(school)
    page = await client.get("/actors/benito", headers={"Accept": BROWSER})
    assert page.status == 200
    html = await page.text()
    assert "<h1>EvilloohcS</h1>" in html and RLO not in html
    policy = page.headers["Content-Security-Policy"]
    assert policy.startswith("default-src 'none'; style-src 'sha256-")
    for directive in ("img-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in policy
    assert "form-action 'self'" in policy
    # The policy allows exactly the page's own inline style.
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    assert styles and all(_hash(style) in policy for style in styles)
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Frame-Options"] == "DENY"

    for path in ("/actors/benito", "/.well-known/nodeinfo", "/actors/nobody", "/no/such/path"):
        response = await client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "no-referrer", path
        assert response.headers["Content-Security-Policy"] == (
            "default-src 'none'; frame-ancestors 'none'"
        ), path
    actor = await client.get("/actors/benito")
    assert (await actor.json(content_type=None))["name"] == "EvilloohcS"


def test_the_cli_shows_a_remote_actors_name_clean() -> None:
    from amity.cli.main import shown_name

    assert shown_name({"id": "https://a.example/actors/a", "name": f"Evil{RLO}loohcS"}) == (
        "EvilloohcS"
    )
    invisible = {"id": "https://a.example/actors/a", "name": ZWSP, "preferredUsername": "a"}
    assert shown_name(invisible) == "a"
    assert shown_name({"id": "https://a.example/actors/a", "name": ["x"]}) == (
        "https://a.example/actors/a"
    )
