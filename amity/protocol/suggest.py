"""Reading what a person typed: the exact code Amity stores, or what is wrong with the text
and the code that was meant ("did you mean Africa/Nairobi?").

One rule for every field and every `amity directory` filter: a value is taken as it is
when it is the code itself, in any letter case the code's standard ignores (country codes
and language tags: `ke` is `KE`, `EN-gb` is `en-GB`). Anything else that reads as one
meaning (a time zone's old name or its city alone, a country or language by name, a day
by name, a subject in capitals) is refused with that meaning, so what is stored is what
the file says. Used by profile validation and by the CLI.

The data comes from the packages installed with Amity (tzdata, pycountry, babel); nothing
is fetched.
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import langcodes
import pycountry

from .vocabulary import SUBJECTS, WEEKDAYS


@dataclass(frozen=True)
class Reading:
    """A typed value read: `value` is the code to store, else `problem` says why not."""

    value: str | None = None
    problem: str | None = None


def _fold(text: str) -> str:
    """Case, accents, spaces and underscores ignored: `São Paulo` -> `saopaulo`."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = (c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in kept if c not in " _-'.\u2019")


def _one_of(options: list[str]) -> str:
    if len(options) == 1:
        return f"did you mean {options[0]}?"
    return f"did you mean one of {', '.join(options[:-1])} or {options[-1]}?"


# --- time zones -------------------------------------------------------------------------


def _tzdata(name: str) -> str:
    return resources.files("tzdata").joinpath("zoneinfo", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _zone_table() -> tuple[frozenset[str], dict[str, list[str]]]:
    """The canonical Area/Location zones (every zone zone.tab or zone1970.tab lists for a
    country), and the zones of each country (zone.tab: each country's own zones)."""
    canonical: set[str] = set()
    by_country: dict[str, list[str]] = {}
    for table in ("zone.tab", "zone1970.tab"):
        for line in _tzdata(table).splitlines():
            if line.startswith("#") or not line.strip():
                continue
            countries, _, zone = line.split("\t")[:3]
            canonical.add(zone)
            if table == "zone.tab":
                by_country.setdefault(countries, []).append(zone)
    return frozenset(canonical), by_country


@lru_cache(maxsize=1)
def _links() -> dict[str, str]:
    """Every other name of the tz database (backward links such as US/Eastern) -> the zone
    it stands for."""
    links: dict[str, str] = {}
    for line in _tzdata("tzdata.zi").splitlines():
        if line.startswith("L "):
            _, target, name = line.split()
            links[name] = target
    return links


def canonical_zones() -> frozenset[str]:
    return _zone_table()[0]


def country_zones(country: str) -> list[str]:
    return list(_zone_table()[1].get(country.upper(), []))


@lru_cache(maxsize=1)
def _locations() -> dict[str, list[str]]:
    """A zone's location part, folded (`newyork`), -> the canonical zones it names."""
    canonical = canonical_zones()
    found: dict[str, list[str]] = {}
    for zone in sorted(canonical):
        found.setdefault(_fold(zone.rsplit("/", 1)[-1]), []).append(zone)
    for name, target in sorted(_links().items()):
        if "/" in name and target in canonical:
            zones = found.setdefault(_fold(name.rsplit("/", 1)[-1]), [])
            if target not in zones:
                zones.append(target)
    return found


# Abbreviations people write for a zone, and the zone usually meant.
_ABBREVIATIONS = {
    "EST": "America/New_York",
    "EDT": "America/New_York",
    "CST": "America/Chicago",
    "CDT": "America/Chicago",
    "MST": "America/Denver",
    "MDT": "America/Denver",
    "PST": "America/Los_Angeles",
    "PDT": "America/Los_Angeles",
    "AKST": "America/Anchorage",
    "HST": "Pacific/Honolulu",
    "EST5EDT": "America/New_York",
    "CST6CDT": "America/Chicago",
    "MST7MDT": "America/Denver",
    "PST8PDT": "America/Los_Angeles",
    "BST": "Europe/London",
    "WET": "Europe/Lisbon",
    "EET": "Europe/Athens",
    "MSK": "Europe/Moscow",
    "JST": "Asia/Tokyo",
    "KST": "Asia/Seoul",
    "SAST": "Africa/Johannesburg",
    "EAT": "Africa/Nairobi",
    "WAT": "Africa/Lagos",
    "CAT": "Africa/Maputo",
    "AEST": "Australia/Sydney",
    "AEDT": "Australia/Sydney",
    "NZST": "Pacific/Auckland",
}
_SEVERAL = {
    "CET": ("Europe/Paris", "Europe/Berlin"),
    "CEST": ("Europe/Paris", "Europe/Berlin"),
    "IST": ("Asia/Kolkata", "Europe/Dublin"),
}
_FIXED = frozenset({"EST", "MST"})  # tz database names for a bare offset, not a place
_UNIVERSAL = frozenset(
    {"UTC", "UCT", "GMT", "GMT0", "GMT+0", "GMT-0", "GREENWICH", "UNIVERSAL", "ZULU", "Z"}
)
_EXAMPLE_ZONE = "'Africa/Nairobi'"


@lru_cache(maxsize=1)
def _folded_names() -> tuple[dict[str, str], dict[str, str]]:
    """Canonical zones and link names by their case-folded spelling."""
    links = {name.casefold(): target for name, target in _links().items()}
    return {zone.casefold(): zone for zone in canonical_zones()}, links


def read_timezone(text: str, country: str | None = None) -> Reading:
    """A canonical IANA Area/Location zone. `country` (alpha-2), when known, narrows what
    is suggested for a zone that is not a place (UTC)."""
    canonical = canonical_zones()
    if text in canonical:
        return Reading(text)
    stripped = text.strip()
    if stripped in canonical:
        return Reading(problem=f"{text!r} has spaces around it; did you mean {stripped}?")
    upper = stripped.upper()
    if upper in _SEVERAL:
        return Reading(
            problem=f"{text!r} is an abbreviation that several zones use; give the zone of "
            f"the school's city, such as {' or '.join(_SEVERAL[upper])}"
        )
    meant = _ABBREVIATIONS.get(upper)
    if upper in _FIXED and meant is not None:
        city = meant.rsplit("/", 1)[1].replace("_", " ")
        return Reading(
            problem=f"{text!r} is a fixed offset from UTC with no daylight saving (a school in "
            f"{city} would be an hour wrong half the year); give the school's zone as "
            f"Area/Location: did you mean {meant}?"
        )
    if meant is not None:
        return Reading(
            problem=f"{text!r} is an abbreviation, not a time zone; did you mean {meant}?"
        )
    if upper in _UNIVERSAL or upper.startswith("ETC/"):
        return Reading(problem=_universal(text, country))
    by_case, links = _folded_names()
    if stripped.casefold() in by_case:
        return Reading(
            problem=f"{text!r} is not written as the IANA database writes it; "
            f"did you mean {by_case[stripped.casefold()]}?"
        )
    target = links.get(stripped.casefold())
    if target is not None and "/" in stripped and target in canonical:
        return Reading(
            problem=f"{text!r} is an old name kept for compatibility; did you mean {target}?"
        )
    location = _fold(stripped.rsplit("/", 1)[-1])
    places = _locations().get(location)
    if places:
        return Reading(problem=f"{text!r} is not a full zone name; {_one_of(places)}")
    nation = _country_by_name(stripped) if len(stripped) > 3 else None
    zones = country_zones(nation) if nation else []
    if zones:
        return Reading(problem=f"{text!r} is a country, not a time zone; {_one_of(zones[:4])}")
    close = difflib.get_close_matches(location, list(_locations()), 3, 0.8)
    if close:
        options = sorted({zone for key in close for zone in _locations()[key]})
        return Reading(problem=f"{text!r} is not an IANA time zone name; {_one_of(options)}")
    return Reading(
        problem=f"{text!r} is not an IANA time zone name (Area/Location, such as {_EXAMPLE_ZONE})"
    )


def _universal(text: str, country: str | None) -> str:
    """A real school keeps its local time, never UTC: the zone of its city is asked for."""
    zones = country_zones(country) if country else []
    if len(zones) == 1:
        hint = f": did you mean {zones[0]}?"
    elif zones:
        hint = f", such as {', '.join(zones[:3])}"
    else:
        hint = f", such as {_EXAMPLE_ZONE}"
    return (
        f"{text!r} is not a school's local time (it has no daylight saving or local rules); "
        f"give the zone of the school's city{hint}"
    )


# --- countries --------------------------------------------------------------------------

_COUNTRY_ALIASES = {"UK": "GB", "EL": "GR"}  # codes people use that ISO 3166-1 does not


@lru_cache(maxsize=512)
def _country_by_name(text: str) -> str | None:
    """The alpha-2 code of a country given by name or by another ISO code."""
    if text.upper() in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[text.upper()]
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        pass
    names = _country_names()
    folded = _fold(text)
    if folded in names:
        return names[folded]
    close = difflib.get_close_matches(folded, list(names), 1, 0.8) if len(folded) > 3 else []
    return names[close[0]] if close else None


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for country in pycountry.countries:
        for attribute in ("name", "official_name", "common_name"):
            name = getattr(country, attribute, None)
            if name:
                names.setdefault(_fold(name), str(country.alpha_2))
    return names


def country_label(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    name = getattr(country, "common_name", None) or getattr(country, "name", code)
    return f"{code} ({name})"


def read_country(text: str) -> Reading:
    """An ISO 3166-1 alpha-2 code, any case (stored in upper case)."""
    if len(text) == 2 and pycountry.countries.get(alpha_2=text.upper()) is not None:
        return Reading(text.upper())
    stripped = text.strip()
    code = _country_by_name(stripped) if stripped else None
    if code is not None and len(stripped) == 3 and stripped.isalpha():
        kind = "an alpha-3 code, not an ISO 3166-1 alpha-2 code"
    elif code is not None and stripped.isdigit():
        kind = "a numeric code, not an ISO 3166-1 alpha-2 code"
    elif code is not None and len(stripped) > 3:
        kind = "a country name, not an ISO 3166-1 alpha-2 code"
    else:
        kind = "not an ISO 3166-1 alpha-2 country code"
    if code is None and len(stripped) >= 4:
        try:
            found = pycountry.countries.search_fuzzy(stripped)
        except LookupError:
            found = []
        if len(found) == 1:
            code = str(found[0].alpha_2)
    if code is not None:
        return Reading(problem=f"{text!r} is {kind}; did you mean {country_label(code)}?")
    return Reading(problem=f"{text!r} is not an ISO 3166-1 alpha-2 country code (such as 'MX')")


# --- languages --------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def standard_tag(value: str) -> str | None:
    """The standard form of a language tag, None if it is not one; cached because every
    profile a directory takes in is checked again, and langcodes is slow."""
    if not langcodes.tag_is_valid(value):
        return None
    return str(langcodes.standardize_tag(value))


@lru_cache(maxsize=1)
def _language_names() -> dict[str, str]:
    """Language names in English (`spanish`) -> tag, from babel's CLDR data."""
    from babel import Locale

    return {_fold(name): code.replace("_", "-") for code, name in Locale("en").languages.items()}


@lru_cache(maxsize=1)
def _autonyms() -> dict[str, str]:
    """Each language's name for itself (`español`, `kiswahili`) -> tag. Built only when
    a name is not English: it reads every locale babel has (half a second)."""
    from babel import Locale, UnknownLocaleError
    from babel.localedata import locale_identifiers

    known = set(locale_identifiers())
    names: dict[str, str] = {}
    for code in Locale("en").languages:
        if code not in known:
            continue
        try:
            name = Locale.parse(code).languages.get(code)
        except (ValueError, UnknownLocaleError):
            continue
        if name:
            names.setdefault(_fold(name), code.replace("_", "-"))
    return names


def language_label(tag: str) -> str:
    from babel import Locale, UnknownLocaleError

    try:
        name = Locale.parse(tag, sep="-").get_display_name(Locale("en"))
    except (ValueError, UnknownLocaleError):
        return tag
    return f"{tag} ({name})" if name else tag


def read_language(text: str) -> Reading:
    """A BCP 47 tag in its standard form (`pt-br` -> `pt-BR`)."""
    tag = standard_tag(text)
    if tag is not None:
        return Reading(tag)
    folded = _fold(text)
    meant = _language_names().get(folded) or (_autonyms().get(folded) if folded else None)
    if meant is not None and standard_tag(meant):
        meant = standard_tag(meant) or meant
        return Reading(
            problem=f"{text!r} is a language name, not a BCP 47 tag; "
            f"did you mean {language_label(meant)}?"
        )
    return Reading(problem=f"{text!r} is not a BCP 47 language tag (such as 'en', 'pt-BR')")


# --- closed vocabularies ----------------------------------------------------------------

_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SUBJECT_WORDS = {
    "math": "mathematics",
    "maths": "mathematics",
    "pe": "physical-education",
    "sport": "physical-education",
    "sports": "physical-education",
    "ict": "computing",
    "computerscience": "computing",
    "informatics": "computing",
    "biology": "science",
    "chemistry": "science",
    "physics": "science",
    "arts": "art",
}
_MODE_WORDS = {"asynchronous": "async", "synchronous": "live"}


def _choice(text: str, allowed: list[str], words: dict[str, str], what: str) -> Reading:
    if text in allowed:
        return Reading(text)
    folded = _fold(text)
    exact = {_fold(code): code for code in allowed}
    meant = exact.get(folded) or words.get(folded)
    if meant is None:
        close = difflib.get_close_matches(folded, list(exact), 1, 0.75)
        meant = exact[close[0]] if close else None
    if meant is not None:
        return Reading(problem=f"{text!r} is not {what}; did you mean {meant}?")
    return Reading(problem=f"{text!r} is not one of: {', '.join(sorted(allowed))}")


def read_weekday(text: str) -> Reading:
    """`mon` ... `sun`; a day's name or another abbreviation of it is refused with the code."""
    folded = _fold(text)
    if text not in WEEKDAYS and len(folded) >= 2:
        for code, name in zip(WEEKDAYS, _DAY_NAMES, strict=True):
            if name.startswith(folded):
                return Reading(problem=f"{text!r} is not a day code; did you mean {code}?")
    return _choice(text, list(WEEKDAYS), {}, "a day code")


def read_subject(text: str) -> Reading:
    return _choice(text, sorted(SUBJECTS), _SUBJECT_WORDS, "a subject code")


def read_mode(text: str, modes: tuple[str, ...]) -> Reading:
    return _choice(text, list(modes), _MODE_WORDS, "a mode")


def close_field(name: str, fields: tuple[str, ...]) -> str | None:
    """The field a misspelt field name most likely means (`timezone` for `time_zone`)."""
    exact = {_fold(f): f for f in fields}
    folded = _fold(name)
    if folded in exact:
        return exact[folded]
    close = difflib.get_close_matches(folded, list(exact), 1, 0.75)
    return exact[close[0]] if close else None
