"""Files of many schools for `amity school import`: JSONL or CSV text read into rows.

Pure: bytes in, rows out. A problem of the whole file (not UTF-8, empty, too large, a bad
CSV header) raises ImportRefused; a problem of one row stays with that row, named by its
line and field, so every problem of every row can be reported in one run.

CSV cells (docs/protocol.md, "Bulk import"): an empty cell leaves the field out; lists are
`;`-separated (`es;en`); `ages` is `9-12` (or `10`); `school_hours` is `08:00-14:00`;
`terms` is `;`-separated `START/END` dates; `name_map` is one column per language,
`name_map.TAG`; `pairing_rounds` is `true` or `false`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ProtocolError
from .profile import FIELDS
from .suggest import close_field

MAX_IMPORT_BYTES = 32 * 1024 * 1024
MAX_IMPORT_ROWS = 50_000
MAX_ROW_BYTES = 64 * 1024
LIST_SEPARATOR = ";"

# Columns of a CSV file, in the order an example file writes them; `name_map.TAG` besides.
COLUMNS = (
    "handle",
    "name",
    "country",
    "locality",
    "timezone",
    "languages.instruction",
    "languages.learning",
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
NAME_MAP_PREFIX = "name_map."
_LIST_COLUMNS = frozenset(
    {"languages.instruction", "languages.learning", "subjects", "modes", "school_days"}
)
_AGES = re.compile(r"^(\d{1,9})(?:\s*-\s*(\d{1,9}))?$")


class ImportRefused(ProtocolError):
    """The file as a whole cannot be read; `problems` lists (line, message), line 0 for
    the file itself."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(_where(line) + message for line, message in problems))


def _where(line: int) -> str:
    return f"line {line}: " if line else ""


@dataclass
class RawRow:
    """One school as the file gives it: `data` is the profile part (None when the row
    could not be read at all), `handle` the handle as written (None when absent)."""

    line: int
    handle: Any = None
    data: dict[str, Any] | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)
    # Fields whose cell could not be read: the profile's own complaint about them (such
    # as "is required") would only repeat the problem.
    unreadable: set[str] = field(default_factory=set)


def decode_text(raw: bytes) -> str:
    """The file's text: UTF-8, a byte-order mark dropped, Windows line endings read as
    line breaks; ImportRefused when it is too large, not UTF-8 or holds no row."""
    if len(raw) > MAX_IMPORT_BYTES:
        limit = MAX_IMPORT_BYTES // (1024 * 1024)
        raise ImportRefused([(0, f"the file is over {limit} MiB; split it into smaller files")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ImportRefused(
            [
                (
                    line,
                    f"byte {exc.start + 1} is not UTF-8 text ({exc.reason}); save the file "
                    "as UTF-8 (in a spreadsheet: 'CSV UTF-8') and import it again",
                )
            ]
        ) from exc
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if not text.strip():
        raise ImportRefused([(0, "the file is empty: it holds no school")])
    return text


def _check_count(count: int) -> None:
    if count > MAX_IMPORT_ROWS:
        raise ImportRefused(
            [(0, f"the file has {count:,} rows; at most {MAX_IMPORT_ROWS:,} a file: split it")]
        )


def read_jsonl(text: str) -> list[RawRow]:
    """One row per non-blank line: a profile object with a `handle` field."""
    lines = [(number, line) for number, line in enumerate(text.split("\n"), 1) if line.strip()]
    _check_count(len(lines))
    return [_jsonl_row(number, line) for number, line in lines]


def _jsonl_row(number: int, line: str) -> RawRow:
    row = RawRow(number)
    size = len(line.encode("utf-8", "surrogatepass"))
    if size > MAX_ROW_BYTES:
        row.problems.append(("row", f"is {size:,} bytes; a school takes at most 64 KiB"))
        return row
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        row.problems.append(("row", f"is not valid JSON: {exc.msg} at column {exc.colno}"))
        return row
    except RecursionError:
        row.problems.append(("row", "is not a school profile: its JSON is nested too deeply"))
        return row
    if not isinstance(data, dict):
        row.problems.append(("row", 'must be one JSON object, {"handle": ..., "name": ...}'))
        return row
    row.handle = data.pop("handle", None)
    row.data = data
    return row


def read_csv(text: str) -> list[RawRow]:
    """A header row naming the columns, then one school per row; cells separated by commas,
    or by semicolons when the header holds semicolons and no comma (a spreadsheet saving
    "CSV" where the decimal mark is a comma)."""
    delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                records.append((line, record))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise ImportRefused(
            [(line, f"is not valid CSV ({exc}); a cell holding quotes must be in quotes")]
        ) from exc
    if not records:
        raise ImportRefused([(0, "the file is empty: it holds no school")])
    (header_line, header), rows = records[0], records[1:]
    columns = _check_header(header_line, header)
    if not rows:
        raise ImportRefused([(header_line, "is the header; the file holds no school below it")])
    _check_count(len(rows))
    return [_csv_row(number, columns, cells, delimiter) for number, cells in rows]


def _delimiter(text: str) -> str:
    header = next((line for line in text.split("\n") if line.strip()), "")
    return ";" if ";" in header and "," not in header else ","


def _check_header(line: int, header: list[str]) -> list[str]:
    columns = [cell.strip() for cell in header]
    problems: list[tuple[int, str]] = []
    known = (*COLUMNS, *(c for c in FIELDS if c not in ("languages", "name_map")))
    for index, column in enumerate(columns):
        if not column:
            problems.append((line, f"column {index + 1} has no name in the header row"))
        elif columns.index(column) < index:
            problems.append((line, f"column {column!r} is given twice in the header row"))
        elif column in ("languages", "name_map"):
            parts = ("languages.instruction", "languages.learning")
            hint = " and ".join(parts) if column == "languages" else "name_map.TAG (name_map.en)"
            problems.append((line, f"column {column!r}: in a CSV file, use {hint}"))
        elif column not in COLUMNS and not _is_name_column(column):
            meant = close_field(column, known)
            hint = f"did you mean {meant!r}?" if meant else "columns: " + ", ".join(COLUMNS)
            problems.append((line, f"unknown column {column!r}; {hint}"))
    if "handle" not in columns:
        problems.append((line, "the header row has no 'handle' column (the account name)"))
    if problems:
        raise ImportRefused(problems)
    return columns


def _is_name_column(column: str) -> bool:
    return column.startswith(NAME_MAP_PREFIX) and len(column) > len(NAME_MAP_PREFIX)


def _csv_row(number: int, columns: list[str], cells: list[str], delimiter: str) -> RawRow:
    row = RawRow(number)
    if len(cells) != len(columns):
        held = "comma" if delimiter == "," else "semicolon (a list such as en;sw)"
        row.problems.append(
            (
                "row",
                f"has {len(cells)} cells where the header has {len(columns)}; "
                f"a cell holding a {held} must be in double quotes",
            )
        )
        return row
    size = sum(len(cell.encode("utf-8", "surrogatepass")) for cell in cells)
    if size > MAX_ROW_BYTES:
        row.problems.append(("row", f"is {size:,} bytes; a school takes at most 64 KiB"))
        return row
    data: dict[str, Any] = {}
    for column, cell in zip(columns, cells, strict=True):
        value = cell.strip()
        if column == "handle":
            row.handle = value or None
        elif value:
            _put_cell(row, data, column, value)
    row.data = data
    return row


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]


def _put_cell(row: RawRow, data: dict[str, Any], column: str, value: str) -> None:
    """The profile field of one non-empty cell, or its problem on the row."""
    if _is_name_column(column):
        data.setdefault("name_map", {})[column.removeprefix(NAME_MAP_PREFIX)] = value
    elif column in _LIST_COLUMNS:
        key, _, part = column.partition(".")
        if part:
            data.setdefault(key, {})[part] = _split(value)
        else:
            data[key] = _split(value)
    elif column == "ages":
        match = _AGES.match(value)
        if match is None:
            _unreadable(row, "ages", f"{value!r} is not an age range; write it as 9-12")
        else:
            low = int(match.group(1))
            data["ages"] = [low, int(match.group(2) or low)]
    elif column == "school_hours":
        parts = [part.strip() for part in value.split("-")]
        if len(parts) != 2:
            _unreadable(row, "school_hours", f"{value!r} is not START-END; write it as 08:00-14:00")
        else:
            data["school_hours"] = parts
    elif column == "terms":
        _put_terms(row, data, value)
    elif column == "capacity":
        digits = value.isascii() and value.isdigit() and len(value) <= 9
        data["capacity"] = int(value) if digits else value
    elif column == "pairing_rounds":
        flags = {"true": True, "false": False}
        data["pairing_rounds"] = flags.get(value.lower(), value)
    else:
        data[column] = value


def _put_terms(row: RawRow, data: dict[str, Any], value: str) -> None:
    terms: list[dict[str, str]] = []
    for index, term in enumerate(_split(value)):
        parts = [part.strip() for part in term.split("/")]
        if len(parts) != 2:
            example = "2026-08-24/2026-12-18"
            _unreadable(row, "terms", f"term {index + 1} {term!r} is not START/END ({example})")
        else:
            terms.append({"start": parts[0], "end": parts[1]})
    if "terms" not in row.unreadable:
        data["terms"] = terms


def _unreadable(row: RawRow, field_name: str, message: str) -> None:
    row.problems.append((field_name, message))
    row.unreadable.add(field_name)
