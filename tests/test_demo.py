"""`amity demo` starts, converges, answers the CLI, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from .helpers import amity


def test_demo_starts_converges_and_stops_cleanly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "amity.cli", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        output = "".join(lines)
        assert "Ready: every school's directory lists the other 7 schools" in output, output
        school_data = Path(re.findall(r"--data (\S+)", output)[0])
        listings = json.loads(amity("directory", "--json", data=school_data).stdout)
        assert len(listings) == 7  # a school does not list itself
        assert len({item["country"] for item in listings}) == 7
        assert "Asia/Kathmandu" in {item["timezone"] for item in listings}  # a +5:45 zone
        # The ministry endorsed four schools, and this school trusts it.
        verified = [item for item in listings if item["verified"]]
        assert len(verified) == 4
        assert all(len(item["endorsed_by"]) == 1 for item in verified)
        assert output.count("  ✓ ") == 4
        # The suggested `amity match` ranks schools abroad, endorsed ones scoring for it.
        assert f"amity match --data {school_data}" in output
        suggested = json.loads(amity("match", "--json", data=school_data).stdout)
        assert suggested and all(item["country"] != "MX" for item in suggested)
        assert all(item["reasons"] for item in suggested)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
        assert process.returncode == 0
        assert "Demo stopped." in rest
        assert "Traceback" not in output + rest
        assert not school_data.exists()  # the temporary federation is removed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
