"""A node hosting many schools: start-up time, memory, serving hosted actors, inbox rate.

Run: python bench/hosting.py [--schools N] [--requests R] [--followers F] [--hosts H]

Makes an authority node hosting N schools (default 10,000; each with its own key files and
signed profile, the keys generated once and written for every school so the run does not
spend minutes generating RSA keys), then starts `amity serve` on it and on a node with one
account in the same run, and reports: the time until each answers, the serving process's
peak memory (VmHWM), the time to answer GET of 200 random hosted actors (their keys not in
the cache) against 200 GETs of the single account's actor, and the signed Creates accepted
per second (the better of two runs) by the inboxes of R random hosted schools against the
same stream to the single account's inbox (bench/inbox.py's requests, from a third node).
Then the fan-out of one profile update to F followers on H loopback hosts (bench/fanout.py's
Amity case) by a school hosted with N others, against the same update by a single-account
node, each with its plain unsigned loop, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout import run_case
from inbox import blast, blast_to, signed_requests
from nodes import free_port, init_school, profile_json, stop
from nodes import serve as serve_node

from amity.node.keys import generate_keys
from amity.node.node import Node, init_node

UNLIMITED = (
    "\n[federation]\ninbox_per_minute = 10000000\ninbox_burst = 10000000\n"
    "inbox_per_minute_per_address = 10000000\ninbox_burst_per_address = 10000000\n"
)

PROFILE = profile_json()


def serve(data: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    """`amity serve` on `data` (bench/nodes.py); (process, seconds until it answered)."""
    started = time.perf_counter()
    process = serve_node(data, port, "--port", str(port))
    return process, time.perf_counter() - started


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


def inbox_rate(sender: Node, port: int, handles: list[str], concurrency: int = 16) -> float:
    """Signed Creates accepted per second, each to the inbox of one of `handles` in turn."""
    base = f"http://127.0.0.1:{port}/actors"
    warm = signed_requests(sender, f"{base}/{handles[0]}/inbox", 20)  # the key gets cached
    asyncio.run(blast(f"{base}/{handles[0]}/inbox", warm, 4))
    requests = []
    for handle in handles:
        url = f"{base}/{handle}/inbox"
        requests += [(url, body, headers) for body, headers in signed_requests(sender, url, 1)]
    return asyncio.run(blast_to(requests, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schools", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--followers", type=int, default=1000, help="fan-out followers")
    parser.add_argument("--hosts", type=int, default=50, help="fan-out receiver hosts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ports = {"ministry": free_port(), "single": free_port(), "sender": free_port()}
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
        for name in ("ministry", "single"):
            with (Path(tmp) / name / "amity.toml").open("a") as config:
                config.write(UNLIMITED)
        print(
            f"added {args.schools} schools in {added:.1f} s "
            f"({added / args.schools * 1000:.1f} ms each)"
        )
        sender_data = init_school(Path(tmp), "sender", ports["sender"])
        sender_process = serve_node(sender_data, ports["sender"])
        sender = Node.open(sender_data)
        everyone = [f"school-{n:05d}" for n in range(args.schools)]
        results = {}
        try:
            for name in ("single", "ministry"):
                process, start_time = serve(Path(tmp) / name, ports[name])
                try:
                    if name == "ministry":
                        handles = random.sample(everyone, min(200, len(everyone)))
                        stream = [random.choice(everyone) for _ in range(args.requests)]
                    else:
                        handles = ["single"] * 200
                        stream = ["single"] * args.requests
                    elapsed = get_all(ports[name], handles)
                    # The better of two runs: the machine may be busy with other work.
                    rate = max(inbox_rate(sender, ports[name], stream) for _ in range(2))
                    results[name] = (start_time, peak_memory_mb(process.pid), elapsed, rate)
                finally:
                    process.terminate()
                    process.wait(timeout=20)
        finally:
            sender.close()
            stop(sender_process)
        for name, (start_time, memory, elapsed, rate) in results.items():
            print(
                f"{name:<9} start-up {start_time:5.2f} s  peak memory {memory:6.1f} MB  "
                f"200 actor GETs {elapsed / 200 * 1000:5.1f} ms each  inbox {rate:6.0f} /s"
            )
        ratio = results["ministry"][3] / results["single"][3]
        print(f"inbox rate, hosted schools / single account: {ratio:.2f}")
        fan = {
            "single": run_case("amity", args, Path(tmp) / "fan-single"),
            "hosted": run_case("amity", args, Path(tmp) / "fan-hosted", args.schools),
        }
        print(f"fan-out of one update to {args.followers} followers on {args.hosts} hosts:")
        for name, (first, last, plain, _) in fan.items():
            print(
                f"  {name:<7} first to last arrival {last - first:5.2f} s (last {last:5.2f} s "
                f"after `profile import` ended), plain unsigned loop {plain:5.2f} s"
            )
        spans = {name: last - first for name, (first, last, _, _) in fan.items()}
        print(f"fan-out, hosted school / single account: {spans['hosted'] / spans['single']:.2f}")


if __name__ == "__main__":
    main()
