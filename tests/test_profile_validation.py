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
    ("zone abbreviation", _with(timezone="CEST"), "timezone", "IANA time zone"),
    ("bad country", _with(country="XY"), "country", "ISO 3166-1 alpha-2"),
    ("country name", _with(country="Mexico"), "country", "ISO 3166-1 alpha-2"),
    (
        "bad language tag",
        _with(languages={"instruction": ["spanish"], "learning": []}),
        "languages.instruction",
        "BCP 47",
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
    ("age too young", _with(ages=[2, 12]), "ages", "from 3 to 19"),
    ("age too old", _with(ages=[9, 20]), "ages", "from 3 to 19"),
    ("ages reversed", _with(ages=[12, 9]), "ages", "youngest"),
    ("age not a number", _with(ages=["9", 12]), "ages", "whole number"),
    ("hours reversed", _with(school_hours=["14:00", "08:00"]), "school_hours", "before"),
    ("hours malformed", _with(school_hours=["8am", "2pm"]), "school_hours", "HH:MM"),
    ("negative capacity", _with(capacity=-1), "capacity", "from 0 to"),
    ("capacity not integer", _with(capacity=1.5), "capacity", "whole number"),
    ("capacity boolean", _with(capacity=True), "capacity", "whole number"),
    ("unknown mode", _with(modes=["email"]), "modes", "async, live"),
    ("unknown weekday", _with(school_days=["monday"]), "school_days", "fri, mon"),
    ("unknown subject", _with(subjects=["quidditch"]), "subjects", "mathematics"),
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
