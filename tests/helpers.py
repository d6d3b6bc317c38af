"""Helpers for tests: the example profile, free ports, the real `amity` command."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PROFILE: dict[str, Any] = json.loads((ROOT / "examples" / "profile.json").read_text())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def amity(
    *args: str, data: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real `amity` command in a subprocess."""
    command = [sys.executable, "-m", "amity.cli", *args]
    if data is not None:
        command += ["--data", str(data)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"amity {' '.join(args)} failed: {result.stderr}")
    return result


class ServedNode:
    """`amity serve` running in a subprocess on 127.0.0.1."""

    def __init__(self, data: Path, port: int, *extra: str) -> None:
        self.data = data
        self.port = port
        self.extra = extra
        self.base_url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> ServedNode:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "amity.cli", "serve", "--data", str(self.data), *self.extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"amity serve exited: {self.process.stdout.read()}")  # type: ignore[union-attr]
            try:
                self.get("/.well-known/nodeinfo")
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise AssertionError("amity serve did not answer within 20 s")

    def get(
        self, path: str, accept: str = "application/activity+json"
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base_url + path, headers={"Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


def wait_until(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def query(data: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from a node's database, read through a separate connection (as another process)."""
    connection = sqlite3.connect(f"file:{data / 'amity.db'}?mode=ro", uri=True, timeout=10)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def make_school(tmp_path: Path, handle: str, port: int, **profile_changes: Any) -> Path:
    """`amity init` a school node on 127.0.0.1:port with the example profile (changed)."""
    data = tmp_path / handle
    profile = {**EXAMPLE_PROFILE, **profile_changes}
    profile_file = tmp_path / f"{handle}.json"
    profile_file.write_text(json.dumps(profile))
    amity(
        "init",
        "--name",
        handle,
        "--base-url",
        f"http://127.0.0.1:{port}",
        "--profile",
        str(profile_file),
        data=data,
    )
    with (data / "amity.toml").open("a") as config:
        config.write("\n[federation]\nfirst_retry_seconds = 1\n")
    return data
