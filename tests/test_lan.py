"""LAN discovery for real: `amity serve` processes in network namespaces joined by a veth
pair (10.99.x.0/24, made and removed by the test), and on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import amity, free_port, make_school, wait_until

PRIVATE = "--allow-private-network"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str, str]]:
    """Two fresh network namespaces joined by a veth pair: (ns_a, ns_b, subnet prefix).
    ns_a's loopback carries multicast too. Skips where namespaces cannot be made."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("network namespaces need root and iproute2")
    tag = f"{os.getpid() % 10000}"
    ns_a, ns_b = f"amity-a{tag}", f"amity-b{tag}"
    prefix = f"10.99.{os.getpid() % 250}"
    try:
        _ip("netns", "add", ns_a)
        _ip("netns", "add", ns_b)
        _ip(
            "link",
            "add",
            f"va{tag}",
            "netns",
            ns_a,
            "type",
            "veth",
            "peer",
            f"vb{tag}",
            "netns",
            ns_b,
        )
        for ns, dev, host in ((ns_a, f"va{tag}", 1), (ns_b, f"vb{tag}", 2)):
            _ip("-n", ns, "addr", "add", f"{prefix}.{host}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns_a, "link", "set", "lo", "multicast", "on")
    except subprocess.CalledProcessError as exc:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"cannot make network namespaces here: {exc.stderr!r}")
    try:
        yield ns_a, ns_b, prefix
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


class NsNode:
    """`amity serve` inside a namespace (or on the host when `ns` is None)."""

    def __init__(self, ns: str | None, data: Path, *args: str) -> None:
        prefix = ["ip", "netns", "exec", ns] if ns else []
        self.data = data
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "amity.cli", "serve", "--data", str(data), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
        out, _ = self.process.communicate(timeout=20)
        return out


def _init(tmp_path: Path, name: str, kind: str, base_url: str) -> Path:
    data = tmp_path / name
    amity("init", "--name", name, "--kind", kind, "--base-url", base_url, data=data)
    return data


def _peers(data: Path) -> set[str]:
    rows: list[dict[str, Any]] = json.loads(amity("lan", "--json", data=data).stdout)
    return {row["actor"] for row in rows}


def test_nodes_find_each_other_only_on_the_interfaces_they_listen_on(
    tmp_path: Path, namespaces: tuple[str, str, str]
) -> None:
    ns_a, ns_b, prefix = namespaces
    a_url, b_url = f"http://{prefix}.1:8001", f"http://{prefix}.2:8002"
    hub = _init(tmp_path, "hub", "hub", a_url)  # on the veth in ns_a
    school = make_school(tmp_path, "school", 8002)  # on the veth in ns_b
    (school / "amity.toml").write_text(
        (school / "amity.toml").read_text().replace("http://127.0.0.1:8002", b_url)
    )
    local1 = make_school(tmp_path, "local1", 8003)  # loopback only, in ns_a
    local2 = _init(tmp_path, "local2", "hub", "http://127.0.0.1:8004")  # loopback, ns_a
    quiet = _init(tmp_path, "quiet", "hub", f"http://{prefix}.2:8005")  # veth, discovery off
    nodes = [
        NsNode(ns_a, hub, "--bind", f"{prefix}.1", PRIVATE),
        NsNode(ns_b, school, "--bind", f"{prefix}.2", PRIVATE),
        NsNode(ns_a, local1),
        NsNode(ns_a, local2),
        NsNode(ns_b, quiet, "--bind", f"{prefix}.2", "--no-lan-discovery"),
    ]
    actor = {
        "hub": f"{a_url}/actors/hub",
        "school": f"{b_url}/actors/school",
        "local1": "http://127.0.0.1:8003/actors/local1",
        "local2": "http://127.0.0.1:8004/actors/local2",
    }
    try:
        # With no configuration, each finds the other on its own network.
        wait_until(lambda: _peers(hub) == {actor["school"]}, 20)
        wait_until(lambda: _peers(school) == {actor["hub"]}, 20)
        wait_until(lambda: _peers(local1) == {actor["local2"]}, 20)
        wait_until(lambda: _peers(local2) == {actor["local1"]}, 20)
        time.sleep(2)  # give any leak time to show
        # Loopback-bound nodes never reach the veth; a node with discovery off is silent.
        assert _peers(school) == {actor["hub"]}
        assert _peers(hub) == {actor["school"]}
        assert _peers(local1) == {actor["local2"]}
        assert _peers(quiet) == set()
        listed = amity("lan", data=school).stdout
        assert "hub" in listed and actor["hub"] in listed
        # What was found is followed like any node.
        follow = ["ip", "netns", "exec", ns_b, sys.executable, "-m", "amity.cli", "follow"]
        follow += [actor["hub"], PRIVATE, "--data", str(school)]
        subprocess.run(follow, check=True, capture_output=True, timeout=60)

        def following() -> list[dict[str, Any]]:
            return list(json.loads(amity("following", "--json", data=school).stdout))

        wait_until(lambda: following()[0]["state"] == "accepted", 20)
        assert following()[0]["actor"] == actor["hub"]
    finally:
        outputs = [node.stop() for node in nodes]
    assert all("Traceback" not in out for out in outputs), outputs


def test_two_nodes_on_loopback_find_each_other(tmp_path: Path) -> None:
    """The same on the host's loopback, where every test machine can multicast."""
    ports = [free_port(), free_port()]
    datas = [make_school(tmp_path, f"n{i}", port) for i, port in enumerate(ports)]
    nodes = [NsNode(None, data) for data in datas]
    try:
        wait_until(lambda: f"http://127.0.0.1:{ports[1]}/actors/n1" in _peers(datas[0]), 20)
        wait_until(lambda: f"http://127.0.0.1:{ports[0]}/actors/n0" in _peers(datas[1]), 20)
    finally:
        for node in nodes:
            node.stop()
