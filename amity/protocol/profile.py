"""The school profile in its import format: parsing and validation (DESIGN.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from .errors import ValidationFailed
from .suggest import (
    Reading,
    close_field,
    read_country,
    read_language,
    read_mode,
    read_subject,
    read_timezone,
    read_weekday,
)
from .text import clean_text
from .vocabulary import (
    MAX_AGE,
    MAX_CAPACITY,
    MAX_DESCRIPTION,
    MAX_LIST,
    MAX_LOCALITY,
    MAX_NAME,
    MAX_TERMS,
    MIN_AGE,
    MODES,
    WEEKDAYS,
)

# In the order of DESIGN.md's example, which is also the order problems are reported in.
FIELDS = (
    "name",
    "name_map",
    "country",
    "locality",
    "timezone",
    "languages",
    "ages",
    "subjects",
    "modes",
    "school_days",
    "school_hours",
    "terms",
    "capacity",
    "description",
    "pairing_rounds",
)
REQUIRED = (
    "country",
    "timezone",
    "languages",
    "ages",
    "modes",
    "school_days",
    "school_hours",
    "capacity",
)
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones() - {"localtime", "Factory"})


Reader = Callable[[str], Reading]


class _Checker:
    """Collects every problem instead of stopping at the first, each once. A list's items
    are named `field[index]` (`subjects[2]`, `languages.instruction[0]`)."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def fail(self, field: str, message: str) -> None:
        if (field, message) not in self.problems:
            self.problems.append((field, message))

    def text(self, field: str, value: Any, limit: int, *, multiline: bool = False) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.fail(field, "must be a non-empty string")
            return None
        cleaned = clean_text(value, multiline=multiline).strip()
        if not cleaned:
            self.fail(field, "has only invisible characters; write it in visible letters")
            return None
        if len(cleaned) > limit:
            self.fail(field, f"must be at most {limit} characters (got {len(cleaned)})")
            return None
        return cleaned

    def integer(self, field: str, value: Any, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, f"must be a whole number from {low} to {high}")
            return None
        if not low <= value <= high:
            self.fail(field, f"must be from {low} to {high} (got {value})")
            return None
        return value

    def read(self, field: str, value: Any, reader: Reader) -> str | None:
        """`value` as `reader` reads it; its problem (with what was meant) otherwise."""
        if not isinstance(value, str):
            self.fail(field, f"must be a string (got {json.dumps(value)})")
            return None
        reading = reader(value)
        if reading.problem is not None:
            self.fail(field, reading.problem)
        return reading.value

    def string_list(
        self, field: str, value: Any, reader: Reader, *, non_empty: bool = True
    ) -> list[str] | None:
        """Every item read; every bad item reported, and every value given more than once
        (once, at its first repeat). A bad value repeated is reported once."""
        if not isinstance(value, list) or (non_empty and not value):
            self.fail(field, "must be a non-empty list" if non_empty else "must be a list")
            return None
        if len(value) > MAX_LIST:
            self.fail(field, f"must have at most {MAX_LIST} entries (got {len(value)})")
            return None
        result: list[str] = []
        first: dict[str, int] = {}  # value read -> index of its first entry
        refused: set[str] = set()
        repeated: set[str] = set()
        good = True
        for index, item in enumerate(value):
            if isinstance(item, str) and item in refused:
                continue  # its problem is already reported
            read = self.read(f"{field}[{index}]", item, reader)
            if read is None:
                good = False
                if isinstance(item, str):
                    refused.add(item)
            elif read in first:
                good = False
                if read not in repeated:
                    repeated.add(read)
                    self.fail(
                        f"{field}[{index}]",
                        f"{item!r} repeats {field}[{first[read]}]; list each once",
                    )
            else:
                first[read] = index
                result.append(read)
        return result if good else None


def _check_languages(c: _Checker, value: Any) -> dict[str, list[str]] | None:
    if not isinstance(value, dict):
        c.fail("languages", 'must be an object {"instruction": [...], "learning": [...]}')
        return None
    unknown = sorted(set(value) - {"instruction", "learning"})
    if unknown:
        c.fail("languages", f"unknown key(s) {', '.join(unknown)}; allowed: instruction, learning")
    result: dict[str, list[str]] = {}
    for key, non_empty in (("instruction", True), ("learning", False)):
        field = f"languages.{key}"
        tags = c.string_list(field, value.get(key, []), read_language, non_empty=non_empty)
        if tags is not None:
            result[key] = tags
    return result if not unknown and len(result) == 2 else None


def _check_ages(c: _Checker, value: Any) -> list[int] | None:
    if not isinstance(value, list) or len(value) != 2:
        c.fail("ages", f"must be [youngest, oldest], each from {MIN_AGE} to {MAX_AGE}")
        return None
    low = c.integer("ages[0]", value[0], MIN_AGE, MAX_AGE)
    high = c.integer("ages[1]", value[1], MIN_AGE, MAX_AGE)
    if low is None or high is None:
        return None
    if low > high:
        c.fail("ages", f"youngest ({low}) must not be above oldest ({high})")
        return None
    return [low, high]


def _check_hours(c: _Checker, value: Any) -> list[str] | None:
    if not isinstance(value, list) or len(value) != 2:
        c.fail("school_hours", 'must be ["HH:MM", "HH:MM"] in 24-hour local time')
        return None
    good = True
    for index, hour in enumerate(value):
        if not isinstance(hour, str) or not _HHMM.match(hour):
            c.fail(f"school_hours[{index}]", f"{hour!r} is not a time as HH:MM (24-hour)")
            good = False
    if not good:
        return None
    if value[0] >= value[1]:
        c.fail("school_hours", f"start {value[0]} must be before end {value[1]}")
        return None
    return [value[0], value[1]]


def _parse_date(c: _Checker, field: str, value: Any) -> date | None:
    if isinstance(value, str) and _DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    c.fail(field, f"{value!r} is not a date as YYYY-MM-DD")
    return None


def _check_term(c: _Checker, field: str, term: Any) -> dict[str, str] | None:
    if not isinstance(term, dict) or not {"start", "end"} <= set(term):
        c.fail(field, 'must be {"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}')
        return None
    unknown = sorted(set(term) - {"start", "end"})
    if unknown:
        c.fail(field, f"unknown key(s) {', '.join(unknown)}; allowed: start, end")
    start = _parse_date(c, field + ".start", term["start"])
    end = _parse_date(c, field + ".end", term["end"])
    if start is None or end is None or unknown:
        return None
    if start > end:
        c.fail(field, f"start {start} must not be after end {end}")
        return None
    return {"start": start.isoformat(), "end": end.isoformat()}


def _check_terms(c: _Checker, value: Any) -> list[dict[str, str]] | None:
    if not isinstance(value, list) or len(value) > MAX_TERMS:
        c.fail("terms", f'must be a list of at most {MAX_TERMS} {{"start": ..., "end": ...}}')
        return None
    terms = [_check_term(c, f"terms[{index}]", term) for index, term in enumerate(value)]
    result = [term for term in terms if term is not None]
    if len(result) < len(terms):
        return None
    return sorted(result, key=lambda t: t["start"])


def _check_name_map(c: _Checker, value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict) or not value:
        c.fail("name_map", 'must be an object of language tag to name, such as {"en": "..."}')
        return None
    result: dict[str, str] = {}
    good = True
    for tag, name in value.items():
        field = f"name_map.{tag}"
        key = c.read(field, tag, read_language)
        text = c.text(field, name, MAX_NAME)
        if key is not None and key in result:
            c.fail(field, f"is a second name in {key}; give one name per language")
            good = False
        elif key is None or text is None:
            good = False
        else:
            result[key] = text
    return result if good else None


def _check_flag(c: _Checker, field: str, value: Any) -> bool | None:
    if not isinstance(value, bool):
        c.fail(field, f"must be true or false (got {json.dumps(value)})")
        return None
    return value


def _any_zone(value: str) -> Reading:
    """A received profile's zone: any name the tz database knows."""
    return Reading(value) if value in _zones() else read_timezone(value)


def validate_profile(data: Any, *, received: bool = False) -> dict[str, Any]:
    """The normalized profile, or ValidationFailed listing every problem found, each once.

    `received`: the profile comes in another node's signed document. The rules are the
    same but for the time zone: any name the tz database knows is taken, because earlier
    versions of Amity accepted old names such as US/Eastern. Texts are cleaned either way
    (`clean_text`); for a received profile that cleans what is shown and searched, as the
    signed document itself cannot change."""
    if not isinstance(data, dict):
        raise ValidationFailed([("profile", "must be a JSON object")])
    c = _Checker()
    for field in sorted(set(data) - set(FIELDS)):
        meant = close_field(field, FIELDS)
        hint = f"did you mean {meant!r}?" if meant else f"allowed fields: {', '.join(FIELDS)}"
        c.fail(field, f"unknown field; {hint}")
    for field in REQUIRED:
        if field not in data:
            c.fail(field, "is required")
    if "name" not in data and "name_map" not in data:
        c.fail("name", "is required (or give name_map)")
    country = data.get("country")
    home = read_country(country).value if isinstance(country, str) else None
    zone: Reader = _any_zone if received else (lambda value: read_timezone(value, home))
    out: dict[str, Any] = {}
    checks: dict[str, Callable[[Any], Any]] = {
        "name": lambda v: c.text("name", v, MAX_NAME),
        "name_map": lambda v: _check_name_map(c, v),
        "country": lambda v: c.read("country", v, read_country),
        "locality": lambda v: c.text("locality", v, MAX_LOCALITY),
        "timezone": lambda v: c.read("timezone", v, zone),
        "languages": lambda v: _check_languages(c, v),
        "ages": lambda v: _check_ages(c, v),
        "subjects": lambda v: c.string_list("subjects", v, read_subject, non_empty=False),
        "modes": lambda v: c.string_list("modes", v, lambda m: read_mode(m, MODES)),
        "school_days": lambda v: c.string_list("school_days", v, read_weekday),
        "school_hours": lambda v: _check_hours(c, v),
        "terms": lambda v: _check_terms(c, v),
        "capacity": lambda v: c.integer("capacity", v, 0, MAX_CAPACITY),
        "description": lambda v: c.text("description", v, MAX_DESCRIPTION, multiline=True),
        "pairing_rounds": lambda v: _check_flag(c, "pairing_rounds", v),
    }
    for field in FIELDS:
        if field in data:
            value = checks[field](data[field])
            if value is not None:
                out[field] = value
    if c.problems:
        raise ValidationFailed(c.problems)
    out.setdefault("subjects", [])
    out.setdefault("terms", [])
    if "school_days" in out:
        out["school_days"] = sorted(out["school_days"], key=WEEKDAYS.index)
    return {field: out[field] for field in FIELDS if field in out}


def parse_profile_json(text: str | bytes) -> dict[str, Any]:
    """Parse and validate a profile given as JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            [("profile", f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValidationFailed([("profile", "is not UTF-8 text")]) from exc
    return validate_profile(data)


def display_name(profile: dict[str, Any]) -> str:
    """The name to show when no language preference is known, cleaned for display (a
    received profile's name is shown as its author signed it, less invisible controls)."""
    if "name" in profile:
        return clean_text(str(profile["name"]))
    names: dict[str, str] = profile["name_map"]
    return clean_text(names.get("en") or next(iter(names.values())))
