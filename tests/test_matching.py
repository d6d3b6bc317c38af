"""The matching engine (amity/protocol/matching.py, live_window.py) with hand-checked answers."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amity.protocol.live_window import coming_monday, monday_of
from amity.protocol.matching import (
    MatchContext,
    School,
    evaluate,
    exclusions,
    rank,
    school_from_profile,
)

from .helpers import ROOT

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
WEEKDAYS5 = ["mon", "tue", "wed", "thu", "fri"]


def school(name: str, country: str, timezone: str, **changes: Any) -> School:
    """A school with a profile in the import format, changed by `changes`; `extra` sets
    the fields a profile does not hold."""
    extra = changes.pop("extra", {})
    profile: dict[str, Any] = {
        "name": name,
        "country": country,
        "timezone": timezone,
        "languages": {"instruction": ["en"], "learning": []},
        "ages": [9, 12],
        "subjects": ["science"],
        "modes": ["async", "live"],
        "school_days": WEEKDAYS5,
        "school_hours": ["08:00", "15:00"],
        "terms": [],
        "capacity": 2,
        **changes,
    }
    return school_from_profile(f"https://{name.lower()}.example/actor", profile, **extra)


def ctx(week: str, **changes: Any) -> MatchContext:
    return MatchContext(
        week=date.fromisoformat(week),
        now=NOW,
        blocked=changes.get("blocked", frozenset()),
        trusted=changes.get("trusted", frozenset()),
    )


# School hours, hand-converted to UTC; each case's minutes are worked out beside it.
KATHMANDU = school(
    "Kathmandu", "NP", "Asia/Kathmandu", school_hours=["10:00", "16:00"],
    school_days=["sun", "mon", "tue", "wed", "thu", "fri"],
)  # fmt: skip
BERLIN = school("Berlin", "DE", "Europe/Berlin")
AUCKLAND = school("Auckland", "NZ", "Pacific/Auckland", school_hours=["07:00", "15:00"])
LONDON_LATE = school("London", "GB", "Europe/London", school_hours=["08:00", "19:00"])
LONDON = school("London", "GB", "Europe/London")
HONOLULU = school("Honolulu", "US", "Pacific/Honolulu", school_hours=["08:00", "14:00"])
AUCKLAND_8 = school("Auckland", "NZ", "Pacific/Auckland")
APIA = school("Apia", "WS", "Pacific/Apia", school_hours=["08:00", "14:00"])
PAGO = school("Pago", "AS", "Pacific/Pago_Pago", school_hours=["08:00", "14:00"])
RIYADH = school(
    "Riyadh", "SA", "Asia/Riyadh", school_hours=["07:00", "13:00"],
    school_days=["sun", "mon", "tue", "wed", "thu"],
)  # fmt: skip
BERLIN_16 = school("Berlin", "DE", "Europe/Berlin", school_hours=["08:00", "16:00"])
NEW_YORK = school("NewYork", "US", "America/New_York")
SYDNEY = school(
    "Sydney", "AU", "Australia/Sydney", school_hours=["09:00", "15:00"],
    terms=[{"start": "2026-07-20", "end": "2026-09-25"},
           {"start": "2026-10-12", "end": "2026-12-16"}],
)  # fmt: skip
KOLKATA = school("Kolkata", "IN", "Asia/Kolkata", school_hours=["09:00", "15:00"])
NAIROBI = school("Nairobi", "KE", "Africa/Nairobi", school_hours=["08:00", "16:00"])
OAXACA = school(
    "Oaxaca", "MX", "America/Mexico_City", school_hours=["08:00", "14:00"],
    terms=[{"start": "2026-08-24", "end": "2026-12-18"}],
)  # fmt: skip

LIVE_WINDOW_CASES = [
    # Kathmandu +5:45 all year: 10:00-16:00 is 04:15-10:15 UTC. Berlin in December is +1:
    # 08:00-15:00 is 07:00-14:00 UTC. Overlap 07:00-10:15 = 195 min on Mon-Fri (Kathmandu's
    # Sunday has no Berlin partner): 5 * 195 = 975.
    ("kathmandu-berlin", KATHMANDU, BERLIN, "2026-12-07", 975, 5),
    # Auckland in December is +13: 07:00-15:00 is 18:00 (the day before)-02:00 UTC.
    # London +0, open till 19:00: 08:00-19:00 UTC. London Mon-Thu 18:00-19:00 meets Auckland
    # Tue-Fri 07:00-08:00 (Auckland's Monday morning is London's Sunday; London's Friday
    # evening is Auckland's Saturday): 4 * 60 = 240.
    ("auckland-london-late", AUCKLAND, LONDON_LATE, "2026-12-07", 240, 4),
    # Usual hours, 08:00-15:00 both: Auckland 19:00-02:00 UTC against London 08:00-15:00.
    ("auckland-london", AUCKLAND_8, LONDON, "2026-12-07", 0, 0),
    # Across the date line, Auckland +13 and Honolulu -10 (no DST): Auckland Tue 08:00-15:00
    # is Mon 19:00-Tue 02:00 UTC; Honolulu Mon 08:00-14:00 is Mon 18:00-Tue 00:00 UTC.
    # 19:00-00:00 = 300 min, Auckland Tue-Fri with Honolulu Mon-Thu: 4 * 300 = 1200.
    ("auckland-honolulu", AUCKLAND_8, HONOLULU, "2026-12-07", 1200, 4),
    # Apia +13 and Pago Pago -11 (neither has DST): the same clock a calendar day apart.
    # Apia Tue 08:00-14:00 = Mon 19:00-01:00 UTC = Pago Pago Mon 08:00-14:00: 360 min on
    # 4 days (Apia's Monday is Pago Pago's Sunday): 1440.
    ("apia-pago-pago", APIA, PAGO, "2026-12-07", 1440, 4),
    # Riyadh +3, Sunday to Thursday 07:00-13:00 = 04:00-10:00 UTC; Berlin Mon-Fri 08:00-16:00
    # = 07:00-15:00 UTC. 07:00-10:00 = 180 min on Mon-Thu: 720.
    ("riyadh-berlin", RIYADH, BERLIN_16, "2026-12-07", 720, 4),
    # Europe left summer time on Sun 2026-10-25, New York only on Sun 2026-11-01.
    # Week of 10-26: London +0 08:00-15:00 UTC, New York -4 12:00-19:00 UTC: 180 * 5 = 900.
    ("london-newyork-gap", LONDON, NEW_YORK, "2026-10-26", 900, 5),
    # Week before, London +1 (07:00-14:00 UTC) and New York -4 (12:00-19:00): 120 * 5 = 600.
    ("london-newyork-summer", LONDON, NEW_YORK, "2026-10-19", 600, 5),
    # Week after, London +0 (08:00-15:00) and New York -5 (13:00-20:00): 120 * 5 = 600.
    ("london-newyork-winter", LONDON, NEW_YORK, "2026-11-02", 600, 5),
    # Sydney +11 (summer time since 2026-10-04): 09:00-15:00 = 22:00 (day before)-04:00 UTC;
    # Kolkata +5:30 09:00-15:00 = 03:30-09:30 UTC: 30 min a day. Sydney's term ends
    # Wednesday 12-16: Mon-Wed only, 3 * 30 = 90.
    ("sydney-term-ends-midweek", SYDNEY, KOLKATA, "2026-12-14", 90, 3),
    # Sydney in winter, +10: 23:00-05:00 UTC, with Kolkata 03:30-09:30: 90 min, Mon-Fri (the
    # term ends Friday 09-25): 450.
    ("sydney-winter", SYDNEY, KOLKATA, "2026-09-21", 450, 5),
    # Sydney's spring holidays (between terms): no hours at all.
    ("sydney-holidays", SYDNEY, KOLKATA, "2026-09-28", 0, 0),
    # Back in term after the change to +11: 30 min a day, 5 days = 150.
    ("sydney-summer", SYDNEY, KOLKATA, "2026-10-12", 150, 5),
    # Summer holidays in Sydney (the next term is not listed): nothing.
    ("sydney-summer-holidays", SYDNEY, KOLKATA, "2027-01-04", 0, 0),
    # Nairobi +3 and Kolkata +5:30, neither with DST: Nairobi 08:00-16:00 = 05:00-13:00 UTC,
    # Kolkata 03:30-09:30 UTC: 270 min, 5 days = 1350, in June as in December.
    ("nairobi-kolkata-december", NAIROBI, KOLKATA, "2026-12-07", 1350, 5),
    ("nairobi-kolkata-june", NAIROBI, KOLKATA, "2026-06-01", 1350, 5),
    # Mexico City -6 all year (no DST since 2022): 08:00-14:00 = 14:00-20:00 UTC; New York
    # in December -5: 13:00-20:00 UTC. 360 min, Mon-Fri, the last week of Oaxaca's term: 1800.
    ("oaxaca-newyork-in-term", OAXACA, NEW_YORK, "2026-12-14", 1800, 5),
    # The week after Oaxaca's term ended (12-18): out of term, nothing.
    ("oaxaca-out-of-term", OAXACA, NEW_YORK, "2026-12-21", 0, 0),
    # New York still -4 in the week of 10-26: 12:00-19:00 UTC against 14:00-20:00: 300 * 5.
    ("oaxaca-newyork-dst-gap", OAXACA, NEW_YORK, "2026-10-26", 1500, 5),
]


@pytest.mark.parametrize(
    ("me", "other", "week", "expected", "windows"),
    [case[1:] for case in LIVE_WINDOW_CASES],
    ids=[case[0] for case in LIVE_WINDOW_CASES],
)
def test_live_window_minutes_are_the_hand_checked_ones(
    me: School, other: School, week: str, expected: int, windows: int
) -> None:
    match = evaluate(me, other, ctx(week))
    assert match is not None
    assert (match.live_minutes, len(match.windows)) == (expected, windows)
    assert match.live_possible == (expected >= 30)
    # The overlap is the same seen from either side.
    back = evaluate(other, me, ctx(week))
    assert back is not None and back.live_minutes == expected


def test_windows_are_given_in_utc_and_in_both_local_times() -> None:
    match = evaluate(KATHMANDU, BERLIN, ctx("2026-12-07"))
    assert match is not None
    first = match.to_json()["windows"][0]
    assert first == {
        "start": "2026-12-07T07:00:00Z",
        "end": "2026-12-07T10:15:00Z",
        "local_self": {"start": "2026-12-07T12:45:00+05:45", "end": "2026-12-07T16:00:00+05:45"},
        "local_partner": {
            "start": "2026-12-07T08:00:00+01:00",
            "end": "2026-12-07T11:15:00+01:00",
        },
    }


def test_a_window_across_the_date_line_has_two_local_dates() -> None:
    match = evaluate(HONOLULU, AUCKLAND_8, ctx("2026-12-07"))
    assert match is not None
    first = match.to_json()["windows"][0]
    # Honolulu Mon 09:00-14:00 is Auckland Tue 08:00-13:00 (hand-checked above).
    assert first["start"] == "2026-12-07T19:00:00Z" and first["end"] == "2026-12-08T00:00:00Z"
    assert first["local_self"] == {
        "start": "2026-12-07T09:00:00-10:00",
        "end": "2026-12-07T14:00:00-10:00",
    }
    assert first["local_partner"] == {
        "start": "2026-12-08T08:00:00+13:00",
        "end": "2026-12-08T13:00:00+13:00",
    }


def test_the_week_that_europe_changed_shows_new_york_four_hours_behind() -> None:
    match = evaluate(LONDON, NEW_YORK, ctx("2026-10-26"))
    assert match is not None
    first = match.to_json()["windows"][0]
    assert first["local_self"]["start"] == "2026-10-26T12:00:00+00:00"
    assert first["local_partner"]["start"] == "2026-10-26T08:00:00-04:00"


def test_week_helpers() -> None:
    assert monday_of(date(2026, 12, 10)) == date(2026, 12, 7)
    # The coming week from a Wednesday, and from a Monday (a week on, not today).
    assert coming_monday(NOW) == date(2026, 12, 7)
    assert coming_monday(datetime(2026, 12, 7, 9, tzinfo=UTC)) == date(2026, 12, 14)


# Languages: es/en is Oaxaca's profile in DESIGN.md.
def _lang(name: str, country: str, instruction: list[str], learning: list[str]) -> School:
    return school(
        name, country, "Europe/Madrid", languages={"instruction": instruction, "learning": learning}
    )


def test_a_working_language_through_a_language_being_learned() -> None:
    me = _lang("Oaxaca", "MX", ["es"], ["en"])
    other = _lang("Hamburg", "DE", ["de"], ["es"])
    match = evaluate(me, other, ctx("2026-12-07"))
    assert match is not None
    assert match.working_languages == ("es",) and not match.tandem
    assert "Working language: es." in match.reasons


def test_a_language_tandem_is_a_strong_plus() -> None:
    me = _lang("Oaxaca", "MX", ["es"], ["en"])
    tandem = _lang("Leeds", "GB", ["en"], ["es"])
    one_way = _lang("Hamburg", "DE", ["de"], ["es"])
    match = evaluate(me, tandem, ctx("2026-12-07"))
    assert match is not None
    assert match.working_languages == ("en", "es") and match.tandem
    assert any(r.startswith("Language tandem: you learn en") for r in match.reasons)
    other = evaluate(me, one_way, ctx("2026-12-07"))
    assert other is not None and match.score >= other.score + 30
    assert [m.other.name for m in rank(me, [one_way, tandem], ctx("2026-12-07"), 5)] == [
        "Leeds",
        "Hamburg",
    ]


def test_no_working_language_excludes_and_says_so() -> None:
    me = _lang("Oaxaca", "MX", ["es"], ["en"])
    other = _lang("Hamburg", "DE", ["de"], ["fr"])
    assert evaluate(me, other, ctx("2026-12-07")) is None
    assert exclusions(me, other, ctx("2026-12-07")) == [
        "No working language: you teach in es and learn en; they teach in de and learn fr."
    ]


def test_each_hard_constraint_has_its_sentence() -> None:
    me = school("Oaxaca", "MX", "America/Mexico_City")
    week = ctx("2026-12-07")
    cases = {
        "Same country (MX): partners are schools abroad.": school(
            "Puebla", "MX", "America/Mexico_City"
        ),
        "Puebla has no free partnership place left.": school(
            "Puebla", "US", "America/Chicago", capacity=0
        ),
        "Ages do not overlap: your pupils are 9-12, theirs 14-18.": school(
            "Puebla", "US", "America/Chicago", ages=[14, 18]
        ),
    }
    for sentence, other in cases.items():
        assert exclusions(me, other, week) == [sentence]
        assert evaluate(me, other, week) is None
    other = school("Puebla", "US", "America/Chicago")
    blocked = ctx("2026-12-07", blocked=frozenset({other.actor}))
    assert exclusions(me, other, blocked) == ["You block this school."]
    full = school("Oaxaca", "MX", "America/Mexico_City", capacity=0)
    assert exclusions(full, other, week) == [
        "Your school has no free partnership place left (capacity used up)."
    ]
    # Every failed constraint is named, not only the first.
    worst = school("Puebla", "MX", "America/Chicago", ages=[14, 18], capacity=0)
    assert len(exclusions(me, worst, blocked)) == 4


def test_live_only_schools_need_a_live_window() -> None:
    # Oaxaca 14:00-20:00 UTC, Berlin 07:00-14:00 UTC: no overlap, so two live-only schools
    # have no way to work together; with async on both sides they still match.
    live_me = school("Oaxaca", "MX", "America/Mexico_City", modes=["live"])
    live_other = school("Berlin", "DE", "Europe/Berlin", modes=["live", "async"])
    assert exclusions(live_me, live_other, ctx("2026-12-07")) == [
        "No way to work together: you offer live, they offer async, live, and there is no "
        "live window of 30 minutes that week."
    ]
    async_me = school("Oaxaca", "MX", "America/Mexico_City", modes=["async"])
    match = evaluate(async_me, live_other, ctx("2026-12-07"))
    assert match is not None and not match.live_possible
    assert any(r.startswith("Asynchronous exchange only") for r in match.reasons)
    # Live-only with New York (14:00-20:00 UTC against 13:00-20:00) is fine.
    live_ny = school("NewYork", "US", "America/New_York", modes=["live"])
    match = evaluate(live_me, live_ny, ctx("2026-12-07"))
    assert match is not None and match.live_possible and match.live_minutes == 1800


def test_endorsement_activity_and_answers_move_the_score() -> None:
    me = school("Oaxaca", "MX", "America/Mexico_City")
    authority = "https://ministry.example/actor"
    plain = school("Plain", "US", "America/Chicago")
    endorsed = school("Endorsed", "US", "America/Chicago", extra={"endorsed_by": {authority}})
    week = ctx("2026-12-07", trusted=frozenset({authority}))
    scores = {s.name: evaluate(me, s, week).score for s in (plain, endorsed)}  # type: ignore[union-attr]
    assert scores["Endorsed"] == scores["Plain"] + 10
    # Not trusted here: the endorsement does not count.
    assert evaluate(me, endorsed, ctx("2026-12-07")).score == scores["Plain"]  # type: ignore[union-attr]

    recent = school("Recent", "US", "America/Chicago", extra={"last_active": NOW})
    old = school("Old", "US", "America/Chicago", extra={"last_active": NOW - timedelta(days=400)})
    sinks = school(
        "Sinks", "US", "America/Chicago", extra={"last_active": NOW, "proposals_expired": 3}
    )
    answers = school(
        "Answers", "US", "America/Chicago", extra={"last_active": NOW, "proposals_answered": 3}
    )
    ranked = rank(me, [old, sinks, recent, answers], week, 10)
    assert [m.other.name for m in ranked] == ["Answers", "Recent", "Old", "Sinks"]
    sinking = ranked[-1]
    assert "Answered 0 of 3 earlier proposals; let 3 expire." in sinking.reasons
    assert sinking.parts["answers"] == -20


def test_rank_leaves_out_excluded_schools_and_itself_and_keeps_the_limit() -> None:
    me = school("Oaxaca", "MX", "America/Mexico_City")
    others = [school(f"S{i}", "US", "America/Chicago", capacity=1 + i % 3) for i in range(10)]
    others += [me, school("Same", "MX", "America/Mexico_City")]
    ranked = rank(me, others, ctx("2026-12-07"), 4)
    assert len(ranked) == 4
    assert all(m.other.country == "US" for m in ranked)
    assert [m.score for m in ranked] == sorted((m.score for m in ranked), reverse=True)


def test_the_json_has_every_documented_field() -> None:
    me = _lang("Oaxaca", "MX", ["es"], ["en"])
    other = _lang("Leeds", "GB", ["en"], ["es"])
    item = evaluate(me, other, ctx("2026-12-07")).to_json()  # type: ignore[union-attr]
    assert set(item) == {
        "actor",
        "name",
        "country",
        "score",
        "score_parts",
        "working_languages",
        "tandem",
        "live_minutes",
        "live_possible",
        "windows",
        "reasons",
    }
    assert item["score"] == sum(item["score_parts"].values())
    assert isinstance(item["live_minutes"], int)


def test_the_protocol_example_has_the_fields_and_windows_the_code_gives() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text()
    found = re.search(r"<!-- example: match -->\n```json\n(.*?)\n```", text, re.S)
    assert found
    example = json.loads(found.group(1))
    me = school(
        "Benito", "MX", "America/Mexico_City", school_hours=["08:00", "14:00"],
        languages={"instruction": ["es"], "learning": ["en"]},
        subjects=["science", "environment", "art"],
        terms=[{"start": "2026-08-24", "end": "2026-12-18"}],
    )  # fmt: skip
    leeds = school(
        "Leeds Primary", "GB", "Europe/London", school_hours=["08:00", "16:00"],
        languages={"instruction": ["en"], "learning": ["es"]},
        subjects=["science", "environment", "art"],
        extra={"last_active": NOW - timedelta(days=2)},
    )  # fmt: skip
    made = evaluate(me, leeds, ctx("2026-12-14"))
    assert made is not None
    item = made.to_json()
    assert set(item) == set(example)
    assert item["windows"][0] == example["windows"][0]
    for key in ("score", "working_languages", "tandem", "live_minutes", "reasons", "score_parts"):
        assert item[key] == example[key], key


ZONES = ["Europe/London", "Asia/Kathmandu", "Pacific/Auckland", "America/New_York", "Asia/Riyadh"]
LANGS = ["en", "es", "fr", "de"]


@st.composite
def schools(draw: st.DrawFn) -> School:
    low = draw(st.integers(3, 19))
    start = draw(st.sampled_from(["06:00", "08:00", "10:30", "13:15"]))
    return school(
        draw(st.sampled_from(["A", "B", "C"])),
        draw(st.sampled_from(["GB", "DE", "MX"])),
        draw(st.sampled_from(ZONES)),
        languages={
            "instruction": draw(
                st.lists(st.sampled_from(LANGS), min_size=1, max_size=2, unique=True)
            ),
            "learning": draw(st.lists(st.sampled_from(LANGS), max_size=2, unique=True)),
        },
        ages=[low, draw(st.integers(low, 19))],
        modes=draw(st.sampled_from([["async"], ["live"], ["async", "live"]])),
        school_days=draw(
            st.lists(st.sampled_from([*WEEKDAYS5, "sat", "sun"]), min_size=1, unique=True)
        ),
        school_hours=[start, draw(st.sampled_from(["14:00", "15:45", "18:00"]))],
        capacity=draw(st.integers(0, 2)),
    )


@given(schools(), st.lists(schools(), max_size=6), st.sampled_from(["2026-10-26", "2027-03-29"]))
@settings(max_examples=150, deadline=None)
def test_exclusions_evaluate_and_rank_agree(me: School, others: list[School], week: str) -> None:
    c = ctx(week)
    for other in others:
        match = evaluate(me, other, c)
        assert (match is None) == bool(exclusions(me, other, c))
        if match is not None:
            assert match.live_minutes == sum(
                int((end - start).total_seconds()) // 60 for start, end in match.windows
            )
            assert match.score == round(sum(match.parts.values()), 2)
    ranked = rank(me, others, c, 3)
    expected = sorted(
        (m for o in others if o.actor != me.actor for m in [evaluate(me, o, c)] if m),
        key=lambda m: (-m.score, -m.live_minutes, m.other.name, m.other.actor),
    )[:3]
    assert [m.to_json() for m in ranked] == [m.to_json() for m in expected]
