"""Several real nodes on 127.0.0.1 (subprocesses): follows, updates, outages, kill -9."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from .helpers import amity, free_port, make_school, query, wait_until

PRIVATE = "--allow-private-network"


def _profile_capacity(data: Path, actor: str) -> int | None:
    rows = query(data, "SELECT document FROM directory WHERE actor = ?", actor)
    return json.loads(rows[0][0])["capacity"] if rows and rows[0][0] else None


def _accepted(data: Path, actor: str) -> bool:
    return query(data, "SELECT state FROM following WHERE actor = ?", actor) == [("accepted",)]


def _import(data: Path, tmp_path: Path, **changes: Any) -> None:
    profile = json.loads(amity("profile", "show", "--json", data=data).stdout)
    profile.update(changes)
    path = tmp_path / "change.json"
    path.write_text(json.dumps(profile))
    amity("profile", "import", str(path), data=data)


def test_three_nodes_follow_and_an_update_reaches_every_follower(
    tmp_path: Path, served: Any
) -> None:
    ports = [free_port() for _ in range(3)]
    a, b, c = (make_school(tmp_path, name, port) for name, port in zip("abc", ports, strict=True))
    for data, port in zip((a, b, c), ports, strict=True):
        served(data, port, PRIVATE)
    actor_a = f"http://127.0.0.1:{ports[0]}/actors/a"
    amity("follow", f"a@127.0.0.1:{ports[0]}", PRIVATE, data=b)  # by handle, via WebFinger
    amity("follow", actor_a, PRIVATE, data=c)  # by URL
    wait_until(lambda: _accepted(b, actor_a) and _accepted(c, actor_a))
    followers = {row[0] for row in query(a, "SELECT actor FROM followers")}
    assert followers == {
        f"http://127.0.0.1:{p}/actors/{n}" for n, p in zip("bc", ports[1:], strict=True)
    }

    _import(a, tmp_path, capacity=9)
    wait_until(lambda: _profile_capacity(b, actor_a) == 9 and _profile_capacity(c, actor_a) == 9)
    # Each follower processed the Update once.
    for data in (b, c):
        updates = query(data, "SELECT count(*) FROM seen_activities WHERE type = 'Update'")
        assert updates == [(1,)]
    assert json.loads(amity("queue", "--json", data=a).stdout) == []


def test_a_peer_that_is_down_gets_the_update_when_it_returns(tmp_path: Path, served: Any) -> None:
    port_a, port_b = free_port(), free_port()
    a, b = make_school(tmp_path, "a", port_a), make_school(tmp_path, "b", port_b)
    served(a, port_a, PRIVATE)
    node_b = served(b, port_b, PRIVATE)
    actor_a = f"http://127.0.0.1:{port_a}/actors/a"
    amity("follow", actor_a, PRIVATE, data=b)
    wait_until(lambda: _accepted(b, actor_a))

    node_b.kill(signal.SIGTERM)
    _import(a, tmp_path, capacity=5)
    retrying = wait_until(
        lambda: [
            r
            for r in json.loads(amity("queue", "--json", data=a).stdout)
            if r["state"] == "retrying"
        ]
    )
    assert retrying[0]["inbox"] == f"http://127.0.0.1:{port_b}/inbox"
    assert "connection refused" in retrying[0]["last_error"]
    node_b.start()
    wait_until(lambda: _profile_capacity(b, actor_a) == 5, timeout=30)
    wait_until(lambda: json.loads(amity("queue", "--json", data=a).stdout) == [])


def test_kill_9_with_queued_deliveries_loses_none_and_repeats_none(
    tmp_path: Path, served: Any
) -> None:
    ports = [free_port() for _ in range(3)]
    a, b, c = (make_school(tmp_path, name, port) for name, port in zip("abc", ports, strict=True))
    node_a = served(a, ports[0], PRIVATE)
    served(b, ports[1], PRIVATE)
    served(c, ports[2], PRIVATE)
    actor_a = f"http://127.0.0.1:{ports[0]}/actors/a"
    for data in (b, c):
        amity("follow", actor_a, PRIVATE, data=data)
    wait_until(lambda: _accepted(b, actor_a) and _accepted(c, actor_a))
    # The Accepts' answers recorded too: one cut off by the stop would be queued again.
    wait_until(lambda: json.loads(amity("queue", "--json", data=a).stdout) == [])

    node_a.kill(signal.SIGTERM)
    for capacity in (11, 12, 13, 14, 15):  # queued while the node is down
        _import(a, tmp_path, capacity=capacity)
    assert len(json.loads(amity("queue", "--json", data=a).stdout)) == 10
    node_a.start()
    node_a.kill(signal.SIGKILL)  # perhaps mid-delivery
    node_a.start()
    wait_until(lambda: json.loads(amity("queue", "--json", data=a).stdout) == [], timeout=30)
    sent = {row[0] for row in query(a, "SELECT id FROM outbox WHERE type = 'Update'")}
    assert len(sent) == 6  # the profile of init, then five changes
    for data in (b, c):
        assert _profile_capacity(data, actor_a) == 15
        received = query(
            data, "SELECT id FROM seen_activities WHERE type = 'Update' AND actor = ?", actor_a
        )
        # Every Update sent after the follow arrived, each processed exactly once.
        assert len(received) == len({r[0] for r in received}) == 5
        assert {r[0] for r in received} <= sent


def test_key_rotation_is_picked_up_by_followers(tmp_path: Path, served: Any) -> None:
    port_a, port_b = free_port(), free_port()
    a, b = make_school(tmp_path, "a", port_a), make_school(tmp_path, "b", port_b)
    served(a, port_a, PRIVATE)
    served(b, port_b, PRIVATE)
    actor_a = f"http://127.0.0.1:{port_a}/actors/a"
    amity("follow", actor_a, PRIVATE, data=b)
    wait_until(lambda: _accepted(b, actor_a))
    old_key = json.loads(query(b, "SELECT document FROM remote_actors WHERE id = ?", actor_a)[0][0])
    amity("keys", "rotate", data=a)
    _import(a, tmp_path, capacity=3)  # signed with the new keys

    def cached_key() -> str:
        document = query(b, "SELECT document FROM remote_actors WHERE id = ?", actor_a)[0][0]
        return json.loads(document)["publicKey"]["publicKeyPem"]

    wait_until(lambda: _profile_capacity(b, actor_a) == 3)
    assert cached_key() != old_key["publicKey"]["publicKeyPem"]
    assert json.loads(amity("queue", "--json", data=a).stdout) == []
