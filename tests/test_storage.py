"""Storage: WAL mode, migrations that bring an older database up to date."""

from __future__ import annotations

import sqlite3
import threading
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


def test_a_transaction_that_reads_then_writes_waits_for_another_writer(tmp_path: Path) -> None:
    """A command's transaction reads, `serve` writes meanwhile, then the command writes: it
    must wait for the other writer, not fail with "database is locked"."""
    path = tmp_path / "amity.db"
    first, second = open_database(path), open_database(path)
    first["t"].insert({"n": 0})
    read, failures = threading.Event(), []

    def other_writer() -> None:
        read.wait(5)
        try:
            second["t"].insert({"n": 2})  # waits (busy_timeout) until `first` commits
        except sqlite3.OperationalError as exc:
            failures.append(exc)

    thread = threading.Thread(target=other_writer)
    thread.start()
    with first.atomic():
        count = first.execute("SELECT count(*) FROM t").fetchone()[0]
        read.set()
        thread.join(0.5)  # the other writer runs now, if it can
        first["t"].insert({"n": count})
    thread.join(10)
    assert failures == []
    assert sorted(row["n"] for row in second["t"].rows) == [0, 1, 2]
    first.close()
    second.close()
