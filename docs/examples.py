"""Regenerate the complete example documents in docs/protocol.md from the code.

Run: python docs/examples.py   (tests/test_docs.py checks the examples still verify)
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from amity.node.app import create_app
from amity.node.endorsement_actions import endorse
from amity.node.node import init_node

DOCS = Path(__file__).resolve().parent / "protocol.md"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "profile.json"


async def documents() -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        node = init_node(
            Path(tmp) / "n",
            handle="benito",
            base_url="https://school.example",
            kind="school",
            profile=json.loads(EXAMPLE.read_text()),
        )
        try:
            async with TestClient(TestServer(create_app(node))) as client:
                found = {}
                for name, path in (
                    ("actor", "/actors/benito"),
                    ("profile", "/actors/benito/profile"),
                ):
                    response = await client.get(
                        path, headers={"Accept": "application/activity+json"}
                    )
                    found[name] = json.dumps(
                        await response.json(content_type=None), indent=2, ensure_ascii=False
                    )
                found["endorsement"] = json.dumps(
                    endorsement_of(Path(tmp), node.actor_document()), indent=2, ensure_ascii=False
                )
                return found
        finally:
            node.close()


def endorsement_of(tmp: Path, school: dict[str, object]) -> dict[str, object]:
    """An endorsement of the example school by an example authority."""
    with init_node(
        tmp / "a", handle="ministry", base_url="https://ministry.example", kind="authority"
    ) as authority:
        return endorse(authority, school, "2027-07-31T00:00:00Z")


def main() -> None:
    text = DOCS.read_text()
    for name, document in asyncio.run(documents()).items():
        text = re.sub(
            rf"(<!-- example: {name} -->\n```json\n).*?(\n```)",
            lambda m, d=document: m.group(1) + d + m.group(2),
            text,
            flags=re.S,
        )
    DOCS.write_text(text)


if __name__ == "__main__":
    main()
