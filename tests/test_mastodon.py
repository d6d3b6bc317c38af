"""Mastodon-shaped peers follow, unfollow, update and delete; one POST per shared inbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp

from amity.node.app import FederationSettings

from .inprocess import start_node
from .mastodon_peer import MastodonPeer

# These peers are not Amity nodes: the default policy would hold their Follows.
ACCEPT_ALL = FederationSettings(
    allow_private_network=True, poll_interval=0.05, first_retry=0.2, follow_policy="accept-all"
)


async def _until(check: Callable[[], object]) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


async def test_mastodon_users_follow_get_updates_once_per_server_and_unfollow(
    tmp_path: Path,
) -> None:
    peer = MastodonPeer("alice", "bob")
    await peer.server.start_server()
    school = await start_node(tmp_path, "school", ACCEPT_ALL)
    try:
        async with aiohttp.ClientSession() as session:
            inbox = f"{school.actor}/inbox"
            follows = {}
            for name in ("alice", "bob"):
                follows[name] = peer.activity(name, "Follow", school.actor)
                assert await peer.post(session, name, inbox, follows[name]) == 202
            # Each gets an Accept of its own Follow at its own inbox.
            await _until(lambda: len(peer.received) == 2)
            accepts = {path: activity for path, activity in peer.received}
            for name in ("alice", "bob"):
                accept = accepts[f"/users/{name}/inbox"]
                assert accept["type"] == "Accept"
                assert accept["object"]["id"] == follows[name]["id"]
                assert accept["actor"] == school.actor
            peer.received.clear()

            profile = await school.run(school.node.profile)
            assert profile is not None
            await school.run(lambda: school.node.publish_profile({**profile.data, "capacity": 6}))
            await _until(lambda: peer.received)
            await asyncio.sleep(0.3)  # time for a second POST, which must not come
            [(path, update)] = peer.received
            assert path == "/inbox"  # the shared inbox, once for both followers
            assert update["type"] == "Update"
            assert update["object"]["capacity"] == 6
            # Mastodon is sent draft-cavage rsa-sha256 with the RSA key, never RFC 9421.
            assert len(peer.signatures) == 3
            for signature in peer.signatures:
                assert signature.startswith(f'keyId="{school.actor}#main-key"')
                assert 'algorithm="rsa-sha256"' in signature

            undo = peer.activity("bob", "Undo", follows["bob"])
            assert await peer.post(session, "bob", inbox, undo) == 202
            assert [row[1] for row in (await school.state())["followers"]] == [
                peer.actor_id("alice")
            ]

            delete = peer.activity("alice", "Delete", peer.actor_id("alice"))
            delete["id"] = f"{peer.actor_id('alice')}#delete"
            assert await peer.post(session, "alice", f"{school.base}/inbox", delete) == 202
            assert (await school.state())["followers"] == []
    finally:
        await school.server.close()
        school.node.close()
        await peer.server.close()
