"""The tests' warm `amity` (tests/forkserver.py) behaves as `python -m amity.cli` started
from scratch: same output, same status, and its processes are signalled like any other."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ForkedProcess, ServedNode, amity, free_port, make_school


def _fresh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amity.cli", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(os.environ.get("AMITY_TEST_FORK") == "0", reason="the fork server is off")
def test_a_forked_command_prints_and_exits_as_a_fresh_one(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    for args in (["queue", "--data", str(missing)], ["nosuch"]):
        forked, fresh = amity(*args, check=False), _fresh(*args)
        assert (forked.returncode, forked.stdout, forked.stderr) == (
            fresh.returncode,
            fresh.stdout,
            fresh.stderr,
        ), args
    assert fresh.returncode == 2  # the last one: a usage error, not a crash


@pytest.mark.skipif(os.environ.get("AMITY_TEST_FORK") == "0", reason="the fork server is off")
def test_a_forked_node_is_its_own_process_and_dies_by_its_signal(tmp_path: Path) -> None:
    port = free_port()
    node = ServedNode(make_school(tmp_path, "solo", port), port).start()
    try:
        assert isinstance(node.process, ForkedProcess)
        assert node.process.pid not in (os.getpid(), 0)
        assert node.process.poll() is None
        assert node.kill(signal.SIGKILL) == -signal.SIGKILL  # as subprocess.Popen says it
    finally:
        node.stop()
