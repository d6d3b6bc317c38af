"""SQLite storage through sqlite-utils: WAL, migrations at open, the node's rows."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from .errors import NodeError
from .schema import migrations


class _Database(Database):
    """sqlite-utils' Database whose transactions take the write lock when they begin.

    In WAL mode a transaction that reads first and writes later cannot write once another
    connection (`serve`, or another command) has committed in between: SQLite answers
    "database is locked" at once, without waiting. `BEGIN IMMEDIATE` waits for the other
    writer (busy_timeout) instead, before anything is read."""

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Database]:
        if self.conn.in_transaction:  # nested: a savepoint, as sqlite-utils does
            with super().atomic():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise


def open_database(path: Path) -> Database:
    """Open (or create) the database, switch to WAL and bring the schema up to date."""
    try:
        if not path.exists():  # owner only, like the keys and the config
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db = _Database(conn)
        conn.execute("PRAGMA busy_timeout = 10000")  # the CLI and `serve` share the file
        db.enable_wal()
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrations.apply(db)
    except sqlite3.DatabaseError as exc:
        raise NodeError(f"cannot open database {path}: {exc}") from exc
    return db


@dataclass(frozen=True)
class StoredProfile:
    """A school's current profile: what was imported and what is published."""

    data: dict[str, Any]
    document: dict[str, Any]
    published: str
    updated: str

    @property
    def paused(self) -> bool:
        return self.document.get("paused") is True


class Store:
    """The node's rows; every method is one short transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def close(self) -> None:
        self.db.close()

    def add_actor(self, handle: str, kind: str, published: str) -> None:
        with self.db.atomic():
            self.db.table("actors").insert({"handle": handle, "kind": kind, "published": published})
            self.db.table("accounts").insert({"handle": handle, "created": published})

    def actor(self, handle: str) -> dict[str, Any] | None:
        rows = list(self.db["actors"].rows_where("handle = ?", [handle]))
        return rows[0] if rows else None

    def count_actors(self) -> int:
        """Accounts served here now (a removed or moved school no longer counts)."""
        return int(
            self.db.execute(
                "SELECT count(*) FROM accounts WHERE removed_at IS NULL AND moved_to IS NULL"
            ).fetchone()[0]
        )

    def count_profiles(self) -> int:
        return self.db["profiles"].count

    def save_profile(self, handle: str, profile: StoredProfile) -> None:
        with self.db.atomic():
            self.db.table("profiles").upsert(
                {
                    "handle": handle,
                    "data": json.dumps(profile.data, ensure_ascii=False),
                    "document": json.dumps(profile.document, ensure_ascii=False),
                    "published": profile.published,
                    "updated": profile.updated,
                    "deleted_at": None,
                },
                pk="handle",
            )

    def withdraw_profile(self, handle: str, when: str) -> None:
        self.db.execute(
            "UPDATE profiles SET deleted_at = ?, updated = ? WHERE handle = ?", [when, when, handle]
        )

    def profile(self, handle: str, include_withdrawn: bool = False) -> StoredProfile | None:
        """The current profile; a withdrawn one only when asked (its times still count)."""
        rows = list(self.db["profiles"].rows_where("handle = ?", [handle]))
        if not rows or (rows[0]["deleted_at"] and not include_withdrawn):
            return None
        row = rows[0]
        return StoredProfile(
            data=json.loads(row["data"]),
            document=json.loads(row["document"]),
            published=row["published"],
            updated=row["updated"],
        )
