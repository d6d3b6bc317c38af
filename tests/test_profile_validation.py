"""Profile validation: every bad field named with what is allowed; nothing stored changes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from amity.cli.main import cli
from amity.node.node import Node
from amity.protocol.errors import ValidationFailed
from amity.protocol.profile import parse_profile_json, validate_profile

from .helpers import EXAMPLE_PROFILE


def _with(**changes: Any) -> str:
    data = copy.deepcopy(EXAMPLE_PROFILE)
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


# (case, file content, field named, words the message must contain)
BAD_PROFILES = [
    ("unknown field", _with(pupils=180), "pupils", "unknown field"),
    ("invalid zone", _with(timezone="Mars/Olympus_Mons"), "timezone", "IANA time zone"),
    ("zone abbreviation", _with(timezone="CEST"), "timezone", "abbreviation"),
    ("bad country", _with(country="XY"), "country", "ISO 3166-1 alpha-2"),
    ("country name", _with(country="Mexico"), "country", "ISO 3166-1 alpha-2"),
    (
        "bad language tag",
        _with(languages={"instruction": ["spanish"], "learning": []}),
        "languages.instruction[0]",
        "did you mean es (Spanish)?",
    ),
    (
        "no instruction language",
        _with(languages={"instruction": [], "learning": ["en"]}),
        "languages.instruction",
        "non-empty",
    ),
    (
        "unknown languages key",
        _with(languages={"instruction": ["es"], "spoken": ["en"]}),
        "languages",
        "instruction, learning",
    ),
    ("age too young", _with(ages=[2, 12]), "ages[0]", "from 3 to 19"),
    ("age too old", _with(ages=[9, 20]), "ages[1]", "from 3 to 19"),
    ("ages reversed", _with(ages=[12, 9]), "ages", "youngest"),
    ("age not a number", _with(ages=["9", 12]), "ages[0]", "whole number"),
    ("hours reversed", _with(school_hours=["14:00", "08:00"]), "school_hours", "before"),
    ("hours malformed", _with(school_hours=["8am", "2pm"]), "school_hours[1]", "HH:MM"),
    ("negative capacity", _with(capacity=-1), "capacity", "from 0 to"),
    ("capacity not integer", _with(capacity=1.5), "capacity", "whole number"),
    ("capacity boolean", _with(capacity=True), "capacity", "whole number"),
    ("unknown mode", _with(modes=["email"]), "modes[0]", "async, live"),
    ("unknown weekday", _with(school_days=["monday"]), "school_days[0]", "did you mean mon?"),
    ("unknown subject", _with(subjects=["quidditch"]), "subjects[0]", "mathematics"),
    (
        "term reversed",
        _with(terms=[{"start": "2026-12-18", "end": "2026-08-24"}]),
        "terms[0]",
        "must not be after",
    ),
    (
        "term bad date",
        _with(terms=[{"start": "2026-02-30", "end": "2026-08-24"}]),
        "terms[0].start",
        "YYYY-MM-DD",
    ),
    ("missing timezone", _with(timezone=...), "timezone", "required"),
    ("no name", _with(name=...), "name", "required"),
    ("empty name", _with(name="  "), "name", "non-empty"),
    ("not an object", "[1, 2, 3]", "profile", "JSON object"),
    ("not JSON", '{"name": "x",', "profile", "not valid JSON"),
    ("not UTF-8", b"\xff\xfe{}".decode("latin-1"), "profile", "not valid JSON"),
]


@pytest.mark.parametrize(
    ("case", "text", "field", "words"), BAD_PROFILES, ids=[c[0] for c in BAD_PROFILES]
)
def test_bad_profile_names_field_and_rule(case: str, text: str, field: str, words: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_profile_json(text)
    messages = {f: m for f, m in caught.value.problems}
    assert field in messages, caught.value.problems
    assert words in messages[field]


@pytest.mark.parametrize(
    ("case", "text", "field", "words"), BAD_PROFILES, ids=[c[0] for c in BAD_PROFILES]
)
def test_cli_import_refuses_bad_profile_and_keeps_stored_one(
    school: Node, tmp_path: Path, case: str, text: str, field: str, words: str
) -> None:
    data_dir = school.config.data_dir
    before = school.profile()
    bad = tmp_path / "bad.json"
    bad.write_text(text, encoding="latin-1" if case == "not UTF-8" else "utf-8")
    result = CliRunner().invoke(cli, ["profile", "import", str(bad), "--data", str(data_dir)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert any(
        line.startswith(f"error: profile field '{field}':") and words in line for line in lines
    ), lines
    assert result.stdout == ""
    reopened = Node.open(data_dir)
    try:
        assert reopened.profile() == before
    finally:
        reopened.close()


def test_every_problem_gets_its_own_line(school: Node, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(_with(pupils=1, country="XY", capacity=-2, timezone="Nowhere"))
    result = CliRunner().invoke(
        cli, ["profile", "import", str(bad), "--data", str(school.config.data_dir)]
    )
    assert result.exit_code == 1
    fields = [line.split("'")[1] for line in result.stderr.strip().splitlines()]
    assert fields == ["pupils", "country", "timezone", "capacity"]


def test_valid_profile_is_normalized() -> None:
    data = copy.deepcopy(EXAMPLE_PROFILE)
    data["country"] = "mx"
    data["languages"] = {"instruction": ["ES"], "learning": ["en-gb", "zh-hant-tw"]}
    data["school_days"] = ["fri", "mon"]
    data["name_map"] = {"EN": "Benito Juárez Primary School"}
    result = validate_profile(data)
    assert result["country"] == "MX"
    assert result["languages"] == {"instruction": ["es"], "learning": ["en-GB", "zh-Hant-TW"]}
    assert result["school_days"] == ["mon", "fri"]
    assert result["name_map"] == {"en": "Benito Juárez Primary School"}


def test_optional_fields_get_defaults() -> None:
    data = {
        k: v
        for k, v in EXAMPLE_PROFILE.items()
        if k not in ("subjects", "terms", "locality", "description")
    }
    result = validate_profile(data)
    assert result["subjects"] == []
    assert result["terms"] == []
    assert "locality" not in result


def test_name_map_may_replace_name() -> None:
    data = {k: v for k, v in EXAMPLE_PROFILE.items() if k != "name"}
    data["name_map"] = {"es": "Escuela Benito Juárez", "en": "Benito Juárez School"}
    assert validate_profile(data)["name_map"]["en"] == "Benito Juárez School"


def _problems(**changes: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_profile_json(_with(**changes))
    return caught.value.problems


# (field changed, value, field named, the exact message): what was meant, said once.
MEANT = [
    (
        "timezone",
        "EST",
        "timezone",
        "'EST' is a fixed offset from UTC with no daylight saving (a school in New York "
        "would be an hour wrong half the year); give the school's zone as Area/Location: "
        "did you mean America/New_York?",
    ),
    (
        "timezone",
        "Nairobi",
        "timezone",
        "'Nairobi' is not a full zone name; did you mean Africa/Nairobi?",
    ),
    (
        "timezone",
        "africa/nairobi",
        "timezone",
        "'africa/nairobi' is not written as the IANA database writes it; "
        "did you mean Africa/Nairobi?",
    ),
    (
        "timezone",
        "US/Eastern",
        "timezone",
        "'US/Eastern' is an old name kept for compatibility; did you mean America/New_York?",
    ),
    (
        "timezone",
        "UTC",  # the example school is in MX, which has several zones
        "timezone",
        "'UTC' is not a school's local time (it has no daylight saving or local rules); "
        "give the zone of the school's city, such as America/Mexico_City, America/Cancun, "
        "America/Merida",
    ),
    (
        "timezone",
        "Mars/Olympus_Mons",
        "timezone",
        "'Mars/Olympus_Mons' is not an IANA time zone name (Area/Location, such as "
        "'Africa/Nairobi')",
    ),
    (
        "country",
        "Kenya",
        "country",
        "'Kenya' is a country name, not an ISO 3166-1 alpha-2 code; did you mean KE (Kenya)?",
    ),
    (
        "country",
        "KEN",
        "country",
        "'KEN' is an alpha-3 code, not an ISO 3166-1 alpha-2 code; did you mean KE (Kenya)?",
    ),
    (
        "languages",
        {"instruction": ["English"], "learning": ["Español"]},
        "languages.instruction[0]",
        "'English' is a language name, not a BCP 47 tag; did you mean en (English)?",
    ),
    (
        "languages",
        {"instruction": ["en"], "learning": ["Español"]},
        "languages.learning[0]",
        "'Español' is a language name, not a BCP 47 tag; did you mean es (Spanish)?",
    ),
    (
        "school_days",
        ["mon", "Tuesday"],
        "school_days[1]",
        "'Tuesday' is not a day code; did you mean tue?",
    ),
    ("school_days", ["Mon"], "school_days[0]", "'Mon' is not a day code; did you mean mon?"),
    (
        "subjects",
        ["Science"],
        "subjects[0]",
        "'Science' is not a subject code; did you mean science?",
    ),
    ("modes", ["Live"], "modes[0]", "'Live' is not a mode; did you mean live?"),
    ("time_zone", "Africa/Nairobi", "time_zone", "unknown field; did you mean 'timezone'?"),
]


@pytest.mark.parametrize(
    ("key", "value", "field", "message"), MEANT, ids=[m[2] + ":" + str(m[1]) for m in MEANT]
)
def test_what_was_meant_is_named(key: str, value: Any, field: str, message: str) -> None:
    assert (field, message) in _problems(**{key: value})


def test_city_zone_suggested_from_the_country_for_utc() -> None:
    problems = _problems(country="KE", timezone="Etc/UTC")
    assert problems == [
        (
            "timezone",
            "'Etc/UTC' is not a school's local time (it has no daylight saving or local "
            "rules); give the zone of the school's city: did you mean Africa/Nairobi?",
        )
    ]


def test_codes_in_any_case_their_standard_ignores_are_accepted() -> None:
    result = validate_profile({**EXAMPLE_PROFILE, "country": "ke", "timezone": "Africa/Nairobi"})
    assert result["country"] == "KE"
    assert result["timezone"] == "Africa/Nairobi"


def test_every_bad_item_and_field_reported_once() -> None:
    problems = _problems(
        ages=[2, 30],
        languages={"instruction": ["English", "es"], "learning": ["xx-notatag-!", "es", "ES"]},
        terms=[{"start": "2026-02-30", "end": "2026-03-01"}, {"start": "x", "end": "2026-01-01"}],
        subjects=["quidditch", "music", "quidditch", "music", "music"],
        school_days=["mon", "mon", "mon"],
    )
    assert problems == [
        (
            "languages.instruction[0]",
            "'English' is a language name, not a BCP 47 tag; did you mean en (English)?",
        ),
        (
            "languages.learning[0]",
            "'xx-notatag-!' is not a BCP 47 language tag (such as 'en', 'pt-BR')",
        ),
        ("languages.learning[2]", "'ES' repeats languages.learning[1]; list each once"),
        ("ages[0]", "must be from 3 to 19 (got 2)"),
        ("ages[1]", "must be from 3 to 19 (got 30)"),
        (
            "subjects[0]",
            "'quidditch' is not one of: art, citizenship, computing, culture, drama, economics, "
            "environment, ethics, geography, health, history, languages, literature, "
            "mathematics, music, physical-education, science, social-studies, technology",
        ),
        ("subjects[3]", "'music' repeats subjects[1]; list each once"),
        ("school_days[1]", "'mon' repeats school_days[0]; list each once"),
        ("terms[0].start", "'2026-02-30' is not a date as YYYY-MM-DD"),
        ("terms[1].start", "'x' is not a date as YYYY-MM-DD"),
    ]
    assert len(problems) == len(set(problems))


def test_cli_import_reports_several_mistakes_each_once(school: Node, tmp_path: Path) -> None:
    before = school.profile()
    bad = tmp_path / "bad.json"
    bad.write_text(
        _with(
            country="Kenya",
            timezone="Nairobi",
            ages=[2, 30],
            school_days=["monday", "monday"],
            subjects=["Science", "music", "music"],
        )
    )
    result = CliRunner().invoke(
        cli, ["profile", "import", str(bad), "--data", str(school.config.data_dir)]
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: profile field 'country': 'Kenya' is a country name, not an ISO 3166-1 alpha-2 "
        "code; did you mean KE (Kenya)?",
        "error: profile field 'timezone': 'Nairobi' is not a full zone name; "
        "did you mean Africa/Nairobi?",
        "error: profile field 'ages[0]': must be from 3 to 19 (got 2)",
        "error: profile field 'ages[1]': must be from 3 to 19 (got 30)",
        "error: profile field 'subjects[0]': 'Science' is not a subject code; "
        "did you mean science?",
        "error: profile field 'subjects[2]': 'music' repeats subjects[1]; list each once",
        "error: profile field 'school_days[0]': 'monday' is not a day code; did you mean mon?",
    ]
    reopened = Node.open(school.config.data_dir)
    try:
        assert reopened.profile() == before
    finally:
        reopened.close()


def test_imported_texts_lose_bidi_controls_and_invisible_characters(
    school: Node, tmp_path: Path
) -> None:
    good = tmp_path / "spoof.json"
    good.write_text(
        _with(
            name="Evil\u202eloohcS\u200b Academy\u2066",
            name_map={"en": "Evil\u202eloohcS", "fa": "مدرسه\u200cی ما\u200f"},
            locality="Oax\u200daca\ufeff",
            description="Line one\u2067\nline\u00ad two\x1b[2J",
        )
    )
    data_dir = str(school.config.data_dir)
    result = CliRunner().invoke(cli, ["profile", "import", str(good), "--data", data_dir])
    assert result.exit_code == 0, result.stderr
    stored = Node.open(school.config.data_dir)
    try:
        data = stored.profile().data  # type: ignore[union-attr]
    finally:
        stored.close()
    assert data["name"] == "EvilloohcS Academy"
    assert data["name_map"] == {"en": "EvilloohcS", "fa": "مدرسه\u200cی ما"}  # ZWNJ kept
    assert data["locality"] == "Oaxaca"
    assert data["description"] == "Line one\nline two[2J"


def test_a_name_of_only_invisible_characters_is_refused() -> None:
    assert _problems(name="\u202e\u200b\u2066") == [
        ("name", "has only invisible characters; write it in visible letters")
    ]
