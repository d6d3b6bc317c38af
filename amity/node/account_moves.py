"""Where a local account came from and where it went: its former actor ids (it moved in,
its actor's `alsoKnownAs`) and its new actor (it moved out, its actor's `movedTo`).

Every function takes the sqlite-utils Database; the caller holds the transaction.
"""

from __future__ import annotations

from sqlite_utils import Database

from ..protocol.move import MAX_ALIASES


def aliases(db: Database, handle: str) -> list[str]:
    """The account's former actor ids, oldest first."""
    rows = db.execute(
        "SELECT alias FROM account_aliases WHERE handle = ? ORDER BY rowid LIMIT ?",
        [handle, MAX_ALIASES],
    ).fetchall()
    return [row[0] for row in rows]


def add_alias(db: Database, handle: str, alias: str) -> None:
    db.table("account_aliases").insert({"handle": handle, "alias": alias}, ignore=True)


def moved_to(db: Database, handle: str) -> str | None:
    """The actor the account moved to, or None while it lives here."""
    row = db.execute("SELECT moved_to FROM accounts WHERE handle = ?", [handle]).fetchone()
    return row[0] if row else None


def set_moved_to(db: Database, handle: str, target: str) -> None:
    db.execute("UPDATE accounts SET moved_to = ? WHERE handle = ?", [target, handle])
