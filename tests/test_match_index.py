"""The match index (amity/protocol/match_index.py) ranks exactly as `matching.rank` does:
same actors, scores and order, over seeded random directories full of ties."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amity.federation import directory, listing_facts
from amity.federation.blocklist import add_block
from amity.node import matching as node_matching
from amity.node.node import init_node
from amity.protocol.live_window import live_windows, minutes, school_intervals
from amity.protocol.match_index import LayeredIndex, MatchIndex
from amity.protocol.matching import Match, MatchContext, School, rank, school_from_profile
from amity.protocol.profile import validate_profile
from amity.protocol.profile_document import profile_document

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ZONES = {
    "GB": "Europe/London",
    "NP": "Asia/Kathmandu",
    "NZ": "Pacific/Auckland",
    "US": "America/New_York",
    "SA": "Asia/Riyadh",
    "JP": "Asia/Tokyo",
}
LANGUAGES = ["en", "es", "fr", "de", "ar", "ja", "ne"]
SUBJECTS = ["science", "art", "music", "history", "environment"]
AUTHORITIES = ["https://ministry.example/actor", "https://ngo.example/actor"]
TERMS = [
    [],
    [{"start": "2026-09-01", "end": "2026-12-18"}],
    [{"start": "2027-01-10", "end": "2027-06-30"}],
]
WEEKS = [date(2026, 10, 26), date(2026, 12, 7), date(2027, 3, 29)]


def random_profile(rng: random.Random) -> dict[str, Any]:
    """Few distinct values for everything, so that many schools tie on score and live minutes."""
    country = rng.choice(list(ZONES))
    low = rng.randint(5, 15)
    profile: dict[str, Any] = {
        "name": rng.choice(["Alpha", "Beta", "Gamma"]),
        "country": country,
        "timezone": ZONES[country],
        "languages": {
            "instruction": rng.sample(LANGUAGES[:4], rng.randint(1, 2)),
            "learning": rng.sample(LANGUAGES, rng.randint(0, 2)),
        },
        "ages": [low, low + rng.randint(0, 4)],
        "subjects": rng.sample(SUBJECTS, rng.randint(0, 4)),
        "modes": rng.choice([["async"], ["live"], ["async", "live"], ["async", "live"]]),
        "school_days": rng.choice(
            [["mon", "tue", "wed", "thu", "fri"], ["sun", "mon", "tue", "wed", "thu"], ["sat"]]
        ),
        "school_hours": rng.choice([["08:00", "14:00"], ["07:30", "15:45"], ["13:00", "18:00"]]),
        "terms": rng.choice(TERMS),
        "capacity": rng.choice([0, 1, 1, 2, 3, 5]),
    }  # fmt: skip
    return profile


def random_school(rng: random.Random, n: int) -> School:
    profile = random_profile(rng)
    last_active = rng.choice(
        [None, NOW - timedelta(days=rng.randint(0, 200), seconds=rng.randint(0, 86399)), NOW]
    )
    return school_from_profile(
        f"https://s{n}.example/actor",
        profile,
        endorsed_by=frozenset(rng.sample(AUTHORITIES, rng.choice([0, 0, 1, 2]))),
        last_active=last_active,
        proposals_answered=rng.choice([0, 0, 1, 3]),
        proposals_expired=rng.choice([0, 0, 0, 1]),
    )


def summary(matches: list[Match]) -> list[tuple[str, float, int]]:
    return [(m.other.actor, m.score, m.live_minutes) for m in matches]


@pytest.mark.parametrize("seed", range(12))
def test_the_index_ranks_exactly_as_rank_does(seed: int) -> None:
    rng = random.Random(seed)
    others = [random_school(rng, n) for n in range(rng.randint(0, 400))]
    index = MatchIndex(others)
    for _ in range(15):
        # `me` is sometimes one of the listed schools (left out), sometimes from outside.
        me = rng.choice(others) if others and rng.random() < 0.3 else random_school(rng, -1)
        ctx = MatchContext(
            week=rng.choice(WEEKS),
            now=NOW + timedelta(hours=rng.randint(0, 48)),
            blocked=frozenset(s.actor for s in rng.sample(others, min(len(others), 5))),
            trusted=frozenset(rng.sample(AUTHORITIES, rng.randint(0, 2))),
        )
        limit = rng.choice([1, 3, 10, 50, 1000])
        expected = rank(me, others, ctx, limit)
        found = index.rank(me, ctx, limit)
        assert summary(found) == summary(expected)
        assert [m.to_json() for m in found] == [m.to_json() for m in expected]


def test_endorsements_and_answers_given_per_call_replace_the_indexed_ones() -> None:
    rng = random.Random(99)
    base = [
        dataclasses.replace(
            random_school(rng, n), endorsed_by=frozenset(), proposals_answered=0,
            proposals_expired=0,
        )
        for n in range(300)
    ]  # fmt: skip
    endorsed = {s.actor: frozenset(rng.sample(AUTHORITIES, 1)) for s in rng.sample(base, 60)}
    history = {s.actor: (rng.randint(0, 3), rng.randint(0, 2)) for s in rng.sample(base, 60)}
    whole = [
        dataclasses.replace(
            s,
            endorsed_by=endorsed.get(s.actor, frozenset()),
            proposals_answered=history.get(s.actor, (0, 0))[0],
            proposals_expired=history.get(s.actor, (0, 0))[1],
        )
        for s in base
    ]
    index = MatchIndex(base)
    for n in range(20):
        me = random_school(rng, -1 - n)
        ctx = MatchContext(WEEKS[n % 3], NOW, trusted=frozenset(AUTHORITIES[:1]))
        expected = rank(me, whole, ctx, 10)
        assert summary(index.rank(me, ctx, 10, endorsed, history)) == summary(expected)


def test_a_school_without_free_places_or_an_empty_index_gets_nothing() -> None:
    rng = random.Random(5)
    others = [random_school(rng, n) for n in range(50)]
    me = dataclasses.replace(random_school(rng, -1), capacity=0)
    ctx = MatchContext(WEEKS[1], NOW)
    assert MatchIndex(others).rank(me, ctx, 10) == [] == rank(me, others, ctx, 10)
    assert MatchIndex([]).rank(random_school(rng, -2), ctx, 10) == []
    assert MatchIndex(others).rank(random_school(rng, -3), ctx, 0) == []


def test_the_weekly_and_live_minutes_bounds_are_never_below_the_real_minutes() -> None:
    rng = random.Random(3)
    others = [random_school(rng, n) for n in range(300)]
    index = MatchIndex(others)
    for week in [*WEEKS, date(2026, 3, 23), date(2026, 3, 30), date(2026, 4, 6)]:
        bound = index.weekly_minutes(week)
        for n, other in enumerate(others):
            assert bound[n] >= minutes(school_intervals(other.timetable, week))
        for me in others[:40]:
            live = index.live_bound(me, week)
            for n, other in enumerate(others):
                assert live[n] >= minutes(live_windows(me.timetable, other.timetable, week))


def test_a_node_ranks_its_directory_through_the_index_as_rank_would(tmp_path: Path) -> None:
    rng = random.Random(11)
    node = init_node(
        tmp_path / "node", handle="me", base_url="http://127.0.0.1:9", kind="school",
        profile=validate_profile({**random_profile(rng), "name": "Me", "capacity": 3}),
    )  # fmt: skip

    def store(n: int, updated: str = "2026-11-01T00:00:00Z") -> None:
        actor = f"https://s{n % 7}.example/actors/s{n}"
        document = profile_document(
            validate_profile(random_profile(rng)), profile_id=f"{actor}/profile",
            actor_id=actor, published=updated, updated=updated,
        )  # fmt: skip
        directory.store_profile(node.store.db, document, 1.0)

    def plain() -> list[Match]:
        me = node_matching.own_school(node)
        rows = [r for r in listing_facts.listing_rows(node.store.db) if r["actor"] != me.actor]
        others = node_matching._schools(node, rows)
        return rank(
            me, others, node_matching.context(node, WEEKS[1], [o.actor for o in others]), 20
        )

    with node:
        for n in range(300):
            store(n)
        me = node_matching.own_school(node)
        for _ in range(2):  # built, then the same index again
            assert summary(node_matching.ranked(node, me, WEEKS[1], 20)) == summary(plain())
        assert summary(node_matching.ranked_once(node, me, WEEKS[1], 20)) == summary(plain())
        # A changed directory is seen at once: newer listings, new ones, a withdrawn one
        # (all kept beside the index), a blocked one (its row dropped: built again).
        for n in (1, 2, 3, 300, 301):
            store(n, "2026-11-20T00:00:00Z")
        found = node_matching.ranked(node, me, WEEKS[1], 20)
        assert summary(found) == summary(plain())
        assert isinstance(node_matching._directory_index(node).index, LayeredIndex)
        directory.remove_profile(node.store.db, found[1].other.actor, "2026-11-21T00:00:00Z", 2.0)
        assert summary(node_matching.ranked(node, me, WEEKS[1], 20)) == summary(plain())
        add_block(node.store.db, found[0].other.actor, "actor", "2026-12-01T00:00:00Z")
        after = node_matching.ranked(node, me, WEEKS[1], 20)
        assert isinstance(node_matching._directory_index(node).index, MatchIndex)
        assert found[0].other.actor not in {m.other.actor for m in after}
        assert summary(after) == summary(plain())


@pytest.mark.parametrize("seed", range(4))
def test_a_layered_index_ranks_as_an_index_of_the_current_schools(seed: int) -> None:
    rng = random.Random(100 + seed)
    base = [random_school(rng, n) for n in range(300)]
    changes: dict[str, School | None] = {}
    for school in rng.sample(base, 40):  # replaced by a new version, or dropped
        changes[school.actor] = random_school(rng, int(school.actor[9:].split(".")[0]))
    for school in rng.sample(base, 20):
        changes[school.actor] = None
    for n in range(300, 330):  # new
        changes[f"https://s{n}.example/actor"] = random_school(rng, n)
    current = [s for s in base if s.actor not in changes]
    current += [s for s in changes.values() if s is not None]
    layered = LayeredIndex(MatchIndex(base), changes)
    assert {s.actor for s in layered.schools} == {s.actor for s in current}
    for n in range(15):
        me = random_school(rng, -1 - n)
        ctx = MatchContext(WEEKS[n % 3], NOW, trusted=frozenset(AUTHORITIES[:1]))
        assert summary(layered.rank(me, ctx, 10)) == summary(rank(me, current, ctx, 10))
