"""Weekly live windows: when two schools are both at school, in UTC, for one real week.

Each school's week is its own Monday to Sunday (the seven local dates from `week`). On
each of its school days that falls inside one of its terms, its school hours are turned
into a UTC interval with its zone's own rules for that date (zoneinfo), so a week in
which one zone has changed to or from summer time and the other has not comes out right.
A school that lists no terms is taken to be in term on every date (it has not said when
its holidays are). The live windows of a pair are the intersections of the two schools'
intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from .vocabulary import WEEKDAYS

Interval = tuple[datetime, datetime]  # [start, end) in UTC, aware


@dataclass(frozen=True)
class Timetable:
    """What the live window reads of one school."""

    timezone: str
    school_days: tuple[str, ...]
    school_hours: tuple[str, str]
    terms: tuple[tuple[date, date], ...] = ()


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The tz database zone `name` (cached: a ranking reads the same few zones often)."""
    return ZoneInfo(name)


def in_term(day: date, terms: Sequence[tuple[date, date]]) -> bool:
    """True if `day` is inside one of `terms` (both ends included), or no terms are listed."""
    return not terms or any(start <= day <= end for start, end in terms)


def _clock_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


@lru_cache(maxsize=65536)
def school_intervals(table: Timetable, week: date) -> tuple[Interval, ...]:
    """The school's hours in the week starting on the Monday `week`, as UTC intervals in
    order, one per school day in term (overlapping ones merged)."""
    tz = zone(table.timezone)
    opens, closes = (_clock_time(t) for t in table.school_hours)
    days = set(table.school_days)
    found: list[Interval] = []
    for offset in range(7):
        day = week + timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in days or not in_term(day, table.terms):
            continue
        start = datetime.combine(day, opens, tz).astimezone(UTC)
        end = datetime.combine(day, closes, tz).astimezone(UTC)
        if end <= start:  # school hours wholly inside a skipped hour of a clock change
            continue
        if found and start <= found[-1][1]:
            found[-1] = (found[-1][0], max(found[-1][1], end))
        else:
            found.append((start, end))
    return tuple(found)


def overlap(first: Sequence[Interval], second: Sequence[Interval]) -> list[Interval]:
    """The intersections of two ordered lists of disjoint intervals, in order; intervals
    that touch are joined."""
    result: list[Interval] = []
    i = j = 0
    while i < len(first) and j < len(second):
        start = max(first[i][0], second[j][0])
        end = min(first[i][1], second[j][1])
        if start < end:
            if result and result[-1][1] == start:
                result[-1] = (result[-1][0], end)
            else:
                result.append((start, end))
        if first[i][1] <= second[j][1]:
            i += 1
        else:
            j += 1
    return result


def live_windows(me: Timetable, other: Timetable, week: date) -> list[Interval]:
    """The UTC intervals of the week `week` (a Monday) when both schools are at school."""
    return overlap(school_intervals(me, week), school_intervals(other, week))


def minutes(windows: Sequence[Interval]) -> int:
    """Whole minutes in `windows` (school hours are whole minutes, so this is exact)."""
    return sum(int((end - start).total_seconds()) // 60 for start, end in windows)


def monday_of(day: date) -> date:
    """The Monday of the week `day` is in."""
    return day - timedelta(days=day.weekday())


def coming_monday(now: datetime) -> date:
    """The Monday of the coming week: the next Monday after `now`'s UTC date (a week away
    when `now` is a Monday)."""
    today = now.astimezone(UTC).date()
    return monday_of(today) + timedelta(days=7)


WEEKS_IN_REACH = 520  # how far from the coming week a computed week may be (ten years)


def in_reach(week: date, coming: date) -> bool:
    """True if `week` is within WEEKS_IN_REACH weeks of `coming` (the coming Monday): no
    school plans further, and dates near the ends of the calendar (year 1, year 9999)
    cannot be converted between zones."""
    return abs((week - coming).days) <= 7 * WEEKS_IN_REACH
