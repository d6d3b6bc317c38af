"""One profile update delivered to 1,000 follower inboxes on loopback.

Run: python bench/fanout.py [--followers N] [--hosts H]

A real `amity serve` school node has N followers whose inboxes are spread over H receiver
"hosts" (ports of one lightweight aiohttp receiver process on 127.0.0.1; a port counts as a
host for the per-host limits). `amity profile import` queues one signed Update per inbox;
we time from the end of that command until the last POST has arrived (the command wakes
the serving node as it closes the database, so the first POSTs may arrive before its end).
The baseline sends the same N POSTs, unsigned, from a plain aiohttp client loop with the
same total concurrency (32, the delivery worker's limit), in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nodes import amity, free_port, init_school, profile_json, serve, stop

from amity.federation import relations
from amity.node.node import Node

RECEIVER = """
import asyncio, json, sys, time
from aiohttp import web
ports = [int(p) for p in sys.argv[1].split(",")]
arrivals = []
async def inbox(request):
    await request.read()
    arrivals.append(time.time())
    return web.Response(status=202)
async def stats(request):
    return web.json_response({"count": len(arrivals), "first": min(arrivals, default=0),
                              "last": max(arrivals, default=0)})
async def reset(request):
    arrivals.clear()
    return web.json_response({})
async def main():
    app = web.Application()
    app.router.add_post("/inbox/{n}", inbox)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()
asyncio.run(main())
"""


def stats(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as response:
        return dict(json.loads(response.read()))


def receiver_up(receiver: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 30
    while receiver.poll() is None and time.monotonic() < deadline:
        try:
            stats(port)
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the receiver did not start (a port taken meanwhile?); run again")


def wait_for(port: int, count: int, timeout: float = 300) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = stats(port)
        if current["count"] >= count:
            return current
        time.sleep(0.02)
    raise SystemExit(f"only {stats(port)['count']} of {count} arrived")


async def plain_loop(inboxes: list[str], body: bytes) -> None:
    connector = aiohttp.TCPConnector(limit=32, limit_per_host=4)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(url: str) -> None:
            async with session.post(
                url, data=body, headers={"Content-Type": "application/activity+json"}
            ) as r:
                await r.read()

        await asyncio.gather(*(post(url) for url in inboxes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=50)
    args = parser.parse_args()
    taken: set[int] = set()
    while len(taken) < args.hosts + 1:  # distinct ports: one for the school, the rest hosts
        taken.add(free_port())
    school_port, *ports = sorted(taken)
    inboxes = [f"http://127.0.0.1:{ports[i % len(ports)]}/inbox/{i}" for i in range(args.followers)]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        data = init_school(directory, "school", school_port)
        node = Node.open(data)
        with node.store.db.atomic():
            for i, inbox in enumerate(inboxes):
                relations.add_follower(
                    node.store.db,
                    "school",
                    f"http://127.0.0.1:{ports[0]}/u/{i}",
                    inbox,
                    f"follow-{i}",
                    "2026-01-01T00:00:00Z",
                )
        node.close()
        receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, ",".join(map(str, ports))])
        school = serve(data, school_port)
        try:
            receiver_up(receiver, ports[0])
            time.sleep(1.0)
            profile = profile_json()
            profile["capacity"] = 9
            changed = directory / "changed.json"
            changed.write_text(json.dumps(profile))
            amity("profile", "import", str(changed), "--data", str(data))
            start = time.time()
            result = wait_for(ports[0], args.followers)
            amity_first, amity_last = result["first"] - start, result["last"] - start

            urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{ports[0]}/reset", method="POST")
            ).read()
            body = changed.read_bytes()
            start = time.time()
            asyncio.run(plain_loop(inboxes, body))
            plain = wait_for(ports[0], args.followers)["last"] - start
        finally:
            stop(school)
            receiver.kill()
            receiver.wait()
    print(f"1 profile Update to {args.followers} inboxes on {args.hosts} loopback hosts")
    print(
        f"  amity: queued by `profile import`, signed per attempt, first arrival "
        f"{amity_first:6.2f} s (below 0: the node was woken before the command had exited)"
    )
    print(f"  amity: last arrival                            {amity_last:6.2f} s")
    print(f"  plain aiohttp loop, unsigned, same concurrency {plain:6.2f} s")
    print(f"  ratio amity / plain                            {amity_last / plain:6.2f}")
    print(
        f"  amity from first to last arrival               {amity_last - amity_first:6.2f} s "
        f"(ratio {(amity_last - amity_first) / plain:.2f})"
    )


if __name__ == "__main__":
    main()
