"""CPU instructions per request of bench/inbox.py's two servers, counted by valgrind.

Run: python bench/inbox_instructions.py [--requests N]   (needs valgrind: apt-get install valgrind)

Rates on a shared 2-core machine move by a factor of two from run to run; instruction
counts do not. Each server (`amity serve` and the bare aiohttp handler) runs under
callgrind; its counters are zeroed after a warm-up and dumped after N signed Creates, so
start-up is not counted. The client and the sending node run normally. Time in the
kernel (system calls, thread switches) is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inbox import BARE_SERVER, blast, signed_requests
from nodes import free_port, init_school, serve, stop

from amity.node.node import Node


def under_callgrind(command: list[str], out: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600  # about 50 times slower than usual
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/nodeinfo/2.1", timeout=5):
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the server did not start under valgrind")


def counted(process: subprocess.Popen[bytes], out: Path) -> int:
    """Instructions since the counters were last zeroed, from a fresh dump."""
    before = set(glob.glob(f"{out}.{process.pid}.*"))
    dump = ["callgrind_control", "--dump", str(process.pid)]
    subprocess.run(dump, check=True, capture_output=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for written in set(glob.glob(f"{out}.{process.pid}.*")) - before:
            for line in Path(written).read_text(errors="replace").splitlines():
                if line.startswith("totals:"):
                    return int(line.split()[1])
        time.sleep(0.5)
    raise SystemExit("callgrind wrote no dump")


def per_request(command: list[str], port: int, sender: Node, count: int, work: Path) -> float:
    out = work / f"callgrind-{port}"
    process = under_callgrind(command, out, port)
    try:
        inbox = f"http://127.0.0.1:{port}/inbox"
        warm, requests = signed_requests(sender, inbox, 20), signed_requests(sender, inbox, count)
        asyncio.run(blast(inbox, warm, 4))  # the receiver fetches and caches the key
        zero = ["callgrind_control", "--zero", str(process.pid)]
        subprocess.run(zero, check=True, capture_output=True)
        asyncio.run(blast(inbox, requests, 16))
        return counted(process, out) / count
    finally:
        process.terminate()
        process.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        receiver_port, sender_port, bare_port = free_port(), free_port(), free_port()
        unlimited = (
            "inbox_per_minute = 10000000\ninbox_burst = 10000000\n"
            "inbox_per_minute_per_address = 10000000\ninbox_burst_per_address = 10000000\n"
            "header_timeout_seconds = 600\nbody_timeout_seconds = 600"  # valgrind is slow
        )
        receiver_data = init_school(directory, "receiver", receiver_port, unlimited)
        sender_data = init_school(directory, "sender", sender_port)
        sender = serve(sender_data, sender_port)
        try:
            node = Node.open(sender_data)
            amity_serve = [sys.executable, "-m", "amity.cli", "serve", "--data", str(receiver_data)]
            amity = per_request(
                [*amity_serve, "--allow-private-network", "--no-lan-discovery"],
                receiver_port,
                node,
                args.requests,
                directory,
            )
            bare = per_request(
                [sys.executable, "-c", BARE_SERVER, str(bare_port)],
                bare_port,
                node,
                args.requests,
                directory,
            )
            node.close()
        finally:
            stop(sender)
    print(f"{args.requests} signed Create activities, 16 concurrent, loopback, server process only")
    print(f"  amity inbox (verify, check, store once)   {amity / 1000:8.0f} k instructions/request")
    print(f"  bare aiohttp handler (read, answer 202)   {bare / 1000:8.0f} k instructions/request")
    print(f"  ratio bare / amity                        {bare / amity:8.2f}")


if __name__ == "__main__":
    main()
