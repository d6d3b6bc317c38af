"""The school profile in its import format: parsing and validation (DESIGN.md)."""

from __future__ import annotations

import json
import re
from datetime import date
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

import langcodes
import pycountry

from .errors import ValidationFailed
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
    SUBJECTS,
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


class _Checker:
    """Collects every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def fail(self, field: str, message: str) -> None:
        self.problems.append((field, message))

    def text(self, field: str, value: Any, limit: int) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.fail(field, "must be a non-empty string")
            return None
        if len(value) > limit:
            self.fail(field, f"must be at most {limit} characters (got {len(value)})")
            return None
        return value.strip()

    def integer(self, field: str, value: Any, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, f"must be a whole number from {low} to {high}")
            return None
        if not low <= value <= high:
            self.fail(field, f"must be from {low} to {high} (got {value})")
            return None
        return value

    def language(self, field: str, value: Any) -> str | None:
        standard = _standard_tag(value) if isinstance(value, str) else None
        if standard is None:
            self.fail(field, f"{value!r} is not a BCP 47 language tag (such as 'en', 'pt-BR')")
        return standard

    def string_list(
        self,
        field: str,
        value: Any,
        allowed: frozenset[str] | tuple[str, ...] | None = None,
        *,
        non_empty: bool = True,
    ) -> list[str] | None:
        if not isinstance(value, list) or (non_empty and not value):
            self.fail(field, "must be a non-empty list" if non_empty else "must be a list")
            return None
        if len(value) > MAX_LIST:
            self.fail(field, f"must have at most {MAX_LIST} entries")
            return None
        result: list[str] = []
        for item in value:
            if not isinstance(item, str):
                self.fail(field, f"entries must be strings (got {json.dumps(item)})")
                return None
            if allowed is not None and item not in allowed:
                self.fail(field, f"{item!r} is not one of: {', '.join(sorted(allowed))}")
                return None
            if item in result:
                self.fail(field, f"{item!r} is listed twice")
                return None
            result.append(item)
        return result


@lru_cache(maxsize=4096)
def _standard_tag(value: str) -> str | None:
    """The standard form of a language tag, None if it is not one; cached because every
    profile a directory takes in is checked again, and langcodes is slow."""
    if not langcodes.tag_is_valid(value):
        return None
    return str(langcodes.standardize_tag(value))


def _check_languages(c: _Checker, value: Any) -> dict[str, list[str]] | None:
    if not isinstance(value, dict):
        c.fail("languages", 'must be an object {"instruction": [...], "learning": [...]}')
        return None
    unknown = sorted(set(value) - {"instruction", "learning"})
    if unknown:
        c.fail("languages", f"unknown key(s) {', '.join(unknown)}; allowed: instruction, learning")
        return None
    result: dict[str, list[str]] = {}
    for key, non_empty in (("instruction", True), ("learning", False)):
        field = f"languages.{key}"
        tags = c.string_list(field, value.get(key, []), non_empty=non_empty)
        if tags is None:
            return None
        normalized = [c.language(field, tag) for tag in tags]
        if any(tag is None for tag in normalized):
            return None
        result[key] = [tag for tag in normalized if tag is not None]
    return result


def _check_ages(c: _Checker, value: Any) -> list[int] | None:
    if not isinstance(value, list) or len(value) != 2:
        c.fail("ages", f"must be [youngest, oldest], each from {MIN_AGE} to {MAX_AGE}")
        return None
    low = c.integer("ages", value[0], MIN_AGE, MAX_AGE)
    high = c.integer("ages", value[1], MIN_AGE, MAX_AGE)
    if low is None or high is None:
        return None
    if low > high:
        c.fail("ages", f"youngest ({low}) must not be above oldest ({high})")
        return None
    return [low, high]


def _check_hours(c: _Checker, value: Any) -> list[str] | None:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, str) and _HHMM.match(v) for v in value)
    ):
        c.fail("school_hours", 'must be ["HH:MM", "HH:MM"] in 24-hour local time')
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


def _check_terms(c: _Checker, value: Any) -> list[dict[str, str]] | None:
    if not isinstance(value, list) or len(value) > MAX_TERMS:
        c.fail("terms", f'must be a list of at most {MAX_TERMS} {{"start": ..., "end": ...}}')
        return None
    result = []
    for index, term in enumerate(value):
        field = f"terms[{index}]"
        if not isinstance(term, dict) or set(term) != {"start", "end"}:
            c.fail(field, 'must be {"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}')
            return None
        start = _parse_date(c, field + ".start", term["start"])
        end = _parse_date(c, field + ".end", term["end"])
        if start is None or end is None:
            return None
        if start > end:
            c.fail(field, f"start {start} must not be after end {end}")
            return None
        result.append({"start": start.isoformat(), "end": end.isoformat()})
    return sorted(result, key=lambda t: t["start"])


def _check_name_map(c: _Checker, value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict) or not value:
        c.fail("name_map", 'must be an object of language tag to name, such as {"en": "..."}')
        return None
    result = {}
    for tag, name in value.items():
        key = c.language("name_map", tag)
        text = c.text(f"name_map.{tag}", name, MAX_NAME)
        if key is None or text is None:
            return None
        result[key] = text
    return result


def validate_profile(data: Any) -> dict[str, Any]:
    """The normalized profile, or ValidationFailed listing every problem found."""
    if not isinstance(data, dict):
        raise ValidationFailed([("profile", "must be a JSON object")])
    c = _Checker()
    unknown = sorted(set(data) - set(FIELDS))
    for field in unknown:
        c.fail(field, f"unknown field; allowed fields: {', '.join(FIELDS)}")
    for field in REQUIRED:
        if field not in data:
            c.fail(field, "is required")
    if "name" not in data and "name_map" not in data:
        c.fail("name", "is required (or give name_map)")
    out: dict[str, Any] = {}
    checks: dict[str, Any] = {
        "name": lambda v: c.text("name", v, MAX_NAME),
        "name_map": lambda v: _check_name_map(c, v),
        "country": lambda v: _check_country(c, v),
        "locality": lambda v: c.text("locality", v, MAX_LOCALITY),
        "timezone": lambda v: _check_timezone(c, v),
        "languages": lambda v: _check_languages(c, v),
        "ages": lambda v: _check_ages(c, v),
        "subjects": lambda v: c.string_list("subjects", v, SUBJECTS, non_empty=False),
        "modes": lambda v: c.string_list("modes", v, MODES),
        "school_days": lambda v: c.string_list("school_days", v, WEEKDAYS),
        "school_hours": lambda v: _check_hours(c, v),
        "terms": lambda v: _check_terms(c, v),
        "capacity": lambda v: c.integer("capacity", v, 0, MAX_CAPACITY),
        "description": lambda v: c.text("description", v, MAX_DESCRIPTION),
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


@lru_cache(maxsize=512)
def _country(code: str) -> str | None:
    country = pycountry.countries.get(alpha_2=code.upper())
    return str(country.alpha_2) if country is not None else None


def _check_country(c: _Checker, value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 2:
        country = _country(value)
        if country is not None:
            return country
    c.fail("country", f"{value!r} is not an ISO 3166-1 alpha-2 country code (such as 'MX')")
    return None


def _check_timezone(c: _Checker, value: Any) -> str | None:
    if isinstance(value, str) and value in _zones():
        return value
    c.fail("timezone", f"{value!r} is not an IANA time zone name (such as 'Europe/Paris')")
    return None


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
    """The name to show when no language preference is known."""
    if "name" in profile:
        return str(profile["name"])
    names: dict[str, str] = profile["name_map"]
    return names.get("en") or next(iter(names.values()))
