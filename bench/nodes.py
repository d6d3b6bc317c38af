"""Shared set-up for the benchmarks: real nodes in subprocesses on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "profile.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def amity(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "amity.cli", *args], capture_output=True, text=True, check=True
    )
    return result.stdout


def init_school(directory: Path, handle: str, port: int, federation: str = "") -> Path:
    data = directory / handle
    amity(
        "init",
        "--data",
        str(data),
        "--name",
        handle,
        "--base-url",
        f"http://127.0.0.1:{port}",
        "--profile",
        str(EXAMPLE),
    )
    if federation:
        with (data / "amity.toml").open("a") as config:
            config.write(f"\n[federation]\n{federation}\n")
    return data


def serve(data: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amity.cli",
            "serve",
            "--data",
            str(data),
            "--allow-private-network",
            "--no-lan-discovery",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/nodeinfo/2.1", timeout=1):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("node did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


def profile_json() -> dict[str, object]:
    return dict(json.loads(EXAMPLE.read_text()))
