"""The accounts table: which school accounts this node hosts, looked up by handle."""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

from ..protocol.profile import display_name
from ..protocol.suggest import close_field
from .config import NodeConfig
from .errors import NodeError

# An account's state as the served actor shows it (node/routes.py).
ACTIVE, REMOVED, MOVED, UNKNOWN = "active", "removed", "moved", "unknown"


def account_row(db: Database, handle: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT handle, created, moved_to, removed_at FROM accounts WHERE handle = ?", [handle]
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("handle", "created", "moved_to", "removed_at"), row, strict=True))


def account_state(db: Database, handle: str) -> str:
    """ACTIVE, REMOVED, MOVED or UNKNOWN."""
    row = account_row(db, handle)
    if row is None:
        return UNKNOWN
    if row["removed_at"] is not None:
        return REMOVED
    return MOVED if row["moved_to"] is not None else ACTIVE


def active_handles(db: Database) -> list[str]:
    """Every account served here now, sorted."""
    rows = db.execute(
        "SELECT handle FROM accounts WHERE removed_at IS NULL AND moved_to IS NULL ORDER BY handle"
    ).fetchall()
    return [row[0] for row in rows]


def school_handles(db: Database, config: NodeConfig) -> list[str]:
    """Every school hosted here: the active accounts, the first one only on a school node."""
    return [h for h in active_handles(db) if h != config.handle or config.kind == "school"]


def listed_schools(db: Database, config: NodeConfig) -> list[dict[str, Any]]:
    """`amity school list`'s rows: every school hosted here (as school_handles) with its
    actor and listing name (None without a current profile), in one query: only the name
    fields are read out of each stored profile, not the whole profile parsed."""
    rows = db.execute(
        "SELECT a.handle, p.handle IS NOT NULL AND p.deleted_at IS NULL, "
        "json_extract(p.data, '$.name'), json_extract(p.data, '$.name_map') "
        "FROM accounts a LEFT JOIN profiles p ON p.handle = a.handle "
        "WHERE a.removed_at IS NULL AND a.moved_to IS NULL ORDER BY a.handle"
    ).fetchall()
    found = []
    for handle, current, name, name_map in rows:
        if handle == config.handle and config.kind != "school":
            continue
        shown = None
        if current and name is not None:
            shown = display_name({"name": name})
        elif current and name_map is not None:
            shown = display_name({"name_map": json.loads(name_map)})
        found.append(
            {
                "handle": handle,
                "actor": f"{config.base_url}/actors/{handle}",
                "name": shown,
                "first_account": handle == config.handle,
            }
        )
    return found


class UnknownSchool(NodeError):
    """The school a command was asked to act for is not served here."""


def check_school(db: Database, handle: str) -> str:
    """`handle` if it is an account served here; UnknownSchool naming `amity school list`
    and the closest handle otherwise."""
    state = account_state(db, handle)
    if state == ACTIVE:
        return handle
    if state == REMOVED:
        raise UnknownSchool(
            f"school {handle!r} was removed from this node; `amity school list` shows the others"
        )
    if state == MOVED:
        raise UnknownSchool(
            f"school {handle!r} moved to its own node; `amity school list` shows the others"
        )
    message = f"no school {handle} here; `amity school list` shows them"
    close = _closest(db, handle)
    if close:
        message += f" (did you mean {close}?)"
    raise UnknownSchool(message)


def _closest(db: Database, handle: str) -> str | None:
    """The served handle most like `handle`, found without reading every one of 10,000."""
    prefix = handle[:2]
    rows = db.execute(
        "SELECT handle FROM accounts WHERE removed_at IS NULL AND moved_to IS NULL "
        "AND (handle LIKE ? || '%' OR length(handle) BETWEEN ? AND ?) LIMIT 5000",
        [prefix, len(handle) - 2, len(handle) + 2],
    ).fetchall()
    return close_field(handle, tuple(row[0] for row in rows))


def local_handle(db: Database, config: NodeConfig, actor_id: str) -> str | None:
    """The handle of the account served here whose actor is `actor_id`, else None."""
    prefix = f"{config.base_url}/actors/"
    if not actor_id.startswith(prefix):
        return None
    handle = actor_id[len(prefix) :]
    return handle if account_state(db, handle) == ACTIVE else None
