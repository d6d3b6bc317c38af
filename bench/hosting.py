"""A node hosting many schools: start-up time, memory, and serving hosted actors.

Run: python bench/hosting.py [--schools N]

Makes an authority node hosting N schools (default 10,000; each with its own key files and
signed profile, the keys generated once and written for every school so the run does not
spend minutes generating RSA keys), then starts `amity serve` on it and on a node with one
account in the same run, and reports: the time until each answers, the serving process's
peak memory (VmHWM), and the time to answer GET of 200 random hosted actors (their keys
not in the cache) against 200 GETs of the single account's actor.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nodes import free_port

from amity.node.keys import generate_keys
from amity.node.node import init_node

PROFILE = json.loads(
    (Path(__file__).resolve().parent.parent / "examples" / "profile.json").read_text()
)


def serve(data: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    """`amity serve` on `data`; (process, seconds until it answered)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amity.cli",
            "serve",
            "--data",
            str(data),
            "--port",
            str(port),
            "--no-lan-discovery",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/.well-known/nodeinfo", timeout=1)
            return process, time.perf_counter() - started
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"amity serve exited with {process.returncode}") from None
            time.sleep(0.02)


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def get_all(port: int, handles: list[str]) -> float:
    started = time.perf_counter()
    for handle in handles:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/actors/{handle}",
            headers={"Accept": "application/activity+json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schools", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ports = {"ministry": free_port(), "single": free_port()}
        ministry = init_node(
            Path(tmp) / "ministry",
            handle="ministry",
            base_url=f"http://127.0.0.1:{ports['ministry']}",
            kind="authority",
        )
        keys = generate_keys()
        started = time.perf_counter()
        for n in range(args.schools):
            ministry.add_school(f"school-{n:05d}", {**PROFILE, "name": f"School {n}"}, keys)
        added = time.perf_counter() - started
        ministry.close()
        init_node(
            Path(tmp) / "single",
            handle="single",
            base_url=f"http://127.0.0.1:{ports['single']}",
            kind="school",
            profile=PROFILE,
        ).close()
        print(
            f"added {args.schools} schools in {added:.1f} s "
            f"({added / args.schools * 1000:.1f} ms each)"
        )
        results = {}
        for name in ("single", "ministry"):
            process, start_time = serve(Path(tmp) / name, ports[name])
            try:
                if name == "ministry":
                    handles = random.sample([f"school-{n:05d}" for n in range(args.schools)], 200)
                else:
                    handles = ["single"] * 200
                elapsed = get_all(ports[name], handles)
                results[name] = (start_time, peak_memory_mb(process.pid), elapsed)
            finally:
                process.terminate()
                process.wait(timeout=20)
        for name, (start_time, memory, elapsed) in results.items():
            print(
                f"{name:<9} start-up {start_time:5.2f} s  peak memory {memory:6.1f} MB  "
                f"200 actor GETs {elapsed:5.2f} s ({elapsed / 200 * 1000:.1f} ms each)"
            )


if __name__ == "__main__":
    main()
