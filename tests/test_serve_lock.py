"""One `amity serve` per data directory: a second one refuses at once and changes nothing."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

from .helpers import amity, free_port, make_school, query


def _plant_lan_peer(data: Path) -> None:
    """A node found on the local network, as the serving node would have recorded it."""
    connection = sqlite3.connect(data / "amity.db", timeout=10)
    try:
        with connection:
            connection.execute(
                "INSERT INTO lan_peers (name, actor, kind, url, seen_at) VALUES (?, ?, ?, ?, ?)",
                ["peer", "http://127.0.0.9:1/actors/p", "school", "http://127.0.0.9:1", 1.0],
            )
    finally:
        connection.close()


def test_a_second_serve_refuses_at_once_and_leaves_the_first_alone(
    tmp_path: Path, served: Any
) -> None:
    port = free_port()
    data = make_school(tmp_path, "solo", port)
    first = served(data, port, lan_discovery=True)  # it keeps its LAN list up to date
    assert first.process is not None
    _plant_lan_peer(data)
    planted = [e for e in json.loads(amity("lan", "--json", data=data).stdout) if e["seen_at"] == 1]
    assert len(planted) == 1
    for extra in ([], ["--port", str(free_port())]):
        started = time.monotonic()
        second = amity("serve", *extra, data=data, check=False)
        assert time.monotonic() - started < 5
        assert second.returncode == 1
        assert second.stderr == (
            f"error: a node is already serving from {data} (pid {first.process.pid}); "
            "stop it first\n"
        )
    assert first.process.poll() is None
    assert first.get("/.well-known/nodeinfo")[0] == 200
    # The LAN list is not wiped (other nodes on this computer may join it meanwhile).
    lan_after = json.loads(amity("lan", "--json", data=data).stdout)
    assert planted[0] in lan_after
    assert query(data, "SELECT name FROM lan_peers WHERE name = 'peer'") == [("peer",)]

    # kill -9 leaves the lock file behind, but not the lock: the next serve starts.
    first.kill(signal.SIGKILL)
    assert (data / "serve.lock").exists()
    again = served(data, port)
    assert again.get("/.well-known/nodeinfo")[0] == 200


def test_a_port_taken_by_another_program_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    port = free_port()
    data = make_school(tmp_path, "busy", port)
    with socket.create_server(("127.0.0.1", port)):
        result = amity("serve", "--port", str(port), "--no-lan-discovery", data=data, check=False)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: port {port} on 127.0.0.1 is in use by another program; stop it, or serve on "
        "another port with --port N"
    )
    assert "Traceback" not in result.stderr
