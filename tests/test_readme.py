"""The README's two-node walk-through runs as written, pasted in one go, and its comments
say what the commands print."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

from .helpers import ROOT, free_port

README = (ROOT / "README.md").read_text()


def walk_through() -> list[tuple[str, str]]:
    """(command, comment) of each line of the ```sh blocks of "Two nodes on one computer"."""
    section = README.split("### Two nodes on one computer", 1)[1].split("\n### ", 1)[0]
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            command, _, comment = line.partition(" #")
            if command.strip():
                lines.append((command.strip(), comment.strip()))
    return lines


def test_the_two_node_walk_through_runs_as_written(tmp_path: Path) -> None:
    steps = walk_through()
    assert [command.split(" --")[0] for command, _ in steps] == [
        "amity init",
        "amity init",
        "amity serve",
        "amity serve",
        "amity follow alpha@127.0.0.1:8301",
        "amity following",
        "amity profile import examples/profile.json",
        "amity queue",
        "amity directory",
    ]
    # Other tests may hold 8301 and 8302: the same walk-through on two free ports.
    ports = {"8301": str(free_port()), "8302": str(free_port())}
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("AMITY_DATA", None)
    background: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []
    outputs: dict[str, str] = {}
    try:
        for command, comment in steps:
            for default, port in ports.items():
                command, comment = command.replace(default, port), comment.replace(default, port)
            if command.endswith("&"):
                log = (tmp_path / f"serve-{len(background)}.log").open("wb")
                logs.append(log)
                background.append(
                    subprocess.Popen(
                        ["bash", "-c", f"exec {command[:-1]}"],
                        cwd=tmp_path,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
                continue
            result = subprocess.run(
                ["bash", "-c", command],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=90,
            )
            assert result.returncode == 0, f"{command}: {result.stderr}"
            outputs[command.split(" --")[0].split()[1]] = result.stdout
            if command.startswith(("amity follow", "amity queue")):  # follow and following
                expected = comment.removeprefix("... ")
                assert expected and expected in result.stdout, (command, comment, result.stdout)
        alpha = f"http://127.0.0.1:{ports['8301']}/actors/alpha"
        beta = f"http://127.0.0.1:{ports['8302']}/actors/beta"
        assert "accepted: this node follows it" in outputs["follow"]
        assert f"{alpha}  [accepted]" in outputs["following"]
        assert outputs["queue"] == "0 pending, 0 retrying, 0 dead, 0 held\n"
        assert f"    {alpha}\n" in outputs["directory"]
        assert beta not in outputs["directory"]  # a school does not list itself
    finally:
        for process in background:
            process.terminate()
        for process in background:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
