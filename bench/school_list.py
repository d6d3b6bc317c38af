"""`amity school list` on a node hosting many schools: the time of the command (text and
--json), the best of a few runs.

Run: python bench/school_list.py [--schools N] [--data DIR] [--runs R]

Makes an authority node hosting N schools (default 5,000; one key pair generated and
written for every school, so the run does not spend minutes making RSA keys) in DIR (a
temporary directory unless given; an existing node in DIR is reused as it is), then runs
`amity school list` and `amity school list --json` R times each (default 3) and reports
the best time of each and the number of rows listed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amity.node.keys import generate_keys
from amity.node.node import init_node

PROFILE = json.loads(
    (Path(__file__).resolve().parent.parent / "examples" / "profile.json").read_text()
)


def build(data: Path, schools: int) -> float:
    """A node hosting `schools` schools in `data`; the seconds it took."""
    node = init_node(data, handle="ministry", base_url="http://127.0.0.1:9", kind="authority")
    keys = generate_keys()
    started = time.perf_counter()
    try:
        for n in range(schools):
            node.add_school(f"school-{n:05d}", {**PROFILE, "name": f"School {n}"}, keys)
    finally:
        node.close()
    return time.perf_counter() - started


def best_time(args: list[str], runs: int) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "amity.cli", *args], capture_output=True, text=True, check=True
        )
        best = min(best, time.perf_counter() - started)
        out = result.stdout
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schools", type=int, default=5000)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "ministry"
        if not (data / "amity.toml").exists():
            took = build(data, args.schools)
            print(f"added {args.schools} schools in {took:.1f} s")
        # What starting the command costs, without listing anything.
        baseline, _ = best_time(["--version"], args.runs)
        text, out = best_time(["school", "list", "--data", str(data)], args.runs)
        as_json, out_json = best_time(["school", "list", "--json", "--data", str(data)], args.runs)
        rows = len(json.loads(out_json))
        print(f"amity --version: {baseline:.2f} s (start-up of the command)")
        print(f"amity school list: {text:.2f} s, {len(out.splitlines())} lines")
        print(f"amity school list --json: {as_json:.2f} s, {rows} rows")


if __name__ == "__main__":
    main()
