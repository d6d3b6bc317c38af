"""Ranking one school against many, fast, with the same result as `matching.rank`.

The index keeps what matching reads of every school as numpy arrays (country, ages,
language and subject bitmasks, modes, free places, activity, answers). For one school it
applies the hard constraints that do not depend on the week to all schools at once, and
gives each remaining school an upper bound of its score: every part computed exactly
(activity taken a day younger) except the live part, which is bounded by the shorter of
the two schools' weekly hours (school days in term times daily hours, plus a clock
change). The exact `evaluate` then runs on candidates in descending bound order, and once
`limit` are found stops at the first bound below the score of the last of them: no school
left can enter them, so the result is `rank`'s.

Pure: the week, the time, the blocked and trusted sets come in the MatchContext.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from .live_window import in_term, minutes, school_intervals, zone
from .matching import (
    ACTIVE_FULL_DAYS,
    ACTIVE_POINTS,
    ACTIVE_ZERO_DAYS,
    ANSWERED_POINTS,
    CAPACITY_MAX,
    CAPACITY_POINTS,
    ENDORSED_POINTS,
    EXPIRED_POINTS,
    LIVE_FULL_MINUTES,
    LIVE_MINIMUM,
    LIVE_POINTS,
    SHARED_INSTRUCTION_POINTS,
    SUBJECT_MAX,
    SUBJECT_POINTS,
    TANDEM_POINTS,
    Match,
    MatchContext,
    School,
    evaluate,
    rank_order,
)
from .vocabulary import WEEKDAYS

Bits = npt.NDArray[np.uint64]  # (schools, words): one bit per tag of a vocabulary
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

# evaluate rounds each of its 8 parts and their sum to 2 decimals: the bound allows for it.
_ROUNDING = 0.05
_WORD = 64
# A zone changes its clock at most once in a week, by at most two hours (tz database).
CLOCK_CHANGE = 120


class _Vocabulary:
    """Bit positions for the tags (languages, subjects) seen in the index, given in the
    order first seen."""

    def __init__(self) -> None:
        self.position: dict[str, int] = {}
        self._masks: dict[Iterable[str], int] = {}  # schools share a few tag sets

    @property
    def words(self) -> int:
        return max(1, -(-len(self.position) // _WORD))

    def add(self, tags: tuple[str, ...] | frozenset[str]) -> int:
        """The mask of `tags`, giving new tags a bit."""
        found = self._masks.get(tags)
        if found is None:
            found = 0
            for tag in tags:
                found |= 1 << self.position.setdefault(tag, len(self.position))
            self._masks[tags] = found
        return found

    def mask(self, tags: Iterable[str]) -> int:
        """The tags known here as one integer; unknown tags match nothing in the index."""
        found = 0
        for tag in tags:
            bit = self.position.get(tag)
            if bit is not None:
                found |= 1 << bit
        return found

    def words_of(self, mask: int) -> Bits:
        return np.array(
            [(mask >> (_WORD * w)) & (2**_WORD - 1) for w in range(self.words)], dtype=np.uint64
        )

    def array(self, masks: Sequence[int]) -> Bits:
        columns = [
            np.fromiter(
                ((m >> (_WORD * w)) & (2**_WORD - 1) for m in masks),
                dtype=np.uint64,
                count=len(masks),
            )
            for w in range(self.words)
        ]
        return np.stack(columns, axis=1)


def meets(bits: Bits, mask: Bits) -> npt.NDArray[np.bool_]:
    """For each school: does its tag set share a tag with `mask`?"""
    return np.asarray((bits & mask).any(axis=1))


def _clock_minutes(hours: tuple[str, str]) -> tuple[int, int]:
    """School hours as minutes after local midnight."""
    (open_h, open_m), (close_h, close_m) = (map(int, t.split(":")) for t in hours)
    return open_h * 60 + open_m, close_h * 60 + close_m


@lru_cache(maxsize=4096)
def _offsets(name: str, week: date) -> tuple[int, int]:
    """The least and the most UTC offset, in minutes, of the zone `name` over the local
    dates of the week `week` (sampled every six hours from two days before to two after:
    clocks change at most once a week)."""
    tz = zone(name)
    first = datetime.combine(week - timedelta(days=2), datetime.min.time(), UTC)
    found = [
        (first + timedelta(hours=6 * step)).astimezone(tz).utcoffset() or timedelta(0)
        for step in range(4 * 11 + 1)
    ]
    return min(found) // timedelta(minutes=1), max(found) // timedelta(minutes=1)


def _overlap_of_days(start: int, end: int, starts: Ints, ends: Ints) -> Ints:
    """For each [starts, ends): at least the minutes one day's [start, end) can share
    with it, all as minutes of the UTC day (either may wrap past midnight)."""
    day = 24 * 60
    shift = (start // day) * day
    start, end = start - shift, end - shift
    shifts = (starts // day) * day
    starts, ends = starts - shifts, ends - shifts
    total = np.zeros(len(starts), np.int64)
    for turn in range(-2, 3):
        total += np.clip(
            np.minimum(end, ends + turn * day) - np.maximum(start, starts + turn * day), 0, None
        )
    return total


def language_parts(
    me: tuple[Bits, Bits, Bits], other: tuple[Bits, Bits, Bits]
) -> tuple[Floats, Floats, Floats]:
    """The tandem, shared-instruction and shared-subject points of `me` with `other`, each
    a side's (instruction, learning, subjects) bits, one row or one row per pair."""
    (my_instruction, my_learning, my_subjects), (instruction, learning, subjects) = me, other
    tandem = meets(learning, my_instruction) & meets(instruction, my_learning)
    shared = np.bitwise_count(subjects & my_subjects).sum(axis=1)
    return (
        np.where(tandem, TANDEM_POINTS, 0.0),
        np.where(meets(instruction, my_instruction), SHARED_INSTRUCTION_POINTS, 0.0),
        SUBJECT_POINTS * np.minimum(shared, SUBJECT_MAX),
    )


def _answer_points(answered: int, expired: int) -> float:
    total = answered + expired
    if total == 0:
        return 0.0
    return (ANSWERED_POINTS * answered + EXPIRED_POINTS * expired) / total


class MatchIndex:
    """Many schools, ready to be ranked as partners for any one school."""

    def __init__(self, schools: Sequence[School]) -> None:
        self.schools = tuple(schools)
        self.position = {school.actor: n for n, school in enumerate(self.schools)}
        count = len(self.schools)
        self._country_code: dict[str, int] = {}
        self.languages, self.subject_words = _Vocabulary(), _Vocabulary()
        instruction, learning, subjects = [], [], []
        rows = []
        days: dict[tuple[str, ...], tuple[bool, ...]] = {}
        terms: dict[tuple[tuple[date, date], ...], list[tuple[int, int]]] = {}
        self._zone_code: dict[str, int] = {}
        self._endorsed: dict[int, frozenset[str]] = {}
        for n, s in enumerate(self.schools):
            instruction.append(self.languages.add(s.instruction))
            learning.append(self.languages.add(s.learning))
            subjects.append(self.subject_words.add(s.subjects))
            if s.endorsed_by:
                self._endorsed[n] = s.endorsed_by
            week = days.get(s.school_days)
            if week is None:
                week = days[s.school_days] = tuple(day in s.school_days for day in WEEKDAYS)
            opens, closes = _clock_minutes(s.school_hours)
            if s.terms not in terms:
                terms[s.terms] = [(a.toordinal(), b.toordinal()) for a, b in s.terms]
            rows.append(
                (
                    self._country_code.setdefault(s.country, len(self._country_code)),
                    s.ages[0],
                    s.ages[1],
                    "live" in s.modes,
                    "async" in s.modes,
                    s.capacity,
                    s.last_active.timestamp() if s.last_active else np.nan,
                    _answer_points(s.proposals_answered, s.proposals_expired),
                    max(0, closes - opens),
                    not s.terms,
                    *week,
                    self._zone_code.setdefault(s.timezone, len(self._zone_code)),
                    opens,
                    closes,
                )
            )
        table = np.array(rows, np.float64).reshape(count, 20)
        self.country = table[:, 0].astype(np.int32)
        self.age_min, self.age_max = table[:, 1].astype(np.int32), table[:, 2].astype(np.int32)
        self.live, self.asynchronous = table[:, 3] > 0, table[:, 4] > 0
        self.capacity = table[:, 5].astype(np.int32)
        self.capacity_points = CAPACITY_POINTS * np.minimum(self.capacity, CAPACITY_MAX)
        self.active_at = table[:, 6].copy()
        self.answers = table[:, 7].copy()
        self.instruction = self.languages.array(instruction)
        self.learning = self.languages.array(learning)
        self.uses = self.instruction | self.learning
        self.subjects = self.subject_words.array(subjects)
        # What bounds each school's weekly minutes: its school days, daily hours and terms.
        self.daily = table[:, 8].astype(np.int64)
        self.no_terms = table[:, 9] > 0
        self.school_day = table[:, 10:17] > 0
        self.zone = table[:, 17].astype(np.int32)
        self.opens, self.closes = table[:, 18].astype(np.int64), table[:, 19].astype(np.int64)
        most = max((len(t) for t in terms), default=0) or 1
        self.term_start = np.ones((count, most), np.int32)  # (1, 0): a term with no days
        self.term_end = np.zeros((count, most), np.int32)
        for n, s in enumerate(self.schools):
            for k, (first, last) in enumerate(terms[s.terms]):
                self.term_start[n, k], self.term_end[n, k] = first, last
        self._weeks: dict[date, tuple[Ints, Ints, Ints, Ints]] = {}

    def __len__(self) -> int:
        return len(self.schools)

    def _week(self, week: date) -> tuple[Ints, Ints, Ints, Ints]:
        """For each school, in the week `week` (a Monday): its school days in term, at least
        its minutes of school hours (those days times its daily hours, plus CLOCK_CHANGE
        when it has any: the local hours of a day with a clock change can be longer in
        UTC), and the least and most UTC minute of the day its hours can start and end."""
        found = self._weeks.get(week)
        if found is None:
            days = [week + timedelta(days=offset) for offset in range(7)]
            ordinals = np.array([day.toordinal() for day in days], np.int32)
            in_term = self.no_terms[:, None] | (
                (self.term_start[:, :, None] <= ordinals) & (self.term_end[:, :, None] >= ordinals)
            ).any(axis=1)
            at_school = self.school_day[:, [day.weekday() for day in days]] & in_term
            count = at_school.sum(axis=1).astype(np.int64)
            weekly = count * self.daily + np.where(count > 0, CLOCK_CHANGE, 0)
            spans = [_offsets(name, week) for name in self._zone_code]
            lowest = np.array([low for low, _ in spans] or [0], np.int64)[self.zone]
            highest = np.array([high for _, high in spans] or [0], np.int64)[self.zone]
            found = (count, weekly, self.opens - highest, self.closes - lowest)
            # A few weeks are asked for at a time; replaced, not changed, for other threads.
            weeks = dict(list(self._weeks.items())[-7:])
            weeks[week] = found
            self._weeks = weeks
        return found

    def weekly_minutes(self, week: date) -> Ints:
        """For each school, at least its minutes of school hours in the week `week`."""
        return self._week(week)[1]

    def live_bound(self, me: School, week: date) -> Ints:
        """For each school, at least the minutes of live window it has with `me` in `week`:
        no more than either's weekly hours, nor than either's school days times the
        overlap of their hours as UTC times of day (each widened by its zone's offsets
        that week)."""
        count, weekly, starts, ends = self._week(week)
        my_days = sum(
            1
            for offset in range(7)
            if WEEKDAYS[(day := week + timedelta(days=offset)).weekday()] in me.school_days
            and in_term(day, me.terms)
        )
        mine = minutes(school_intervals(me.timetable, week))
        opens, closes = _clock_minutes(me.school_hours)
        low, high = _offsets(me.timezone, week)
        daily = _overlap_of_days(opens - high, closes - low, starts, ends)
        return np.minimum(np.minimum(weekly, mine), np.minimum(count, my_days) * daily).astype(
            np.int64
        )

    def _activity_bound(self, now: datetime) -> Floats:
        """Activity points rounded up: a day fewer than the float arithmetic says."""
        with np.errstate(invalid="ignore"):
            days = np.floor((now.timestamp() - self.active_at) / 86400.0) - 1
        days = np.maximum(days, 0)
        share = (ACTIVE_ZERO_DAYS - days) / (ACTIVE_ZERO_DAYS - ACTIVE_FULL_DAYS)
        points = ACTIVE_POINTS * np.clip(share, 0.0, 1.0)
        return np.where(np.isnan(self.active_at), 0.0, points)

    def _endorsed_points(
        self, trusted: frozenset[str], endorsed_by: Mapping[str, frozenset[str]]
    ) -> Floats:
        points = np.zeros(len(self), np.float64)
        for at, authorities in self._endorsed.items():
            if authorities & trusted:
                points[at] = ENDORSED_POINTS
        for actor, authorities in endorsed_by.items():
            n = self.position.get(actor)
            if n is not None:
                points[n] = ENDORSED_POINTS if authorities & trusted else 0.0
        return points

    def _answer_points(self, history: Mapping[str, tuple[int, int]]) -> Floats:
        if not history:
            return self.answers
        points = self.answers.copy()
        for actor, (answered, expired) in history.items():
            n = self.position.get(actor)
            if n is not None:
                points[n] = _answer_points(answered, expired)
        return points

    def bounds(
        self,
        me: School,
        ctx: MatchContext,
        endorsed_by: Mapping[str, frozenset[str]],
        history: Mapping[str, tuple[int, int]],
        hidden: npt.NDArray[np.bool_] | None = None,
    ) -> tuple[npt.NDArray[np.intp], Floats]:
        """The schools that pass the constraints not depending on the live window (less
        the `hidden` ones), and an upper bound of each one's score with `me`."""
        if me.capacity <= 0 or not len(self):
            return np.zeros(0, np.intp), np.zeros(0, np.float64)
        words = self.languages
        my_instruction = words.words_of(words.mask(me.instruction))
        my_learning = words.words_of(words.mask(me.learning))
        both_live = self.live if "live" in me.modes else np.zeros(len(self), np.bool_)
        both_async = self.asynchronous if "async" in me.modes else np.zeros(len(self), np.bool_)
        live_cap = self.live_bound(me, ctx.week)
        possible = (
            (self.capacity > 0)
            & (np.maximum(self.age_min, me.ages[0]) <= np.minimum(self.age_max, me.ages[1]))
            & (meets(self.uses, my_instruction) | meets(self.instruction, my_learning))
            & (both_async | (both_live & (live_cap >= LIVE_MINIMUM)))
        )
        code = self._country_code.get(me.country)
        if code is not None:
            possible &= self.country != code
        if hidden is not None:
            possible &= ~hidden
        for actor in (me.actor, *ctx.blocked):
            n = self.position.get(actor)
            if n is not None:
                possible[n] = False
        chosen = np.flatnonzero(possible)
        my_subjects = self.subject_words.words_of(self.subject_words.mask(me.subjects))
        tandem, shared, subjects = language_parts(
            (my_instruction, my_learning, my_subjects),
            (self.instruction[chosen], self.learning[chosen], self.subjects[chosen]),
        )
        bound = (
            tandem
            + shared
            + np.where(
                both_live[chosen],
                LIVE_POINTS * np.minimum(live_cap[chosen], LIVE_FULL_MINUTES) / LIVE_FULL_MINUTES,
                0.0,
            )
            + subjects
            + self._endorsed_points(ctx.trusted, endorsed_by)[chosen]
            + self._activity_bound(ctx.now)[chosen]
            + self._answer_points(history)[chosen]
            + self.capacity_points[chosen]
            + _ROUNDING
        )
        return chosen, bound

    def rank(
        self,
        me: School,
        ctx: MatchContext,
        limit: int,
        endorsed_by: Mapping[str, frozenset[str]] | None = None,
        history: Mapping[str, tuple[int, int]] | None = None,
    ) -> list[Match]:
        """`matching.rank(me, schools, ctx, limit)` over the indexed schools, where
        `endorsed_by` and `history` ((answered, expired) proposals), by actor, replace
        what the indexed schools say."""
        return _rank_layers(me, ctx, limit, [(self, None)], endorsed_by or {}, history or {})

    def _school(
        self,
        n: int,
        endorsed_by: Mapping[str, frozenset[str]],
        history: Mapping[str, tuple[int, int]],
    ) -> School:
        school = self.schools[n]
        changes: dict[str, Any] = {}
        if school.actor in endorsed_by:
            changes["endorsed_by"] = endorsed_by[school.actor]
        if school.actor in history:
            changes["proposals_answered"], changes["proposals_expired"] = history[school.actor]
        return dataclasses.replace(school, **changes) if changes else school


class LayeredIndex:
    """A large index, and a small one of the schools changed since it was built: a changed
    school replaces the large index's, a school given as None is dropped. Ranks as one
    index of the current schools would."""

    def __init__(self, base: MatchIndex, changes: Mapping[str, School | None]) -> None:
        self.base = base
        self.changes = dict(changes)
        self.delta = MatchIndex([s for s in self.changes.values() if s is not None])
        self.hidden = np.zeros(len(base), np.bool_)
        for actor in self.changes:
            n = base.position.get(actor)
            if n is not None:
                self.hidden[n] = True

    @property
    def schools(self) -> tuple[School, ...]:
        """The current schools."""
        kept = (s for n, s in enumerate(self.base.schools) if not self.hidden[n])
        return (*kept, *self.delta.schools)

    def rank(
        self,
        me: School,
        ctx: MatchContext,
        limit: int,
        endorsed_by: Mapping[str, frozenset[str]] | None = None,
        history: Mapping[str, tuple[int, int]] | None = None,
    ) -> list[Match]:
        """As `MatchIndex.rank` over the current schools."""
        layers = [(self.base, self.hidden), (self.delta, None)]
        return _rank_layers(me, ctx, limit, layers, endorsed_by or {}, history or {})


def _rank_layers(
    me: School,
    ctx: MatchContext,
    limit: int,
    layers: Sequence[tuple[MatchIndex, npt.NDArray[np.bool_] | None]],
    endorsed_by: Mapping[str, frozenset[str]],
    history: Mapping[str, tuple[int, int]],
) -> list[Match]:
    """The best `limit` matches of `me` in the indexes `layers` (less their hidden
    schools): exact evaluation in descending bound order, until no bound can enter."""
    if limit <= 0:
        return []
    found = [index.bounds(me, ctx, endorsed_by, history, hidden) for index, hidden in layers]
    owner = np.concatenate(
        [np.full(len(chosen), layer, np.intp) for layer, (chosen, _) in enumerate(found)]
    )
    chosen = np.concatenate([chosen for chosen, _ in found])
    bound = np.concatenate([bound for _, bound in found])
    order = np.argsort(-bound, kind="stable")
    best: list[Match] = []
    for at in order.tolist():
        if len(best) >= limit and bound[at] < best[-1].score:
            break
        index = layers[owner[at]][0]
        match = evaluate(me, index._school(int(chosen[at]), endorsed_by, history), ctx)
        if match is None:
            continue
        bisect.insort(best, match, key=rank_order)
        if len(best) > limit:
            best.pop()
    return best
