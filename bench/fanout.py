"""One profile update delivered to 1,000 follower inboxes on loopback.

Run: python bench/fanout.py [--followers N] [--hosts H] [--peers amity,mastodon] [--hosted N]

A real `amity serve` school node has N followers whose inboxes are spread over H receiver
"hosts" (ports of one lightweight aiohttp receiver process on 127.0.0.1; a port counts as a
host for the per-host limits). `amity profile import` queues one signed Update per inbox;
we time from the end of that command until the last POST has arrived (the command wakes
the serving node as it closes the database, so the first POSTs may arrive before its end).
The baseline sends the same N POSTs, unsigned, from a plain aiohttp client loop with the
same total concurrency (32, the delivery worker's limit), right after each case.

Two cases, one after the other in the same run, each with its own school node: followers
whose cached actor documents are Amity actors (signed RFC 9421 Ed25519, on the event loop)
and Mastodon-shaped ones (signed rsa-sha256, with the signing helper process). With
`--hosted N`, each case runs again for a school hosted by a node with N other schools.
For the rsa-sha256 case it also prints how long N RSA-2048 signatures alone take on one
core of this machine: the signing helper cannot finish before that.
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

from amity.federation import actor_cache, relations
from amity.node.keys import generate_keys
from amity.node.node import Node, init_node
from amity.protocol.actor import ActorUrls, actor_document
from amity.protocol.httpsig import rsa_sign

RECEIVER = """
import asyncio, json, sys, time
from aiohttp import web
ports = [int(p) for p in sys.argv[1].split(",")]
arrivals = []
rfc9421 = []
async def inbox(request):
    await request.read()
    arrivals.append(time.time())
    rfc9421.append("Signature-Input" in request.headers)
    return web.Response(status=202)
async def stats(request):
    return web.json_response({"count": len(arrivals), "first": min(arrivals, default=0),
                              "last": max(arrivals, default=0),
                              "rfc9421": sum(rfc9421)})
async def reset(request):
    arrivals.clear()
    rfc9421.clear()
    return web.json_response({})
async def main():
    app = web.Application()
    app.router.add_post("/inbox/{n}", inbox)
    app.router.add_post("/u/{n}/inbox", inbox)
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
    """count, first and last arrival times, and how many carried an RFC 9421 signature."""
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


def follower_actor(kind: str, port: int, i: int, pem: str, ed25519: bytes) -> dict[str, object]:
    """The cached actor document of follower `i`: an Amity school's or a Mastodon user's."""
    urls = ActorUrls(f"http://127.0.0.1:{port}", f"f{i}")
    if kind == "amity":
        document = actor_document(
            urls,
            "school",
            name=f"f{i}",
            summary=None,
            rsa_public_pem=pem,
            ed25519_public=ed25519,
            published="2026-01-01T00:00:00Z",
            has_profile=True,
        )
    else:
        document = {
            "id": urls.id,
            "type": "Person",
            "preferredUsername": f"f{i}",
            "publicKey": {"id": f"{urls.id}#main-key", "owner": urls.id, "publicKeyPem": pem},
        }
    document["inbox"] = f"http://127.0.0.1:{port}/inbox/{i}"
    document.pop("endpoints", None)
    return document


def hosting_node(directory: Path, port: int, others: int) -> Path:
    """A ministry node hosting `others` schools and then `school`, whose fan-out is timed."""
    data = directory / "ministry"
    node = init_node(data, handle="ministry", base_url=f"http://127.0.0.1:{port}", kind="authority")
    keys = generate_keys()  # shared by the other schools: only their number matters here
    for n in range(others):
        node.add_school(f"other-{n:05d}", profile_json(), keys)
    node.add_school("school", profile_json())
    node.close()
    return data


def run_case(
    kind: str, args: argparse.Namespace, directory: Path, hosted: int | None = None
) -> tuple[float, float, float, int]:
    """(first, last arrival, plain loop) in seconds for followers of `kind`, and how many of
    the node's POSTs were signed with RFC 9421; with `hosted`, the school is one of that
    many more hosted by one node."""
    taken: set[int] = set()
    while len(taken) < args.hosts + 1:  # distinct ports: one for the school, the rest hosts
        taken.add(free_port())
    school_port, *ports = sorted(taken)
    inboxes = [f"http://127.0.0.1:{ports[i % len(ports)]}/inbox/{i}" for i in range(args.followers)]
    keys = generate_keys()  # one key pair for every follower's document: only cached here
    if hosted is None:
        data = init_school(directory / kind, "school", school_port)
    else:
        data = hosting_node(directory / f"{kind}-hosted", school_port, hosted)
    node = Node.open(data, school="school")
    with node.store.db.atomic():
        for i, inbox in enumerate(inboxes):
            port = ports[i % len(ports)]
            document = follower_actor(kind, port, i, keys.rsa_public_pem, keys.ed25519_public)
            assert actor_cache.cache_actor(node.store.db, document, time.time())
            relations.add_follower(
                node.store.db, "school", str(document["id"]), inbox, f"follow-{i}", "2026-01-01"
            )
    node.close()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, ",".join(map(str, ports))])
    school = serve(data, school_port)
    try:
        receiver_up(receiver, ports[0])
        time.sleep(1.0)
        profile = profile_json()
        profile["capacity"] = 9
        changed = directory / f"{kind}-changed.json"
        changed.write_text(json.dumps(profile))
        amity("profile", "import", str(changed), "--data", str(data), "--school", "school")
        start = time.time()
        result = wait_for(ports[0], args.followers)
        first, last = result["first"] - start, result["last"] - start
        signed_rfc9421 = int(result["rfc9421"])

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
    return first, last, plain, signed_rfc9421


def rsa_signing_alone(count: int) -> float:
    """Seconds for `count` rsa-sha256 signatures of request-sized messages, in one process."""
    key = generate_keys().rsa_private
    messages = [
        f"(request-target): post /inbox/{i}\nhost: 127.0.0.1".encode() for i in range(count)
    ]
    start = time.perf_counter()
    for message in messages:
        rsa_sign(key, message)
    return time.perf_counter() - start


SIGNED_WITH = {
    "amity": "Amity peers, RFC 9421 Ed25519",
    "mastodon": "Mastodon-shaped peers, rsa-sha256",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--peers", default="amity,mastodon", help="the cases, in order")
    parser.add_argument(
        "--hosted",
        type=int,
        default=None,
        metavar="N",
        help="also run each case for a school hosted by a node with N other schools",
    )
    args = parser.parse_args()
    kinds = args.peers.split(",")
    if not set(kinds) <= set(SIGNED_WITH):
        raise SystemExit(f"error: --peers takes amity and/or mastodon, not {args.peers!r}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            results[kind] = run_case(kind, args, Path(tmp))
            if args.hosted is not None:
                results[f"{kind}-hosted"] = run_case(kind, args, Path(tmp), args.hosted)
    signing = rsa_signing_alone(args.followers) if "mastodon" in kinds else None
    print(f"1 profile Update to {args.followers} inboxes on {args.hosts} loopback hosts")
    for case, (first, last, plain, signed_rfc9421) in results.items():
        kind, _, hosted = case.partition("-")
        where = f", a school hosted with {args.hosted} others" if hosted else ""
        print(f"{SIGNED_WITH[kind]}{where} ({signed_rfc9421} of the node's POSTs with RFC 9421):")
        print(
            f"  amity: queued by `profile import`, signed per attempt, first arrival "
            f"{first:6.2f} s (below 0: the node was woken before the command had exited)"
        )
        print(f"  amity: last arrival                            {last:6.2f} s")
        print(f"  plain aiohttp loop, unsigned, same concurrency {plain:6.2f} s")
        print(f"  ratio amity / plain                            {last / plain:6.2f}")
        print(
            f"  amity from first to last arrival               {last - first:6.2f} s "
            f"(ratio {(last - first) / plain:.2f})"
        )
        if kind == "mastodon" and signing is not None:
            print(
                f"  {args.followers} RSA signatures alone, one core       {signing:6.2f} s "
                f"(ratio {signing / plain:.2f}: the helper's floor)"
            )


if __name__ == "__main__":
    main()
