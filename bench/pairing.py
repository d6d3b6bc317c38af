"""A pairing round over 1,000 / 10,000 / 100,000 generated schools.

Run: python bench/pairing.py [--sizes 10000,100000] [--exact-at 10000]

The schools are spread over 24 countries on every continent, each with its own zone (and
daylight-saving rules), languages of instruction weighted as in the world's schools
(English, Spanish, French, Arabic, Portuguese, ... most often), learning one or two
others, age ranges of primary and secondary schools, 1 to 3 free places, school days (some
Sunday-to-Thursday) and hours. For each size it prints: seconds (candidates and their
scores, the assignment, the rest) and the CPU seconds of the process (all its threads; on
a shared virtual machine they drift between runs as much as the seconds), peak memory
(the peak RSS of a process that runs that size alone), the load average before and after
(the machine is shared), the share paired against the bound (schools with at least one candidate
after pruning), the total score, the relaxation's bound (docs/protocol.md, "Pairing
rounds") and a greedy baseline (best remaining pair first, same candidates) in the same
run. At --exact-at it also runs an integer program (HiGHS, scipy) for the most schools
any assignment pairs.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amity.protocol.matching import MatchContext, School
from amity.protocol.pairing import pairing_round
from amity.protocol.pairing_candidates import candidate_graph
from amity.protocol.pairing_lp import COVER_POINTS
from amity.protocol.pairing_score import PairScorer, pair_explainer

WEEK = date(2026, 10, 26)  # Europe has left summer time, North America not yet
NOW = datetime(2026, 10, 20, tzinfo=UTC)
# country: (zone, languages of instruction, school days)
COUNTRIES = {
    "MX": ("America/Mexico_City", ["es"], "mon-fri"),
    "AR": ("America/Argentina/Buenos_Aires", ["es"], "mon-fri"),
    "CO": ("America/Bogota", ["es"], "mon-fri"),
    "ES": ("Europe/Madrid", ["es", "ca"], "mon-fri"),
    "US": ("America/New_York", ["en", "es"], "mon-fri"),
    "CA": ("America/Toronto", ["en", "fr"], "mon-fri"),
    "GB": ("Europe/London", ["en"], "mon-fri"),
    "IE": ("Europe/Dublin", ["en"], "mon-fri"),
    "FR": ("Europe/Paris", ["fr"], "mon-fri"),
    "SN": ("Africa/Dakar", ["fr"], "mon-fri"),
    "DE": ("Europe/Berlin", ["de"], "mon-fri"),
    "KE": ("Africa/Nairobi", ["en", "sw"], "mon-fri"),
    "NG": ("Africa/Lagos", ["en"], "mon-fri"),
    "EG": ("Africa/Cairo", ["ar"], "sun-thu"),
    "JO": ("Asia/Amman", ["ar"], "sun-thu"),
    "MA": ("Africa/Casablanca", ["ar", "fr"], "mon-fri"),
    "BR": ("America/Sao_Paulo", ["pt"], "mon-fri"),
    "PT": ("Europe/Lisbon", ["pt"], "mon-fri"),
    "IN": ("Asia/Kolkata", ["en", "hi"], "mon-fri"),
    "NP": ("Asia/Kathmandu", ["ne", "en"], "sun-thu"),
    "JP": ("Asia/Tokyo", ["ja"], "mon-fri"),
    "VN": ("Asia/Ho_Chi_Minh", ["vi"], "mon-fri"),
    "AU": ("Australia/Sydney", ["en"], "mon-fri"),
    "NZ": ("Pacific/Auckland", ["en"], "mon-fri"),
}
WEIGHTS = {"US": 8, "IN": 8, "BR": 5, "MX": 5, "NG": 4, "GB": 4, "FR": 4, "KE": 3, "EG": 3}
LEARNED = ["en", "en", "en", "es", "fr", "fr", "de", "ar", "zh", "ja", "pt"]
DAYS = {
    "mon-fri": ("mon", "tue", "wed", "thu", "fri"),
    "sun-thu": ("sun", "mon", "tue", "wed", "thu"),
}
AGES = [(6, 11), (9, 12), (11, 14), (12, 15), (14, 18), (15, 18), (8, 13)]


def generated_schools(count: int, seed: int = 7) -> list[School]:
    """`count` schools with a realistic spread of countries, languages, ages and hours."""
    rng = random.Random(seed)
    countries = list(COUNTRIES)
    weights = [WEIGHTS.get(c, 1) for c in countries]
    schools = []
    for n in range(count):
        country = rng.choices(countries, weights)[0]
        zone, spoken, days = COUNTRIES[country]
        instruction = tuple(spoken[: 1 + (rng.random() < 0.3)])
        learning = tuple(
            sorted({lang for lang in rng.sample(LEARNED, 2) if lang not in instruction})[
                : rng.randint(1, 2)
            ]
        )
        start = rng.choice([7, 8, 8, 9])
        schools.append(
            School(
                actor=f"https://s{n}.example/actors/s{n}",
                name=f"School {n}",
                country=country,
                timezone=zone,
                instruction=instruction,
                learning=learning,
                ages=rng.choice(AGES),
                subjects=frozenset(rng.sample(["science", "art", "music", "history"], 2)),
                modes=frozenset(rng.choice([("async",), ("async", "live"), ("async", "live")])),
                school_days=DAYS[days],
                school_hours=(f"{start:02d}:00", f"{start + rng.choice([5, 6, 7]):02d}:00"),
                terms=(),
                capacity=rng.choice([1, 1, 2, 2, 3]),
            )
        )
    return schools


def greedy(capacity: list[int], edges: dict[tuple[int, int], float]) -> tuple[int, float, int]:
    """Best remaining pair first: schools paired, total score, pairs."""
    degree = [0] * len(capacity)
    total = 0.0
    pairs = 0
    for (u, v), score in sorted(edges.items(), key=lambda item: -item[1]):
        if degree[u] < capacity[u] and degree[v] < capacity[v]:
            degree[u] += 1
            degree[v] += 1
            total += score
            pairs += 1
    return sum(1 for d in degree if d), total, pairs


def max_coverage(capacity: list[int], edges: list[tuple[int, int]]) -> int | None:
    """The most schools any assignment of these candidate pairs covers within capacity: an
    integer program (HiGHS through scipy), None if it does not finish in 300 s."""
    n, m = len(capacity), len(edges)
    rows = lil_matrix((2 * n, m + n))  # variables: x_e (pair used), then y_v (covered)
    for index, (u, v) in enumerate(edges):
        for x in (u, v):
            rows[x, index] = 1  # partners <= capacity
            rows[n + x, index] = -1  # covered <= partners
    for x in range(n):
        rows[n + x, m + x] = 1
    result = milp(
        c=np.array([0.0] * m + [-1.0] * n),
        constraints=LinearConstraint(rows.tocsr(), -np.inf, np.array([*capacity, *[0] * n])),
        integrality=np.ones(m + n),
        bounds=Bounds(0, 1),
        options={"time_limit": 300},
    )
    return round(-result.fun) if result.success else None


def run(count: int, exact: bool) -> None:
    schools = generated_schools(count)
    ctx = MatchContext(week=WEEK, now=NOW)
    load = os.getloadavg()
    marks: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "matching" and done == 0:
            marks.setdefault("assigning", time.perf_counter())
        if done == total:
            marks.setdefault(stage, time.perf_counter())

    started, cpu = time.perf_counter(), time.process_time()
    scorer = PairScorer(schools, ctx)
    report = pairing_round(schools, scorer, pair_explainer(ctx), WEEK, progress=progress)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    bound = report.with_candidates
    pruned = marks.get("candidates", started) - started
    assigning = marks.get("matching", started) - marks.get("assigning", started)
    after = os.getloadavg()
    print(
        f"\n{count:,} schools: {seconds:.1f} s ({pruned:.1f} s candidates and scores, "
        f"{assigning:.1f} s assignment, {seconds - pruned - assigning:.1f} s the rest); "
        f"{cpu:.1f} s of CPU; peak memory (RSS) {peak / 1024:.0f} MiB; load average "
        f"{load[0]:.1f} before, {after[0]:.1f} after (2 cores)"
    )
    print(
        f"  candidate pairs scored {report.scored:,}, kept {report.edges:,}; live minutes "
        f"computed for {scorer.class_pairs:,} pairs of {scorer.classes} timetables"
    )
    print(f"  exact: {report.exact}; phases {report.phases}")
    print(
        f"  paired {report.paired:,} of bound {bound:,} ({report.paired / max(bound, 1):.2%}); "
        f"total score {report.total_score:,.0f}; pairs {len(report.pairs):,}"
    )
    if report.bound is not None:
        value = COVER_POINTS * report.paired + report.total_score
        print(
            f"  relaxation ({report.relaxation}) bound "
            f"{report.bound - COVER_POINTS * report.paired:,.1f} points "
            f"above {COVER_POINTS:,.0f} x paired: the round is {report.bound - value:,.1f} "
            "points below it (no assignment pairing as many scores more than that)"
        )
    graph = candidate_graph(schools, scorer, WEEK)
    capacity = [s.capacity for s in schools]
    g_paired, g_total, g_pairs = greedy(capacity, graph.edges)
    print(
        f"  greedy baseline: paired {g_paired:,} ({g_paired / max(bound, 1):.2%}), "
        f"total score {g_total:,.0f}, pairs {g_pairs:,}; round/greedy total score "
        f"{report.total_score / g_total:.4f}"
    )
    if exact:
        started = time.perf_counter()
        most = max_coverage(capacity, list(graph.edges))
        took = time.perf_counter() - started
        if most is None:
            print("  integer program: no answer within 300 s")
        else:
            print(
                f"  integer program ({took:.1f} s): at most {most:,} schools can be paired; "
                f"the round paired {report.paired / most:.2%} of that"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--exact-at", type=int, default=0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run(args.one, exact=args.one == args.exact_at)
        return
    # Each size in a process of its own, so its peak memory is its own.
    for size in args.sizes.split(","):
        command = [sys.executable, __file__, "--one", size, "--exact-at", str(args.exact_at)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
