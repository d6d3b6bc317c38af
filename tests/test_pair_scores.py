"""The pairing round's vectorised pair scores are matching.evaluate's, to the last bit."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from amity.protocol.matching import MatchContext, School, evaluate
from amity.protocol.pair_index import round_cents
from amity.protocol.pairing_score import PairScorer, pair_score

# Zones with quarter- and half-hour offsets, both hemispheres, none and other DST rules,
# both sides of the date line.
ZONES = {
    "NP": "Asia/Kathmandu",
    "IN": "Asia/Kolkata",
    "NZ": "Pacific/Auckland",
    "GB": "Europe/London",
    "FR": "Europe/Paris",
    "US": "America/New_York",
    "MX": "America/Mexico_City",
    "CL": "America/Santiago",
    "AU": "Australia/Adelaide",
    "EG": "Africa/Cairo",
    "JP": "Asia/Tokyo",
    "WS": "Pacific/Apia",
    "KI": "Pacific/Kiritimati",
    "IR": "Asia/Tehran",
}
LANGUAGES = ["en", "fr", "es", "ar", "ne"]
WEEKS = [
    date(2026, 10, 26),  # Europe has left summer time, North America not yet
    date(2027, 3, 8),  # North America has entered summer time, Europe not yet
    date(2026, 3, 30),  # Europe enters summer time the Sunday before; Chile/NZ change soon
    date(2026, 12, 21),  # southern summer holidays, northern winter ones
]
NOW = datetime(2026, 10, 20, 9, 30, tzinfo=UTC)


def _schools(count: int, seed: int) -> list[School]:
    rng = random.Random(seed)
    schools = []
    for n in range(count):
        country = rng.choice(list(ZONES))
        opens = rng.choice(["07:00", "07:45", "08:00", "08:30", "09:15", "01:30", "02:30"])
        hours = rng.choice([3, 5, 6, 7, 8])
        closes = f"{min(int(opens[:2]) + hours, 23):02d}:{opens[3:]}"
        days = rng.choice(
            [
                ("mon", "tue", "wed", "thu", "fri"),
                ("sun", "mon", "tue", "wed", "thu"),
                ("mon", "wed", "fri"),
                ("sat", "sun"),
            ]
        )
        terms: tuple[tuple[date, date], ...] = rng.choice(
            [
                (),
                ((date(2026, 9, 1), date(2026, 12, 18)), (date(2027, 1, 5), date(2027, 6, 30))),
                ((date(2026, 2, 1), date(2026, 12, 10)),),
                ((date(2026, 10, 28), date(2026, 11, 30)),),  # starts mid-week
                ((date(2027, 1, 1), date(2027, 2, 1)),),  # out of term
            ]
        )
        instruction = tuple(rng.sample(LANGUAGES, rng.choice([1, 1, 2])))
        learning = tuple(sorted(set(rng.sample(LANGUAGES, 2)) - set(instruction)))
        low = rng.randint(8, 12)
        answered, expired = rng.choice([(0, 0), (3, 0), (1, 2), (0, 4), (5, 1), (2, 1)])
        schools.append(
            School(
                actor=f"https://s{n}.example/actors/s{n}",
                name=f"School {n}",
                country=country,
                timezone=ZONES[country],
                instruction=instruction,
                learning=learning,
                ages=(low, low + rng.randint(0, 5)),
                subjects=frozenset(rng.sample(["science", "art", "music", "history", "maths"], 3)),
                modes=frozenset(rng.choice([("async",), ("live",), ("async", "live")])),
                school_days=days,
                school_hours=(opens, closes),
                terms=terms,
                capacity=rng.choice([0, 1, 1, 2, 3, 4]),
                endorsed_by=frozenset(rng.choice([(), (), ("https://ministry.example/a",)])),
                last_active=rng.choice(
                    [None, NOW - timedelta(days=rng.randint(0, 400), seconds=rng.randint(0, 9999))]
                ),
                proposals_answered=answered,
                proposals_expired=expired,
            )
        )
    return schools


@pytest.mark.parametrize("week", WEEKS)
def test_vectorised_scores_equal_evaluate_for_every_pair(week: date) -> None:
    schools = _schools(400, seed=week.toordinal())
    ctx = MatchContext(week=week, now=NOW, trusted=frozenset({"https://ministry.example/a"}))
    scorer = PairScorer(schools, ctx)
    rng = random.Random(week.toordinal())
    picks = [rng.sample(range(len(schools)), 2) for _ in range(3000)]
    first = np.array([a for a, _ in picks], np.int64)
    second = np.array([b for _, b in picks], np.int64)
    live = scorer.live_minutes(first, second)
    there = scorer.index.pair_scores(first, second, ctx, live)
    both = scorer.scores(first, second)
    kept = live_parts = 0
    for at, (a, b) in enumerate(picks):
        match = evaluate(schools[a], schools[b], ctx)
        if match is None:
            assert math.isnan(there[at]), (a, b)
        else:
            assert there[at] == match.score, (a, b, match.parts)  # the same double
            assert live[at] == match.live_minutes
            live_parts += match.parts["live"] > 0
        expected = pair_score(schools[a], schools[b], ctx)
        if expected is None:
            assert math.isnan(both[at]), (a, b)
        else:
            kept += 1
            assert both[at] == expected, (a, b)
    # The pairs cover both outcomes and timetables shared by many schools.
    assert 400 < kept < 2700 and live_parts > 5
    assert scorer.class_pairs < len(picks)


def test_round_cents_is_pythons_round() -> None:
    rng = random.Random(2)
    values = [rng.randint(-10_000, 10_000) / 1000 + k / 200 for k in range(-50, 50)]
    values += [0.125, 0.375, 2.675, 1.005, 8.345, -0.005, 100.0, 0.0]
    values += [rng.uniform(-50, 150) for _ in range(5000)]
    got = round_cents(np.array(values))
    assert [float(x) for x in got] == [round(x, 2) for x in values]
