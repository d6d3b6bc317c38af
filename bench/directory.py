"""A school node catches up from a hub that holds 100,000 signed school profiles, then
searches them.

Run: python bench/directory.py [--schools N] [--queries Q]

Set-up (not timed): N generated profiles, each signed with its own school's Ed25519 key,
go straight into a hub's database; an "authors" process on 127.0.0.1 serves the N school
actors (each with its key), as the schools' own nodes would. Then, timed: a fresh school
node (`amity serve`) follows the hub (`amity follow`) and reads its whole directory, checking
each profile's proof against the author key the hub names for it; we time from the follow
until all N are in its directory. Then the node confirms those keys in the background,
fetching every author's actor with a signed GET; we time that too, and read the node's
peak memory (VmHWM) at the end. The
baseline is raw Ed25519 verification (PyNaCl) of the same number of signatures over
canonical bytes, in the same run. Last, Q searches with two or three filters and free text
over the node's directory, through the same function `amity directory` calls.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nodes import amity, free_port, init_school, serve, stop

from amity.federation import directory
from amity.node.clock import format_time, system_clock
from amity.node.node import Node, init_node
from amity.protocol.canonical import canonical_bytes
from amity.protocol.profile_document import profile_document
from amity.protocol.proofs import ProofInfo, sign_document

COUNTRIES = ["MX", "KE", "NP", "AU", "FR", "JP", "BR", "CA", "IN", "NG", "DE", "AR", "VN", "EG"]
ZONES = {
    "MX": "America/Mexico_City",
    "KE": "Africa/Nairobi",
    "NP": "Asia/Kathmandu",
    "AU": "Australia/Adelaide",
    "FR": "Europe/Paris",
    "JP": "Asia/Tokyo",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "IN": "Asia/Kolkata",
    "NG": "Africa/Lagos",
    "DE": "Europe/Berlin",
    "AR": "America/Argentina/Buenos_Aires",
    "VN": "Asia/Ho_Chi_Minh",
    "EG": "Africa/Cairo",
}
LANGUAGES = ["en", "es", "fr", "pt", "sw", "ja", "de", "ar", "hi", "vi", "ne", "zh"]
SUBJECTS = ["science", "environment", "art", "history", "music", "mathematics", "languages"]
WORDS = ["climate", "water", "robots", "poetry", "farm", "river", "coding", "football", "music"]
# Descriptions draw 12 words from a few hundred (plus one of WORDS), so a searched word
# matches a few per cent of schools, as real free text would, not nearly all of them.
FILLER = [
    f"{a}{b}"
    for a in ("sun", "sea", "hill", "oak", "fox", "owl", "bee", "ice", "sky", "elm")
    for b in (
        "park",
        "lab",
        "club",
        "path",
        "camp",
        "team",
        "yard",
        "hall",
        "fair",
        "band",
        "trip",
        "show",
        "week",
        "game",
        "book",
        "cafe",
        "kite",
        "boat",
        "farm",
        "art",
        "map",
        "tree",
        "wind",
        "rock",
        "bird",
        "fish",
    )
]

AUTHORS = """
import hashlib, json, sys
from aiohttp import web
from amity.protocol.actor import ActorUrls, actor_document
from nacl.signing import SigningKey
base, pem = sys.argv[1], open(sys.argv[2]).read()
def seed(name): return hashlib.sha256(b"bench-school-" + name.encode()).digest()
async def actor(request):
    name = request.match_info["name"]
    doc = actor_document(ActorUrls(base, name), "school", name=name, summary=None,
        rsa_public_pem=pem, ed25519_public=bytes(SigningKey(seed(name)).verify_key),
        published="2026-01-01T00:00:00Z", has_profile=True)
    return web.Response(body=json.dumps(doc), content_type="application/activity+json")
app = web.Application()
app.router.add_get("/actors/{name}", actor)
web.run_app(app, host="127.0.0.1", port=int(base.rsplit(":", 1)[1]), print=None, access_log=None)
"""


def seed_of(name: str) -> bytes:
    return hashlib.sha256(b"bench-school-" + name.encode()).digest()


def generated_profile(rng: random.Random, n: int) -> dict[str, Any]:
    country = rng.choice(COUNTRIES)
    low = rng.randint(5, 14)
    return {
        "name": f"School {n} {rng.choice(WORDS).title()} {rng.choice(['Primary', 'Academy'])}",
        "country": country,
        "locality": f"Town {rng.randint(1, 5000)}",
        "timezone": ZONES[country],
        "languages": {
            "instruction": rng.sample(LANGUAGES, 1),
            "learning": rng.sample(LANGUAGES, rng.randint(0, 2)),
        },
        "ages": [low, low + rng.randint(1, 4)],
        "subjects": rng.sample(SUBJECTS, rng.randint(1, 3)),
        "modes": rng.sample(["async", "live"], rng.randint(1, 2)),
        "school_days": ["mon", "tue", "wed", "thu", "fri"],
        "school_hours": ["08:00", "14:00"],
        "capacity": rng.randint(1, 5),
        "description": " ".join([rng.choice(WORDS), *rng.sample(FILLER, 11)]),
    }


def build_hub(tmp: Path, hub_port: int, authors_base: str, count: int) -> tuple[Path, list[bytes]]:
    """The hub's data directory holding `count` signed profiles; returns it and the
    canonical bytes signed for each (for the baseline)."""
    rng = random.Random(7)
    data = tmp / "hub"
    node = init_node(data, handle="hub", base_url=f"http://127.0.0.1:{hub_port}", kind="hub")
    now = format_time(system_clock())
    signed_bytes: list[bytes] = []
    with node:
        db = node.store.db
        with db.atomic():
            for n in range(count):
                name = f"s{n}"
                actor = f"{authors_base}/actors/{name}"
                document = profile_document(
                    generated_profile(rng, n),
                    profile_id=f"{actor}/profile",
                    actor_id=actor,
                    published=now,
                    updated=now,
                )
                seed = seed_of(name)
                signed = sign_document(document, seed, f"{actor}#ed25519-key", now)
                # As the hub would store it after checking the proof with the author's key.
                proof = ProofInfo(f"{actor}#ed25519-key", now, bytes(SigningKey(seed).verify_key))
                directory.store_profile(db, signed, time.time(), None, proof, time.time())
                if n < 20_000:
                    signed_bytes.append(canonical_bytes(document))
    return data, signed_bytes


def raw_verify_rate(messages: list[bytes]) -> float:
    keys = [SigningKey(seed_of(f"s{n}")) for n in range(len(messages))]
    signed = [(k.verify_key, k.sign(m)) for k, m in zip(keys, messages, strict=True)]
    start = time.perf_counter()
    for verify_key, message in signed:
        verify_key.verify(message)
    return len(signed) / (time.perf_counter() - start)


def count_listings(data: Path) -> int:
    with Node.open(data) as node:
        return directory.count_listings(node.store.db)


def unconfirmed(data: Path) -> int:
    with Node.open(data) as node:
        row = node.store.db.execute("SELECT count(*) FROM directory WHERE key_confirmed_at IS NULL")
        return int(row.fetchone()[0])


def peak_memory_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def search_times(data: Path, queries: int) -> tuple[list[float], int]:
    rng = random.Random(11)
    times, found = [], 0
    with Node.open(data) as node:
        db, now = node.store.db, node.now()
        for _ in range(queries):
            filters = directory.Filters(
                country=rng.choice(COUNTRIES),
                language=rng.choice(LANGUAGES),
                age=rng.randint(6, 16) if rng.random() < 0.5 else None,
                subject=rng.choice(SUBJECTS) if rng.random() < 0.5 else None,
                text=rng.choice(WORDS),
                updated_since=format_time(system_clock().replace(year=2020)),
                now=now,
            )
            start = time.perf_counter()
            rows = directory.search(db, filters, 50, 0)
            directory.summaries(db, rows, now, "")
            times.append((time.perf_counter() - start) * 1000)
            found += len(rows)
    return times, found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schools", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        hub_port, authors_port, school_port = free_port(), free_port(), free_port()
        authors_base = f"http://127.0.0.1:{authors_port}"
        started = time.perf_counter()
        hub_data, messages = build_hub(tmp, hub_port, authors_base, args.schools)
        print(
            f"set-up: {args.schools:,} signed profiles in the hub in "
            f"{time.perf_counter() - started:.1f} s"
        )
        pem_file = tmp / "rsa.pem"
        with Node.open(hub_data) as hub:
            pem_file.write_text(hub.keys.rsa_public_pem)
        authors = subprocess.Popen([sys.executable, "-c", AUTHORS, authors_base, str(pem_file)])
        hub_process = serve(hub_data, hub_port)
        school = init_school(tmp, "watcher", school_port)
        school_process = serve(school, school_port)
        try:
            time.sleep(1.0)  # the authors process is up by now
            start = time.perf_counter()
            amity(
                "follow",
                f"http://127.0.0.1:{hub_port}/actors/hub",
                "--data",
                str(school),
                "--allow-private-network",
            )
            last, last_change = 0, time.perf_counter()
            while True:
                held = count_listings(school) - 1  # its own listing is there from the start
                if held >= args.schools:
                    break
                if held != last:
                    last, last_change = held, time.perf_counter()
                elif time.perf_counter() - last_change > 60:
                    raise SystemExit(f"sync stalled at {held:,} of {args.schools:,}")
                time.sleep(0.25)
            elapsed = time.perf_counter() - start
            # Then, in the background, the node confirms each key with its author's actor.
            confirm_start = time.perf_counter()
            while unconfirmed(school) > 0:
                time.sleep(0.25)
            confirm_elapsed = time.perf_counter() - confirm_start
            peak = peak_memory_kib(school_process.pid)
        finally:
            stop(school_process)
            stop(hub_process)
            authors.terminate()
            authors.wait()
        raw = raw_verify_rate(messages)
        rate = args.schools / elapsed
        print(
            f"catch-up: {args.schools:,} profiles in {elapsed:.1f} s = {rate:,.0f} profiles/s "
            "(each proof checked with the key the hub names, endorsements included)"
        )
        print(f"raw Ed25519 verify (PyNaCl): {raw:,.0f}/s   ratio: {rate / raw:.3f}")
        print(
            f"key confirmation: {args.schools:,} author actors fetched (signed GETs) and "
            f"checked in {confirm_elapsed:.1f} s = {args.schools / confirm_elapsed:,.0f}/s"
        )
        print(f"school node's peak memory (VmHWM): {peak / 1024:,.0f} MiB")
        size = sum(p.stat().st_size for p in school.glob("amity.db*"))
        print(f"school node's database: {size / 2**20:,.0f} MiB")
        times, found = search_times(school, args.queries)
        cuts = statistics.quantiles(times, n=20)
        print(
            f"search ({args.queries} queries: country + language [+ age] [+ subject] + text, "
            f"{found / args.queries:.1f} results each on average): "
            f"p50 {statistics.median(times):.1f} ms, p95 {cuts[18]:.1f} ms"
        )


if __name__ == "__main__":
    main()
