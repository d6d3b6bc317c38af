"""Every row of an import file checked before anything is added: its profile by the
profile's own validation, its handle for syntax, repeats in the file and accounts the node
has already. Pure: what the node holds is passed in."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .discovery import HANDLE_PATTERN
from .errors import ValidationFailed
from .profile import FIELDS, validate_profile
from .school_rows import RawRow

HANDLE_RULE = "1-64 lower-case letters, digits, '_' or '-'"


@dataclass
class CheckedRow:
    """A row checked: `profile` is the normalized profile and `handle` the account name
    when each is good; `problems` lists (field, message), every one found."""

    line: int
    handle: str | None = None
    profile: dict[str, Any] | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)
    # The handle is on the node already with this very profile: an earlier run of the
    # same file (interrupted, say) added it.
    already: bool = False

    @property
    def good(self) -> bool:
        return not self.problems


def suggest_handle(text: str) -> str | None:
    """A handle close to what was written: `Escuela Benito Juárez` -> `escuela-benito-juarez`."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else " " for c in plain)
    handle = "-".join(words.split())[:64].strip("-")
    return handle if HANDLE_PATTERN.match(handle) else None


def free_handle(handle: str, used: set[str]) -> str:
    """`handle-2`, `handle-3`, ...: the first not in `used`."""
    number = 2
    while True:
        suffix = f"-{number}"
        candidate = handle[: 64 - len(suffix)] + suffix
        if candidate not in used:
            return candidate
        number += 1


def check_rows(rows: list[RawRow], taken: Mapping[str, dict[str, Any] | None]) -> list[CheckedRow]:
    """Each row checked. `taken`: the handles of the node's accounts, each with its current
    profile (None for an account without one)."""
    first_line: dict[str, int] = {}
    for row in rows:
        if isinstance(row.handle, str):
            first_line.setdefault(row.handle, row.line)
    used = set(taken) | set(first_line)
    return [_check_row(row, taken, first_line, used) for row in rows]


def _check_row(
    row: RawRow,
    taken: Mapping[str, dict[str, Any] | None],
    first_line: dict[str, int],
    used: set[str],
) -> CheckedRow:
    checked = CheckedRow(row.line, problems=list(row.problems))
    if row.data is None:
        return checked
    handle_problem = _handle_problem(row.handle, row.line, first_line, used)
    if handle_problem is not None:
        checked.problems.append(("handle", handle_problem))
    try:
        checked.profile = validate_profile(row.data)
    except ValidationFailed as exc:
        for name, message in exc.problems:
            if _root(name) not in row.unreadable:
                checked.problems.append((name, message))
    if handle_problem is None:
        checked.handle = row.handle
        if row.handle in taken:
            checked.problems.append(_taken_problem(row.handle, taken, checked.profile, used))
            checked.already = checked.profile is not None and taken[row.handle] == checked.profile
    checked.problems.sort(key=lambda problem: _ORDER.get(_root(problem[0]), len(_ORDER)))
    return checked


# Problems in the order of the row: the row itself, its handle, then the profile's fields.
_ORDER = {name: index for index, name in enumerate(("row", "handle", *FIELDS))}


def _root(name: str) -> str:
    return name.split("[")[0].split(".")[0]


def _handle_problem(
    handle: Any, line: int, first_line: dict[str, int], used: set[str]
) -> str | None:
    if handle is None or handle == "":
        return f"is required: the school's account name, as in @HANDLE@host ({HANDLE_RULE})"
    if not isinstance(handle, str):
        return f"must be a string of {HANDLE_RULE}"
    if not HANDLE_PATTERN.match(handle):
        meant = suggest_handle(handle)
        hint = f"; did you mean {meant!r}?" if meant and meant not in used else ""
        return f"{handle!r} is not a handle: use {HANDLE_RULE}{hint}"
    if first_line[handle] != line:
        free = free_handle(handle, used)
        return (
            f"{handle!r} is also the handle on line {first_line[handle]}; each school needs "
            f"its own (did you mean {free!r}?)"
        )
    return None


def _taken_problem(
    handle: str,
    taken: Mapping[str, dict[str, Any] | None],
    profile: dict[str, Any] | None,
    used: set[str],
) -> tuple[str, str]:
    if profile is not None and taken[handle] == profile:
        return (
            "handle",
            f"{handle!r} is on this node already, with this same profile (added by an "
            "earlier run of this file?)",
        )
    return (
        "handle",
        f"{handle!r} is already an account on this node (see amity school list); "
        f"did you mean {free_handle(handle, used)!r}?",
    )


def describe(row: CheckedRow, name: str, message: str) -> str:
    """One problem as a volunteer reads it: `line 4 (handle 'x'), field 'timezone': ...`."""
    who = f" (handle {row.handle!r})" if row.handle and name != "handle" else ""
    if name == "row":
        return f"line {row.line}{who}: {message}"
    return f"line {row.line}{who}, field {name!r}: {message}"
