"""A node run as a real `amity serve` subprocess: live changes, kill -9, clean shutdown."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from amity.protocol.proofs import verify_with_actor

from .helpers import ROOT, amity, free_port

AP = "application/activity+json"


def _init(tmp_path: Path, port: int) -> Path:
    data = tmp_path / "node"
    amity(
        "init",
        "--name",
        "benito",
        "--base-url",
        f"http://127.0.0.1:{port}",
        "--kind",
        "school",
        "--profile",
        str(ROOT / "examples" / "profile.json"),
        data=data,
    )
    return data


def test_node_survives_kill_9_and_serves_the_same_profile(tmp_path: Path, served: Any) -> None:
    port = free_port()
    data = _init(tmp_path, port)
    node = served(data, port)
    status, _, before = node.get("/actors/benito/profile")
    assert status == 200
    assert node.kill(signal.SIGKILL) == -signal.SIGKILL
    node.start()
    status, headers, after = node.get("/actors/benito/profile")
    assert status == 200
    assert headers["Content-Type"] == AP
    assert after == before
    actor = json.loads(node.get("/actors/benito")[2])
    verify_with_actor(json.loads(after), actor)


def test_import_while_serving_is_live_and_survives_kill_9(
    tmp_path: Path, served: Any, profile: dict[str, Any]
) -> None:
    port = free_port()
    data = _init(tmp_path, port)
    node = served(data, port)
    profile["description"] = "Now with a school garden."
    new_file = tmp_path / "new.json"
    new_file.write_text(json.dumps(profile))
    amity("profile", "import", str(new_file), data=data)
    served_now = json.loads(node.get("/actors/benito/profile")[2])
    assert served_now["summary"] == "Now with a school garden."
    node.kill(signal.SIGKILL)
    node.start()
    assert json.loads(node.get("/actors/benito/profile")[2]) == served_now
    shown = json.loads(amity("profile", "show", "--json", data=data).stdout)
    assert shown["description"] == "Now with a school garden."


def test_sigterm_and_sigint_shut_down_cleanly(tmp_path: Path, served: Any) -> None:
    port = free_port()
    data = _init(tmp_path, port)
    for sig in (signal.SIGTERM, signal.SIGINT):
        node = served(data, port)
        assert node.kill(sig) == 0
        assert node.process is not None and node.process.stdout is not None
        output = node.process.stdout.read()
        assert "stopped" in output
        assert "Traceback" not in output


def test_serve_without_a_node_is_one_clear_error(tmp_path: Path) -> None:
    result = amity("serve", data=tmp_path / "empty", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no Amity node in")
    assert "Traceback" not in result.stderr


def test_backup_while_serving_restores_to_a_working_node(tmp_path: Path, served: Any) -> None:
    port = free_port()
    data = _init(tmp_path, port)
    node = served(data, port)
    original = node.get("/actors/benito/profile")[2]
    amity("backup", str(tmp_path / "copy"), data=data)
    node.kill(signal.SIGTERM)
    restored = served(tmp_path / "copy", port)
    assert restored.get("/actors/benito/profile")[2] == original
    assert (tmp_path / "copy" / "keys" / "benito.ed25519").stat().st_mode & 0o077 == 0
