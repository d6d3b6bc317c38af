"""Signed activities accepted per second by one node's inbox, on loopback.

Run: python bench/inbox.py [--requests N] [--concurrency C] [--rounds R]

The receiver is a real `amity serve` process; every request is a distinct Create of a Note,
signed in advance by a second real node (whose actor the receiver fetches once and caches).
The inbox verifies each signature and Digest, checks origins and records the activity's id
once, in a committed transaction, before it answers (a Note is acknowledged, not kept).
The baseline is a bare aiohttp handler, also in its own process, that reads the same requests
and answers 202 without verifying or storing anything. (`amity serve` runs on uvloop where
it is installed; the bare handler on asyncio's own loop.) The two take turns, --rounds times
(fresh activities each round, which of the two goes first alternating), and the medians
are compared. A machine's speed drifts between runs more than between two turns, so the
median of each round's own ratio is printed too: on a shared virtual machine it is the
steadier figure of the two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nodes import free_port, init_school, serve, stop

from amity.node.node import Node
from amity.protocol.httpsig import sign_request

BARE_SERVER = """
import sys
from aiohttp import web
async def inbox(request):
    await request.read()
    return web.json_response({"status": "accepted"}, status=202)
app = web.Application()
app.router.add_post("/inbox", inbox)
app.router.add_get("/nodeinfo/2.1", lambda r: web.json_response({}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def signed_requests(sender: Node, url: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    requests = []
    now = datetime.now(UTC)
    for _ in range(count):
        note_id = f"{sender.urls.id}/notes/{uuid.uuid4()}"
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{note_id}/create",
            "type": "Create",
            "actor": sender.urls.id,
            "object": {
                "id": note_id,
                "type": "Note",
                "attributedTo": sender.urls.id,
                "content": "Hello from our class!",
                "published": now.isoformat(),
            },
        }
        body = json.dumps(activity).encode()
        headers = sign_request(
            method="POST",
            url=url,
            body=body,
            key_id=sender.urls.rsa_key_id,
            private_key=sender.keys.rsa_private,
            now=now,
        )
        headers["Content-Type"] = "application/activity+json"
        requests.append((body, headers))
    return requests


async def blast(url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int) -> float:
    """Requests per second to one inbox; every answer must be 202."""
    return await blast_to([(url, body, headers) for body, headers in requests], concurrency)


async def blast_to(requests: list[tuple[str, bytes, dict[str, str]]], concurrency: int) -> float:
    """Requests per second, each (url, body, headers) posted to its own URL; every answer
    must be 202."""
    queue = list(requests)
    statuses: list[int] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while queue:
                url, body, headers = queue.pop()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses.append(response.status)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    bad = [s for s in statuses if s != 202]
    if bad:
        raise SystemExit(f"{len(bad)} requests were refused, e.g. {bad[0]}")
    return len(statuses) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        receiver_port, sender_port, bare_port = free_port(), free_port(), free_port()
        unlimited = (
            "inbox_per_minute = 10000000\ninbox_burst = 10000000\n"
            "inbox_per_minute_per_address = 10000000\ninbox_burst_per_address = 10000000"
        )
        receiver_data = init_school(directory, "receiver", receiver_port, unlimited)
        sender_data = init_school(directory, "sender", sender_port)
        receiver = serve(receiver_data, receiver_port)
        sender = serve(sender_data, sender_port)
        bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port)])
        try:
            time.sleep(1.0)
            sender_node = Node.open(sender_data)
            inbox = f"http://127.0.0.1:{receiver_port}/inbox"
            warm = signed_requests(sender_node, inbox, 20)  # the receiver caches the key
            asyncio.run(blast(inbox, warm, 4))
            bare_inbox = f"http://127.0.0.1:{bare_port}/inbox"
            amity_rates: list[float] = []
            bare_rates: list[float] = []
            for round_number in range(args.rounds):
                requests = signed_requests(sender_node, inbox, args.requests)
                bare_requests = signed_requests(sender_node, bare_inbox, args.requests)
                turns = [(amity_rates, inbox, requests), (bare_rates, bare_inbox, bare_requests)]
                for rates, url, batch in turns[:: 1 if round_number % 2 == 0 else -1]:
                    rates.append(asyncio.run(blast(url, batch, args.concurrency)))
            sender_node.close()
        finally:
            for process in (receiver, sender, bare):
                stop(process)
    amity_rate, bare_rate = statistics.median(amity_rates), statistics.median(bare_rates)
    print(
        f"{args.requests} signed Create activities, {args.concurrency} concurrent, loopback, "
        f"{args.rounds} rounds (medians)"
    )
    print(f"  amity inbox (verify, check, record once)  {amity_rate:8.0f} /s")
    print(f"  bare aiohttp handler (read, answer 202)   {bare_rate:8.0f} /s")
    print(f"  ratio amity / bare (of the medians)       {amity_rate / bare_rate:8.2f}")
    ratios = [a / b for a, b in zip(amity_rates, bare_rates, strict=True)]
    print(f"  median of the ratios in each round        {statistics.median(ratios):8.2f}")
    each = ", ".join(
        f"{r:.2f} ({a:.0f}/{b:.0f})"
        for r, a, b in zip(ratios, amity_rates, bare_rates, strict=True)
    )
    print(f"  ratio in each round                       {each}")


if __name__ == "__main__":
    main()
