"""Partner matching between two schools: the hard constraints, the score and its reasons
(DESIGN.md "Matching semantics"; docs/protocol.md "Matching").

Pure: the week, the time and what this node blocks and trusts are parameters.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

from .live_window import Interval, Timetable, live_windows, minutes, zone

LIVE_MINIMUM = 30  # weekly minutes of overlap that make live calls possible

# The score's parts (docs/protocol.md lists them): points for each.
TANDEM_POINTS = 30.0
SHARED_INSTRUCTION_POINTS = 10.0  # a language both teach in
LIVE_POINTS = 25.0  # for LIVE_FULL_MINUTES or more of weekly overlap, pro rata below
LIVE_FULL_MINUTES = 600
SUBJECT_POINTS = 5.0  # per shared subject
SUBJECT_MAX = 3  # shared subjects that count
ENDORSED_POINTS = 10.0  # endorsed by an authority this node trusts
ACTIVE_POINTS = 10.0  # profile updated within ACTIVE_FULL_DAYS, down to 0 at ACTIVE_ZERO_DAYS
ACTIVE_FULL_DAYS = 30
ACTIVE_ZERO_DAYS = 180
ANSWERED_POINTS = 10.0  # all earlier proposals answered
EXPIRED_POINTS = -20.0  # all earlier proposals left to expire
CAPACITY_POINTS = 2.0  # per free place of the partner
CAPACITY_MAX = 3  # free places that count


@dataclass(frozen=True)
class School:
    """What matching reads of one school."""

    actor: str
    name: str
    country: str
    timezone: str
    instruction: tuple[str, ...]
    learning: tuple[str, ...]
    ages: tuple[int, int]
    subjects: frozenset[str]
    modes: frozenset[str]
    school_days: tuple[str, ...]
    school_hours: tuple[str, str]
    terms: tuple[tuple[date, date], ...]
    capacity: int  # free places: the profile's capacity less active partnerships
    endorsed_by: frozenset[str] = frozenset()  # authorities whose endorsement counts now
    last_active: datetime | None = None
    proposals_answered: int = 0  # earlier proposals it accepted or declined
    proposals_expired: int = 0  # earlier proposals it let expire unanswered

    @cached_property
    def timetable(self) -> Timetable:
        return Timetable(self.timezone, self.school_days, self.school_hours, self.terms)


def school_from_profile(actor: str, profile: dict[str, Any], **extra: Any) -> School:
    """The School a validated import-format profile describes; `extra` sets the fields a
    profile does not hold (capacity as free places, endorsed_by, last_active, ...)."""
    name = profile.get("name")
    if not isinstance(name, str):
        names: dict[str, str] = profile["name_map"]
        name = names.get("en") or next(iter(names.values()))
    fields: dict[str, Any] = {
        "actor": actor,
        "name": name,
        "country": profile["country"],
        "timezone": profile["timezone"],
        "instruction": tuple(profile["languages"]["instruction"]),
        "learning": tuple(profile["languages"].get("learning", [])),
        "ages": (int(profile["ages"][0]), int(profile["ages"][1])),
        "subjects": frozenset(profile.get("subjects", [])),
        "modes": frozenset(profile["modes"]),
        "school_days": tuple(profile["school_days"]),
        "school_hours": (profile["school_hours"][0], profile["school_hours"][1]),
        "terms": tuple(
            (date.fromisoformat(t["start"]), date.fromisoformat(t["end"]))
            for t in profile.get("terms", [])
        ),
        "capacity": int(profile["capacity"]),
    }
    fields.update(extra)
    return School(**fields)


@dataclass(frozen=True)
class MatchContext:
    """What a match is judged against: the week (a Monday), the time (UTC), the actors this
    node blocks and the authorities it trusts."""

    week: date
    now: datetime
    blocked: frozenset[str] = frozenset()
    trusted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Match:
    """One candidate partner for `me`, with everything a teacher needs to see why."""

    me: School
    other: School
    score: float
    working_languages: tuple[str, ...]
    tandem: bool
    live_minutes: int
    live_possible: bool
    windows: tuple[Interval, ...]
    parts: dict[str, float]  # the score's parts, by name
    context: MatchContext

    @cached_property
    def reasons(self) -> tuple[str, ...]:
        """Sentences a teacher can read (written when first asked for: ranking many pairs
        needs only the numbers)."""
        return tuple(_reasons(self))

    def to_json(self) -> dict[str, Any]:
        """The object `amity match --json` prints (docs/protocol.md "Matching")."""
        mine, theirs = zone(self.me.timezone), zone(self.other.timezone)
        return {
            "actor": self.other.actor,
            "name": self.other.name,
            "country": self.other.country,
            "score": self.score,
            "working_languages": list(self.working_languages),
            "tandem": self.tandem,
            "live_minutes": self.live_minutes,
            "live_possible": self.live_possible,
            "windows": [
                {
                    "start": _utc(start),
                    "end": _utc(end),
                    "local_self": {
                        "start": start.astimezone(mine).isoformat(),
                        "end": end.astimezone(mine).isoformat(),
                    },
                    "local_partner": {
                        "start": start.astimezone(theirs).isoformat(),
                        "end": end.astimezone(theirs).isoformat(),
                    },
                }
                for start, end in self.windows
            ],
            "reasons": list(self.reasons),
            "score_parts": dict(self.parts),
        }


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def working_languages(me: School, other: School) -> tuple[str, ...]:
    """Languages both can use, sorted: taught in by one, taught in or learned by the other."""
    mine = set(me.instruction) | set(me.learning)
    theirs = set(other.instruction) | set(other.learning)
    found = (set(me.instruction) & theirs) | (set(other.instruction) & mine)
    return tuple(sorted(found))


def is_tandem(me: School, other: School) -> bool:
    """Each learns a language the other teaches in."""
    return bool(set(me.learning) & set(other.instruction)) and bool(
        set(other.learning) & set(me.instruction)
    )


def _tags(tags: Iterable[str]) -> str:
    listed = sorted(tags)
    return ", ".join(listed) if listed else "none"


def _static_exclusions(me: School, other: School, ctx: MatchContext) -> list[str]:
    """The constraints that do not depend on the week."""
    found: list[str] = []
    if me.country == other.country:
        found.append(f"Same country ({other.country}): partners are schools abroad.")
    if me.capacity <= 0:
        found.append("Your school has no free partnership place left (capacity used up).")
    if other.capacity <= 0:
        found.append(f"{other.name} has no free partnership place left.")
    if other.actor in ctx.blocked:
        found.append("You block this school.")
    low, high = max(me.ages[0], other.ages[0]), min(me.ages[1], other.ages[1])
    if low > high:
        found.append(
            f"Ages do not overlap: your pupils are {me.ages[0]}-{me.ages[1]}, "
            f"theirs {other.ages[0]}-{other.ages[1]}."
        )
    if not working_languages(me, other):
        found.append(
            f"No working language: you teach in {_tags(me.instruction)} and learn "
            f"{_tags(me.learning)}; they teach in {_tags(other.instruction)} and learn "
            f"{_tags(other.learning)}."
        )
    return found


def _mode_exclusion(me: School, other: School, live_possible: bool) -> str | None:
    """Why the pair has no way to work together that week, or None."""
    if live_possible or ("async" in me.modes and "async" in other.modes):
        return None
    return (
        f"No way to work together: you offer {_tags(me.modes)}, they offer "
        f"{_tags(other.modes)}, and there is no live window of {LIVE_MINIMUM} minutes "
        "that week."
    )


def exclusions(me: School, other: School, ctx: MatchContext) -> list[str]:
    """Every hard constraint the pair fails, as sentences; [] when `other` is a candidate.

    A school that blocks `me` is not known here: its node refuses `me`'s requests."""
    found = _static_exclusions(me, other, ctx)
    windows = live_windows(me.timetable, other.timetable, ctx.week)
    both_live = "live" in me.modes and "live" in other.modes
    mode = _mode_exclusion(me, other, both_live and minutes(windows) >= LIVE_MINIMUM)
    if mode is not None:
        found.append(mode)
    return found


def activity_points(last_active: datetime | None, now: datetime) -> tuple[float, int | None]:
    if last_active is None:
        return 0.0, None
    days = max(0, (now - last_active).days)
    if days <= ACTIVE_FULL_DAYS:
        return ACTIVE_POINTS, days
    if days >= ACTIVE_ZERO_DAYS:
        return 0.0, days
    share = (ACTIVE_ZERO_DAYS - days) / (ACTIVE_ZERO_DAYS - ACTIVE_FULL_DAYS)
    return ACTIVE_POINTS * share, days


def answer_points(other: School) -> float:
    total = other.proposals_answered + other.proposals_expired
    if total == 0:
        return 0.0
    return (
        ANSWERED_POINTS * other.proposals_answered + EXPIRED_POINTS * other.proposals_expired
    ) / total


def _possible(me: School, other: School, ctx: MatchContext) -> bool:
    """The constraints that do not depend on the week, checked without words (fast)."""
    return (
        me.country != other.country
        and me.capacity > 0
        and other.capacity > 0
        and other.actor not in ctx.blocked
        and max(me.ages[0], other.ages[0]) <= min(me.ages[1], other.ages[1])
        and bool(
            set(me.instruction) & (set(other.instruction) | set(other.learning))
            or set(other.instruction) & set(me.learning)
        )
    )


def evaluate(me: School, other: School, ctx: MatchContext) -> Match | None:
    """The match of `me` with `other` for the week `ctx.week`; None if a hard constraint
    fails (`exclusions` says which)."""
    if not _possible(me, other, ctx):
        return None
    windows = live_windows(me.timetable, other.timetable, ctx.week)
    live = minutes(windows)
    both_live = "live" in me.modes and "live" in other.modes
    live_possible = both_live and live >= LIVE_MINIMUM
    if not live_possible and not ("async" in me.modes and "async" in other.modes):
        return None
    tandem = is_tandem(me, other)
    parts = {
        "tandem": TANDEM_POINTS if tandem else 0.0,
        "shared_instruction": SHARED_INSTRUCTION_POINTS
        if set(me.instruction) & set(other.instruction)
        else 0.0,
        "live": LIVE_POINTS * min(live, LIVE_FULL_MINUTES) / LIVE_FULL_MINUTES
        if both_live
        else 0.0,
        "subjects": SUBJECT_POINTS * min(len(me.subjects & other.subjects), SUBJECT_MAX),
        "endorsed": ENDORSED_POINTS if other.endorsed_by & ctx.trusted else 0.0,
        "active": activity_points(other.last_active, ctx.now)[0],
        "answers": answer_points(other),
        "capacity": CAPACITY_POINTS * min(other.capacity, CAPACITY_MAX),
    }
    parts = {name: round(value, 2) for name, value in parts.items()}
    return Match(
        me=me,
        other=other,
        score=round(sum(parts.values()), 2),
        working_languages=working_languages(me, other),
        tandem=tandem,
        live_minutes=live,
        live_possible=live_possible,
        windows=tuple(windows),
        parts=parts,
        context=ctx,
    )


def _reasons(match: Match) -> list[str]:
    me, other, ctx = match.me, match.other, match.context
    languages = match.working_languages
    shared_instruction = sorted(set(me.instruction) & set(other.instruction))
    shared_subjects = sorted(me.subjects & other.subjects)
    trusted = sorted(other.endorsed_by & ctx.trusted)
    days = activity_points(other.last_active, ctx.now)[1]
    reasons = [f"Working language{'s' if len(languages) > 1 else ''}: {', '.join(languages)}."]
    if match.tandem:
        reasons.append(
            f"Language tandem: you learn {_tags(set(me.learning) & set(other.instruction))}, "
            f"which they teach in; they learn {_tags(set(other.learning) & set(me.instruction))},"
            " which you teach in."
        )
    if shared_instruction:
        reasons.append(f"Both teach in {', '.join(shared_instruction)}.")
    reasons.append(_live_reason(match))
    if shared_subjects:
        reasons.append(f"Shared subjects ({len(shared_subjects)}): {', '.join(shared_subjects)}.")
    else:
        reasons.append("No shared subjects.")
    if trusted:
        reasons.append(f"Endorsed by an authority you trust: {', '.join(trusted)}.")
    if days is not None:
        reasons.append(f"Profile last updated {days} day{'s' if days != 1 else ''} ago.")
    total = other.proposals_answered + other.proposals_expired
    if total:
        reasons.append(
            f"Answered {other.proposals_answered} of {total} earlier proposal"
            f"{'s' if total != 1 else ''}; let {other.proposals_expired} expire."
        )
    reasons.append(f"{other.capacity} free partnership place{'s' if other.capacity != 1 else ''}.")
    return reasons


def _live_reason(match: Match) -> str:
    me, other, live, count = match.me, match.other, match.live_minutes, len(match.windows)
    if not ("live" in me.modes and "live" in other.modes):
        return (
            f"Asynchronous exchange only: you offer {_tags(me.modes)}, they offer "
            f"{_tags(other.modes)} ({live} minutes of school hours in common that week)."
        )
    if match.live_possible:
        return (
            f"Live calls possible: {live} minutes of school hours in common that week, "
            f"in {count} window{'s' if count != 1 else ''}."
        )
    return (
        f"No live calls that week ({live} minutes of school hours in common, fewer than "
        f"{LIVE_MINIMUM}); asynchronous exchange instead."
    )


def rank_order(match: Match) -> tuple[float, int, str, str]:
    """The key ranking sorts by: score (high first), live minutes (more first), name, actor."""
    return (-match.score, -match.live_minutes, match.other.name, match.other.actor)


def rank(me: School, others: Iterable[School], ctx: MatchContext, limit: int) -> list[Match]:
    """The best `limit` candidates among `others`, best first (score, then live minutes,
    then name, then actor); `me` itself and excluded schools are left out."""
    found = (
        match
        for other in others
        if other.actor != me.actor
        for match in (evaluate(me, other, ctx),)
        if match is not None
    )
    return heapq.nsmallest(limit, found, key=rank_order)
