"""Partner suggestions for one school against a directory of 100,000 schools.

Run: python bench/matching.py [--schools N] [--runs R] [--data DIR]

Set-up (not timed): a school node's data directory whose directory holds N generated
listings (about 40 countries and their zones, half-hour and 45-minute offsets included,
Sunday-to-Thursday weeks, northern and southern terms, languages taught and learned,
ages, subjects, modes, free places, profiles updated over the past year), each signed with
its own school's Ed25519 key and stored by `directory.store_profile`, as a node stores what
it syncs. `--data DIR` keeps that directory (or reuses it when it is already there).

Timed, in this process:
- warm ranking, node side: `node.matching.ranked` for R different schools (R countries,
  languages, timetables), for the coming week and two weeks of clock changes, best 10:
  what a serving node (or a hub answering a match query) does per request, the directory's
  index built already. Median and p95 ms.
- the index build: reading every listing and building the index, which a process does once
  (and again when a listing was dropped, or after many changes); then, after 120 listings
  changed, the first ranking (which brings the index up to date) and the next ones.
- the baseline: `matching.rank` over the same School objects (every school evaluated), for
  the first few of the same schools and weeks, with the ratio; the two results are checked
  to be the same.
Then, cold: `amity match --json` as a new process over the same data (Python start-up,
imports, opening the node, reading the listings SQLite's pre-filter lets through, indexing
and ranking them), against `python -c pass` and against the imports alone.
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
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from amity.federation import directory
from amity.node import matching as node_matching
from amity.node.clock import format_time, system_clock
from amity.node.node import Node, init_node
from amity.protocol.live_window import coming_monday
from amity.protocol.matching import Match, MatchContext, School, rank, school_from_profile
from amity.protocol.profile import validate_profile
from amity.protocol.profile_document import profile_document
from amity.protocol.proofs import ProofInfo, sign_document

ROOT = Path(__file__).resolve().parent.parent
NORTH = "north"
SOUTH = "south"
# country: (zones, languages of instruction, hemisphere of its school year, weekend)
COUNTRIES: dict[str, tuple[list[str], list[str], str, str]] = {
    "GB": (["Europe/London"], ["en"], NORTH, "satsun"),
    "IE": (["Europe/Dublin"], ["en", "ga"], NORTH, "satsun"),
    "FR": (["Europe/Paris"], ["fr"], NORTH, "satsun"),
    "DE": (["Europe/Berlin"], ["de"], NORTH, "satsun"),
    "ES": (["Europe/Madrid", "Atlantic/Canary"], ["es", "ca"], NORTH, "satsun"),
    "IT": (["Europe/Rome"], ["it"], NORTH, "satsun"),
    "PL": (["Europe/Warsaw"], ["pl"], NORTH, "satsun"),
    "UA": (["Europe/Kyiv"], ["uk"], NORTH, "satsun"),
    "TR": (["Europe/Istanbul"], ["tr"], NORTH, "satsun"),
    "MA": (["Africa/Casablanca"], ["ar", "fr"], NORTH, "satsun"),
    "EG": (["Africa/Cairo"], ["ar"], NORTH, "frisat"),
    "NG": (["Africa/Lagos"], ["en"], NORTH, "satsun"),
    "KE": (["Africa/Nairobi"], ["en", "sw"], NORTH, "satsun"),
    "ZA": (["Africa/Johannesburg"], ["en", "af", "zu"], SOUTH, "satsun"),
    "SA": (["Asia/Riyadh"], ["ar"], NORTH, "frisat"),
    "AE": (["Asia/Dubai"], ["ar", "en"], NORTH, "satsun"),
    "IL": (["Asia/Jerusalem"], ["he", "ar"], NORTH, "frisat"),
    "IR": (["Asia/Tehran"], ["fa"], NORTH, "frisat"),
    "IN": (["Asia/Kolkata"], ["hi", "en", "ta"], NORTH, "satsun"),
    "NP": (["Asia/Kathmandu"], ["ne"], NORTH, "satsun"),
    "BD": (["Asia/Dhaka"], ["bn"], NORTH, "frisat"),
    "CN": (["Asia/Shanghai"], ["zh"], NORTH, "satsun"),
    "JP": (["Asia/Tokyo"], ["ja"], NORTH, "satsun"),
    "KR": (["Asia/Seoul"], ["ko"], NORTH, "satsun"),
    "VN": (["Asia/Ho_Chi_Minh"], ["vi"], NORTH, "satsun"),
    "ID": (["Asia/Jakarta", "Asia/Makassar"], ["id"], NORTH, "satsun"),
    "PH": (["Asia/Manila"], ["en", "tl"], NORTH, "satsun"),
    "AU": (["Australia/Sydney", "Australia/Adelaide", "Australia/Perth"], ["en"], SOUTH, "satsun"),
    "NZ": (["Pacific/Auckland"], ["en", "mi"], SOUTH, "satsun"),
    "US": (
        ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"],
        ["en", "es"],
        NORTH,
        "satsun",
    ),
    "CA": (["America/Toronto", "America/St_Johns"], ["en", "fr"], NORTH, "satsun"),
    "MX": (["America/Mexico_City"], ["es"], NORTH, "satsun"),
    "CO": (["America/Bogota"], ["es"], NORTH, "satsun"),
    "PE": (["America/Lima"], ["es", "qu"], SOUTH, "satsun"),
    "BR": (["America/Sao_Paulo", "America/Manaus"], ["pt"], SOUTH, "satsun"),
    "AR": (["America/Argentina/Buenos_Aires"], ["es"], SOUTH, "satsun"),
    "CL": (["America/Santiago"], ["es"], SOUTH, "satsun"),
}  # fmt: skip
# Many more schools in some countries than in others, as in a real directory.
BIG = ("US", "IN", "BR", "MX", "FR", "DE", "GB", "ES", "JP")
MIDDLE = ("CN", "ID", "NG", "KE")
WEIGHTS = [8 if c in BIG else 3 if c in MIDDLE else 1 for c in COUNTRIES]
LEARNED = ["en", "fr", "es", "de", "zh", "ar", "ja", "pt", "it", "ru"]
SUBJECTS = [
    "science", "environment", "art", "history", "music", "mathematics", "languages",
    "geography", "literature", "physical-education", "computing", "citizenship",
]  # fmt: skip
WEEKDAYS = {
    "satsun": ["mon", "tue", "wed", "thu", "fri"],
    "frisat": ["sun", "mon", "tue", "wed", "thu"],
}
OPENS = ["07:00", "07:30", "07:45", "08:00", "08:15", "08:30", "09:00"]
CLOSES = ["12:30", "13:00", "14:00", "14:30", "15:00", "15:30", "16:00", "17:00"]
TERMS = {
    NORTH: [
        [("2026-09-01", "2026-12-18"), ("2027-01-05", "2027-06-30")],
        [("2026-09-07", "2026-10-23"), ("2026-11-02", "2026-12-21"), ("2027-01-06", "2027-07-02")],
        [("2026-08-24", "2026-12-11"), ("2027-01-11", "2027-05-28")],
    ],
    SOUTH: [
        [("2026-07-20", "2026-12-11"), ("2027-02-01", "2027-06-25")],
        [("2026-07-13", "2026-09-25"), ("2026-10-12", "2026-12-16"), ("2027-01-28", "2027-04-09")],
        [("2026-08-03", "2026-12-18"), ("2027-03-01", "2027-07-09")],
    ],
}


def seed_of(n: int) -> bytes:
    return hashlib.sha256(f"bench-matching-school-{n}".encode()).digest()


def generated_profile(rng: random.Random, n: int) -> dict[str, Any]:
    """A valid import-format profile for school number `n`."""
    country = rng.choices(list(COUNTRIES), WEIGHTS)[0]
    zones, taught, hemisphere, weekend = COUNTRIES[country]
    instruction = [taught[0]] if rng.random() < 0.7 else rng.sample(taught, min(2, len(taught)))
    others = [t for t in LEARNED if t not in instruction]
    learning = rng.sample(others, rng.choice([0, 1, 1, 2, 2, 3]))
    low = rng.randint(4, 16)
    terms = [] if rng.random() < 0.2 else rng.choice(TERMS[hemisphere])
    profile = {
        "name": f"School {n} {rng.choice(['Primary', 'Academy', 'High', 'Community', 'Rural'])}",
        "country": country,
        "locality": f"Town {rng.randint(1, 5000)}",
        "timezone": rng.choice(zones),
        "languages": {"instruction": instruction, "learning": learning},
        "ages": [low, min(19, low + rng.randint(1, 5))],
        "subjects": rng.sample(SUBJECTS, rng.randint(1, 5)),
        "modes": rng.choices([["async", "live"], ["async"], ["live"]], [6, 3, 1])[0],
        "school_days": WEEKDAYS[weekend] if rng.random() < 0.95 else WEEKDAYS[weekend][:4],
        "school_hours": [rng.choice(OPENS), rng.choice(CLOSES)],
        "terms": [{"start": start, "end": end} for start, end in terms],
        "capacity": rng.choices([0, 1, 2, 3, 5], [1, 4, 3, 1, 1])[0],
        "description": "A generated school for the matching benchmark.",
    }  # fmt: skip
    return validate_profile(profile)


def fill_directory(data: Path, count: int) -> None:
    """`count` signed listings in the directory of a new school node at `data`."""
    example = validate_profile(generated_profile(random.Random(1), -1))
    node = init_node(
        data, handle="bench", base_url="http://127.0.0.1:9", kind="school", profile=example
    )
    with node, node.store.db.atomic():
        store_listings(node, range(count), random.Random(7), max_age_days=400)


def store_listings(
    node: Node, numbers: Iterable[int], rng: random.Random, max_age_days: int
) -> None:
    """Signed listings of the schools `numbers`, updated up to `max_age_days` ago (0: now), stored
    as a node stores what it syncs (after checking each proof with its author's key)."""
    now = system_clock()
    db = node.store.db
    for n in numbers:
        actor = f"https://school{n % 997}.example/actors/s{n}"
        age = timedelta(days=rng.randint(0, max_age_days), seconds=rng.randint(0, 86399))
        age = age if max_age_days else timedelta(0)
        stamp = format_time(now - age)
        document = profile_document(
            generated_profile(rng, n),
            profile_id=f"{actor}/profile",
            actor_id=actor,
            published=stamp,
            updated=stamp,
        )
        seed = seed_of(n)
        signed = sign_document(document, seed, f"{actor}#ed25519-key", stamp)
        proof = ProofInfo(f"{actor}#ed25519-key", stamp, bytes(SigningKey(seed).verify_key))
        directory.store_profile(db, signed, time.time(), None, proof, time.time())


def me_schools(runs: int) -> list[School]:
    """`runs` schools to rank the directory for (not in it)."""
    rng = random.Random(23)
    return [
        school_from_profile(f"https://me{n}.example/actors/me", generated_profile(rng, 10**7 + n))
        for n in range(runs)
    ]


def weeks_of(now: datetime) -> list[date]:
    """The coming week, and the weeks Europe and North America leave summer time."""
    return [coming_monday(now), date(2026, 10, 26), date(2026, 11, 2)]


def summary(matches: list[Match]) -> list[tuple[str, float, int]]:
    return [(m.other.actor, m.score, m.live_minutes) for m in matches]


def milliseconds(seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else ms[0]
    return f"median {statistics.median(ms):,.1f} ms, p95 {p95:,.1f} ms"


def process_times(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schools", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200, help="schools ranked (warm)")
    parser.add_argument("--baseline-runs", type=int, default=20)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--data", type=Path, help="keep (or reuse) the node's data here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        data = args.data or Path(tmp_name) / "bench"
        if not (data / "amity.toml").exists():
            started = time.perf_counter()
            fill_directory(data, args.schools)
            print(
                f"set-up: {args.schools:,} signed listings stored in {data} in "
                f"{time.perf_counter() - started:.1f} s"
            )
        run(data, args)


def run(data: Path, args: argparse.Namespace) -> None:
    with Node.open(data) as node:
        listings = directory.count_listings(node.store.db) - 1  # less its own
        print(f"directory: {listings:,} listings besides the node's own school")
        weeks = weeks_of(node.clock())
        mes = me_schools(args.runs)
        start = time.perf_counter()
        node_matching.ranked(node, mes[0], weeks[0], 10)
        build = time.perf_counter() - start
        print(f"index build (the first ranking in a process): {build:.2f} s")
        warm, found = [], 0
        for n, me in enumerate(mes):
            week = weeks[n % len(weeks)]
            start = time.perf_counter()
            matches = node_matching.ranked(node, me, week, 10)
            warm.append(time.perf_counter() - start)
            found += len(matches)
        print(
            f"warm ranking, node side ({len(mes)} schools, best 10, {found / len(mes):.1f} "
            f"found each on average): {milliseconds(warm)}"
        )
        # The directory changes (a sync brings newer versions of 100 listings and 20 new
        # ones): the next ranking brings the index up to date first.
        size = listings
        store_listings(
            node,
            [*list(range(0, size, max(1, size // 100)))[:100], *range(size, size + 20)],
            random.Random(9),
            0,
        )
        refresh, later = [], []
        for n, me in enumerate(mes[:20]):
            start = time.perf_counter()
            node_matching.ranked(node, me, weeks[n % len(weeks)], 10)
            (refresh if n == 0 else later).append(time.perf_counter() - start)
        print(
            f"after 120 listings changed: first ranking {refresh[0] * 1000:,.0f} ms (the index "
            f"brought up to date), then {milliseconds(later)}"
        )
        index = node_matching._directory_index(node).index
        schools = list(index.schools)
        fast, plain = [], []
        for n, me in enumerate(mes[: args.baseline_runs]):
            ctx = MatchContext(week=weeks[n % len(weeks)], now=node.clock())
            start = time.perf_counter()
            quick = index.rank(me, ctx, 10)
            fast.append(time.perf_counter() - start)
            start = time.perf_counter()
            expected = rank(me, schools, ctx, 10)
            plain.append(time.perf_counter() - start)
            if summary(quick) != summary(expected):
                raise SystemExit(f"the index ranks differently for {me.actor}")
        ratio = statistics.median(plain) / statistics.median(fast)
        print(
            f"baseline, matching.rank over all {len(schools):,} School objects "
            f"({len(plain)} schools): {milliseconds(plain)}; the index on the same: "
            f"{milliseconds(fast)}; ratio of medians {ratio:,.0f}x; same results"
        )
    python = [sys.executable]
    cli = [*python, "-m", "amity.cli", "match", "--json", "--data", str(data)]
    cold = process_times(cli, args.cold_runs)
    bare = process_times([*python, "-c", "pass"], args.cold_runs)
    imports = process_times([*python, "-c", "import amity.cli.main"], args.cold_runs)
    print(
        f"cold `amity match --json` process ({args.cold_runs} runs): {milliseconds(cold)}; "
        f"of which Python start-up {statistics.median(bare) * 1000:,.0f} ms, start-up and "
        f"imports {statistics.median(imports) * 1000:,.0f} ms (median); the rest is opening "
        "the node, reading and indexing the pre-filtered listings, and ranking"
    )


if __name__ == "__main__":
    main()
