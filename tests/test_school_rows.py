"""Reading and checking import files (protocol/school_rows, school_row_checks) and the key
pool, without a node."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding
from hypothesis import given, settings
from hypothesis import strategies as st

from amity.node.key_pool import KeyPool
from amity.protocol.profile import FIELDS, validate_profile
from amity.protocol.school_row_checks import CheckedRow, check_rows, describe, suggest_handle
from amity.protocol.school_rows import (
    COLUMNS,
    MAX_IMPORT_BYTES,
    MAX_IMPORT_ROWS,
    ImportRefused,
    decode_text,
    read_csv,
    read_jsonl,
)

from .helpers import EXAMPLE_PROFILE, ROOT

HEADER = (
    "handle,name,country,timezone,languages.instruction,languages.learning,ages,modes,"
    "school_days,school_hours,capacity"
)
GOOD = "benito,Escuela Benito,MX,America/Mexico_City,es,en,9-12,async;live,mon;fri,08:00-14:00,2"


def _csv(*rows: str, header: str = HEADER) -> list[CheckedRow]:
    return check_rows(read_csv(decode_text("\n".join([header, *rows]).encode())), {})


def _jsonl(*rows: dict[str, Any] | str, taken: dict[str, Any] | None = None) -> list[CheckedRow]:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    return check_rows(read_jsonl(decode_text("\n".join(lines).encode())), taken or {})


def _problems(rows: list[CheckedRow]) -> list[str]:
    return [describe(row, name, message) for row in rows for name, message in row.problems]


def test_a_csv_row_gives_the_same_profile_as_its_json() -> None:
    header = HEADER + ",subjects,terms,locality,description,pairing_rounds,name_map.es"
    row = (
        GOOD
        + ',science;art,2026-08-24/2026-12-18;2027-01-10/2027-03-01,Oaxaca,"Rural, 180",true,Benito'
    )
    (checked,) = _csv(row, header=header)
    assert checked.good and checked.handle == "benito"
    expected = {
        **{key: EXAMPLE_PROFILE[key] for key in ("country", "timezone", "ages", "modes")},
        "name": "Escuela Benito",
        "name_map": {"es": "Benito"},
        "languages": {"instruction": ["es"], "learning": ["en"]},
        "school_days": ["mon", "fri"],
        "school_hours": ["08:00", "14:00"],
        "capacity": 2,
        "subjects": ["science", "art"],
        "terms": [
            {"start": "2026-08-24", "end": "2026-12-18"},
            {"start": "2027-01-10", "end": "2027-03-01"},
        ],
        "locality": "Oaxaca",
        "description": "Rural, 180",
        "pairing_rounds": True,
    }
    assert checked.profile == validate_profile(expected)


def test_every_problem_of_every_row_by_line_and_field() -> None:
    rows = _csv(
        GOOD,
        "Bad Handle,X,Kenya,Nairobi,English,,9-25,live,monday,8-14,lots",
        "benito,Y,KE,Africa/Nairobi,en,,nine,live,mon,08:00-14:00,1",
        "short,row",
        "",  # a blank line is not a row
    )
    assert [row.line for row in rows] == [2, 3, 4, 5]
    assert rows[0].good and not any(row.good for row in rows[1:])
    problems = _problems(rows)
    assert problems == [
        "line 3, field 'handle': 'Bad Handle' is not a handle: use 1-64 lower-case letters, "
        "digits, '_' or '-'; did you mean 'bad-handle'?",
        "line 3, field 'country': 'Kenya' is a country name, not an ISO 3166-1 alpha-2 code; "
        "did you mean KE (Kenya)?",
        "line 3, field 'timezone': 'Nairobi' is not a full zone name; did you mean Africa/Nairobi?",
        "line 3, field 'languages.instruction[0]': 'English' is a language name, not a BCP 47 "
        "tag; did you mean en (English)?",
        "line 3, field 'ages[1]': must be from 3 to 19 (got 25)",
        "line 3, field 'school_days[0]': 'monday' is not a day code; did you mean mon?",
        "line 3, field 'school_hours[0]': '8' is not a time as HH:MM (24-hour)",
        "line 3, field 'school_hours[1]': '14' is not a time as HH:MM (24-hour)",
        "line 3, field 'capacity': must be a whole number from 0 to 100",
        "line 4, field 'handle': 'benito' is also the handle on line 2; each school needs its "
        "own (did you mean 'benito-2'?)",
        "line 4, field 'ages': 'nine' is not an age range; write it as 9-12",
        "line 5: has 2 cells where the header has 11; a cell holding a comma must be in "
        "double quotes",
    ]


def test_unknown_and_missing_columns_refuse_the_file_with_the_column_meant() -> None:
    with pytest.raises(ImportRefused) as refused:
        _csv(GOOD + ",x", header=HEADER.replace("timezone", "time_zone") + ",languages")
    assert refused.value.problems == [
        (1, "unknown column 'time_zone'; did you mean 'timezone'?"),
        (1, "column 'languages': in a CSV file, use languages.instruction and languages.learning"),
    ]
    with pytest.raises(ImportRefused, match="no 'handle' column"):
        _csv("x", header="name")
    with pytest.raises(ImportRefused, match="holds no school below it"):
        _csv(header=HEADER)


def test_jsonl_rows_bad_json_unknown_fields_and_handles_on_the_node() -> None:
    good = {"handle": "benito", **EXAMPLE_PROFILE}
    rows = _jsonl(
        good,
        "{not json",
        "[1, 2]",
        {"handle": "other", **EXAMPLE_PROFILE, "time_zone": "x"},
        {**EXAMPLE_PROFILE},
        {"handle": "taken", **EXAMPLE_PROFILE},
        {"handle": "same", **EXAMPLE_PROFILE},
        "   ",
        "[" * 100_000,
        taken={"taken": None, "same": validate_profile(EXAMPLE_PROFILE)},
    )
    assert rows[0].good and rows[0].profile == validate_profile(EXAMPLE_PROFILE)
    assert _problems(rows[1:]) == [
        "line 2: is not valid JSON: Expecting property name enclosed in double quotes at column 2",
        'line 3: must be one JSON object, {"handle": ..., "name": ...}',
        "line 4 (handle 'other'), field 'time_zone': unknown field; did you mean 'timezone'?",
        "line 5, field 'handle': is required: the school's account name, as in @HANDLE@host "
        "(1-64 lower-case letters, digits, '_' or '-')",
        "line 6, field 'handle': 'taken' is already an account on this node (see amity school "
        "list); did you mean 'taken-2'?",
        "line 7, field 'handle': 'same' is on this node already, with this same profile (added "
        "by an earlier run of this file?)",
        "line 9: is 100,000 bytes; a school takes at most 64 KiB",
    ]
    assert [row.already for row in rows] == [False] * 6 + [True, False]


def test_bom_and_windows_line_endings_are_read() -> None:
    text = "\ufeff" + HEADER + "\r\n" + GOOD + "\r\n"
    (row,) = check_rows(read_csv(decode_text(text.encode())), {})
    assert row.good and row.handle == "benito"
    line = json.dumps({"handle": "a", **EXAMPLE_PROFILE, "description": "two\r\nlines"})
    (row,) = check_rows(read_jsonl(decode_text(("\ufeff" + line + "\r\n").encode())), {})
    assert row.good and row.profile is not None and row.profile["description"] == "two\nlines"


def test_whole_file_problems() -> None:
    with pytest.raises(ImportRefused, match="empty"):
        decode_text(b"\xef\xbb\xbf \r\n\n")
    with pytest.raises(ImportRefused) as refused:
        decode_text(HEADER.encode() + b"\n" + "Escuela Juárez".encode("latin-1"))
    assert refused.value.problems[0][0] == 2
    assert "is not UTF-8 text" in refused.value.problems[0][1]
    assert "CSV UTF-8" in refused.value.problems[0][1]
    with pytest.raises(ImportRefused, match="over 32 MiB"):
        decode_text(b" " * (MAX_IMPORT_BYTES + 1))
    with pytest.raises(ImportRefused, match="at most 50,000 a file"):
        read_jsonl("{}\n" * (MAX_IMPORT_ROWS + 1))
    with pytest.raises(ImportRefused, match="line 2: is not valid CSV"):
        read_csv(HEADER + '\n"unclosed,' + "x" * 10)


def test_handle_suggestions() -> None:
    assert suggest_handle("Escuela Benito Juárez") == "escuela-benito-juarez"
    assert suggest_handle("Ω") is None


def test_the_example_files_are_clean() -> None:
    for name, reader in (("schools.csv", read_csv), ("schools.jsonl", read_jsonl)):
        rows = check_rows(reader(decode_text((ROOT / "examples" / name).read_bytes())), {})
        assert len(rows) >= 3 and all(row.good for row in rows), _problems(rows)
        assert len({row.profile["country"] for row in rows if row.profile}) == len(rows)


def test_key_pool_gives_distinct_working_keys() -> None:
    with KeyPool(2) as pool:
        made = list(pool.generate(6))
    with KeyPool(1) as pool:
        made += list(pool.generate(2))
    assert len({keys.ed25519_seed for keys in made}) == 8
    assert len({keys.rsa_public_pem for keys in made}) == 8
    for keys in made:
        assert keys.rsa_private.key_size == 2048
        ed_public = ed25519.Ed25519PublicKey.from_public_bytes(keys.ed25519_public)
        ed_public.verify(keys.ed25519_private.sign(b"school"), b"school")
        signature = keys.rsa_private.sign(b"school", padding.PKCS1v15(), hashes.SHA256())
        keys.rsa_private.public_key().verify(
            signature, b"school", padding.PKCS1v15(), hashes.SHA256()
        )


def test_every_profile_field_has_a_documented_csv_column() -> None:
    roots = {column.split(".")[0] for column in COLUMNS} | {"name_map"}
    assert set(FIELDS) <= roots
    bulk = (ROOT / "docs" / "protocol.md").read_text().split("### Bulk import", 1)[1]
    for column in (*COLUMNS, "name_map.TAG"):
        assert f"`{column}`" in bulk, column


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(alphabet=',;"\n\r{}[]:-/ abc0129\ufeff', max_size=400))
def test_any_file_is_read_or_refused_with_reasons(content: bytes | str) -> None:
    raw = content.encode() if isinstance(content, str) else content
    for reader in (read_csv, read_jsonl):
        try:
            rows = check_rows(reader(decode_text(HEADER.encode() + b"\n" + raw)), {})
        except ImportRefused as refused:
            assert refused.problems and all(message for _, message in refused.problems)
            continue
        for row in rows:
            assert row.good or row.problems
            assert row.profile is None or row.profile["capacity"] >= 0
