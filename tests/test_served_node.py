"""A node run as a real `amity serve` subprocess: live changes, kill -9, clean shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from amity.protocol.proofs import verify_with_actor

from .helpers import ROOT, amity, free_port, wait_until

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


def _maps_uvloop(pid: int) -> bool:
    return "/uvloop/loop." in Path(f"/proc/{pid}/maps").read_text()  # its compiled module


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/PID/maps")
def test_serve_runs_on_uvloop_and_on_asyncio_where_uvloop_is_missing(
    tmp_path: Path, served: Any
) -> None:
    """uvloop is left out where it has no wheel (pyproject.toml): `serve` then runs, and
    stops, on asyncio's own loop just the same."""
    pytest.importorskip("uvloop")
    port = free_port()
    data = _init(tmp_path, port)
    node = served(data, port)
    assert node.process is not None and _maps_uvloop(node.process.pid)
    assert node.kill(signal.SIGTERM) == 0
    hidden = "import sys; sys.modules['uvloop'] = None; from amity.cli.main import main; main()"
    process = subprocess.Popen(
        [sys.executable, "-c", hidden, "serve", "--data", str(data), "--no-lan-discovery"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        status = wait_until(lambda: _status(f"http://127.0.0.1:{port}/actors/benito"), 30)
        assert status == 200 and not _maps_uvloop(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        output = process.stdout.read() if process.stdout else ""
        assert "stopped" in output and "Traceback" not in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except (urllib.error.URLError, ConnectionError):
        return None
