"""Time as the node writes it into documents (UTC, whole seconds, xsd:dateTime)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..federation.clock import Clock, system_clock

__all__ = ["Clock", "format_time", "later_than", "parse_time", "read_time", "system_clock"]


def format_time(moment: datetime) -> str:
    """`2026-11-28T22:04:28Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def read_time(text: object) -> datetime | None:
    """A document's time as another node wrote it (xsd:dateTime, checked when it was
    stored), or None when there is none or it does not read as one."""
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def later_than(previous: str | None, now: datetime) -> str:
    """`now`, or one second after `previous` if the clock has not moved past it.

    Every profile version gets a strictly later `updated`, so peers can order them.
    """
    if previous is not None:
        floor = parse_time(previous) + timedelta(seconds=1)
        if now < floor:
            return format_time(floor)
    return format_time(now)
