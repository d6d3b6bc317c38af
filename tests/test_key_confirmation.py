"""Directory sync takes a hub's word for each author's key, then checks it with the author."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from nacl.signing import SigningKey

from amity.federation import directory
from amity.federation import sync as sync_module
from amity.federation.actors import RemoteActors
from amity.federation.client import FederationClient
from amity.federation.sync import DirectorySync
from amity.node.app_state import DB
from amity.protocol.multikey import encode_ed25519_public
from amity.protocol.profile_document import profile_document
from amity.protocol.proofs import sign_document

from .helpers import free_port
from .inprocess import LiveNode, start_node

SEED = bytes(range(32))


async def listing_state(node: LiveNode) -> dict[str, bool]:
    """actor -> whether its key is confirmed, from what `amity directory --json` shows."""

    def read() -> dict[str, bool]:
        db = node.node.store.db
        rows = directory.search(db, directory.Filters(), 50, 0)
        found = directory.summaries(db, rows, node.node.now(), "")
        return {item["actor"]: item["key_confirmed"] for item in found}

    return await node.run(read)


def forged_profile(actor: str, data: dict[str, Any], updated: str) -> dict[str, Any]:
    """A profile attributed to `actor`, signed with a key that is not the actor's."""
    document = profile_document(
        {**data, "name": "Not really this school"},
        profile_id=f"{actor}/profile",
        actor_id=actor,
        published=updated,
        updated=updated,
    )
    return sign_document(document, SEED, f"{actor}#ed25519-key", updated)


@pytest.fixture
async def schools(tmp_path: Path) -> AsyncIterator[dict[str, LiveNode]]:
    live = {name: await start_node(tmp_path, name) for name in ("a", "b", "watcher")}
    yield live
    for node in live.values():
        await node.server.close()
        node.node.close()


async def test_a_hubs_word_for_a_key_is_checked_with_the_author(
    schools: dict[str, LiveNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, watcher = schools["a"], schools["b"], schools["watcher"]
    genuine = (await b.run(b.node.profile)).document  # type: ignore[union-attr]
    a_data = (await a.run(a.node.profile)).data  # type: ignore[union-attr]
    later = "2099-01-01T00:00:00Z"
    forged = forged_profile(a.actor, a_data, later)
    down = f"http://127.0.0.1:{free_port()}/actors/gone"  # nobody answers there
    unreachable = forged_profile(down, a_data, later)
    fake_key = encode_ed25519_public(bytes(SigningKey(SEED).verify_key))
    page = {
        "type": "OrderedCollectionPage",
        "orderedItems": [genuine, forged, unreachable],
        "cursor": 3,
        "authorKeys": {
            genuine["proof"]["verificationMethod"]: encode_ed25519_public(
                b.node.keys.ed25519_public
            ),
            f"{a.actor}#ed25519-key": fake_key,  # the hub lies about a's key
            f"{down}#ed25519-key": fake_key,
        },
    }

    async def serve_page(request: web.Request) -> web.Response:
        return web.json_response(
            page
            if request.query.get("since") == "0"
            else {"type": "OrderedCollectionPage", "orderedItems": [], "cursor": 3}
        )

    app = web.Application()
    app.router.add_get("/directory", serve_page)
    hub = TestServer(app, host="127.0.0.1")
    await hub.start_server()
    try:
        async with FederationClient(allow_private_network=True, clock=watcher.node.clock) as client:
            runner = watcher.server.app[DB]
            sync = DirectorySync(
                runner,
                client,
                RemoteActors(runner, client, watcher.node.signer),
                watcher.node.config.handle,
                watcher.node.signer,
                lambda *_: None,
            )
            hub_actor = {
                "id": f"{hub.make_url('/actors/hub')}",
                "directory": str(hub.make_url("/directory")),
            }
            assert await sync.sync_hub(hub_actor) == 3
            # Listed at once, on the hub's word, and marked so; not handed on meanwhile.
            assert await listing_state(watcher) == {
                watcher.actor: True,
                b.actor: False,
                a.actor: False,
                down: False,
            }
            served = await watcher.run(
                lambda: directory.changes_since(watcher.node.store.db, 0, 100)
            )
            assert [change["actor"] for change in served] == [watcher.actor]
            # Confirmation fetches each author: b's key is b's; a publishes another key,
            # so the forged listing goes; the unreachable one waits for the next round.
            assert await sync.confirm_keys() == (1, 1)
            assert await listing_state(watcher) == {watcher.actor: True, b.actor: True, down: False}
            # Nothing was tombstoned: a's genuine profile is still taken when it comes.
            real_a = (await a.run(a.node.profile)).document  # type: ignore[union-attr]
            page["orderedItems"], page["cursor"] = [real_a], 4
            await watcher.run(
                lambda: directory.set_sync_cursor(watcher.node.store.db, hub_actor["id"], 0)
            )
            assert await sync.sync_hub(hub_actor) == 1
            assert (await listing_state(watcher))[a.actor] is True  # a's actor is cached now
            # Once a listing is confirmed, a hub's word can no longer replace it: a newer
            # version signed with the hub's key for b is checked against b's actor, and fails.
            b_data = (await b.run(b.node.profile)).data  # type: ignore[union-attr]
            page["orderedItems"], page["cursor"] = [forged_profile(b.actor, b_data, later)], 5
            page["authorKeys"] = {f"{b.actor}#ed25519-key": fake_key}
            await watcher.run(
                lambda: directory.set_sync_cursor(watcher.node.store.db, hub_actor["id"], 0)
            )
            assert await sync.sync_hub(hub_actor) == 0
            names = await watcher.run(
                lambda: dict(
                    watcher.node.store.db.execute("SELECT actor, name FROM directory").fetchall()
                )
            )
            assert names[b.actor] == genuine["name"]
            # A listing whose author stays unreachable is dropped after a day.
            monkeypatch.setattr(sync_module, "UNCONFIRMED_FOR", 0.0)
            assert await sync.confirm_keys() == (0, 1)
            assert down not in await listing_state(watcher)
    finally:
        await hub.close()
