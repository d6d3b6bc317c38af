"""Storage: WAL mode, migrations that bring an older database up to date."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from amity.node.node import Node
from amity.node.schema import migrations
from amity.node.storage import open_database


def test_database_uses_wal_and_records_migrations(tmp_path: Path) -> None:
    db = open_database(tmp_path / "a.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    applied = [m.name for m in migrations.applied(db)]
    assert applied == [m.name for m in migrations._migrations]
    db.close()


def test_a_database_from_an_older_version_opens_in_this_one(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Database(sqlite3.connect(path))
    # An older version of Amity knew only the first migration.
    migrations.apply(old, stop_before="m002_profiles")
    old["actors"].insert(
        {"handle": "benito", "kind": "school", "published": "2026-01-01T00:00:00Z"}
    )
    old.close()
    db = open_database(path)
    assert db["profiles"].exists()
    assert next(iter(db["actors"].rows))["handle"] == "benito"
    assert migrations.pending(db) == []
    db.close()


def test_node_reopens_after_init_with_same_keys(school: Node) -> None:
    data = school.config.data_dir
    public = school.keys.ed25519_public
    document = school.profile()
    school.close()
    again = Node.open(data)
    try:
        assert again.keys.ed25519_public == public
        assert again.profile() == document
    finally:
        again.close()
