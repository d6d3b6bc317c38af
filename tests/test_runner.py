"""The database runner's group commit, on a real SQLite file: every job of a group is
committed together, a failing job changes nothing, and answers come only after COMMIT."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from amity.federation.runner import DbRunner


@pytest.fixture
def runner(tmp_path: Path) -> DbRunner:
    db = Database(sqlite3.connect(tmp_path / "t.db", check_same_thread=False))
    db.execute("PRAGMA journal_mode=WAL")
    db.table("t").create({"k": int}, pk="k")
    yield DbRunner(db)


def _rows(path: Path) -> list[int]:
    """What another connection sees: only what was committed."""
    with sqlite3.connect(path) as other:
        return [row[0] for row in other.execute("SELECT k FROM t ORDER BY k")]


async def test_a_failing_job_rolls_back_alone_and_the_group_commits(
    runner: DbRunner, tmp_path: Path
) -> None:
    def insert(k: int):  # type: ignore[no-untyped-def]
        def job(db: Database) -> int:
            db.execute("INSERT INTO t (k) VALUES (?)", [k])
            if k == 3:
                raise ValueError("three is refused")
            return k

        return job

    seen: list[list[int]] = []

    async def grouped(k: int) -> int:
        result = await runner.grouped(insert(k))
        seen.append(_rows(tmp_path / "t.db"))  # committed by the time the answer comes
        return result

    results = await asyncio.gather(*(grouped(k) for k in range(6)), return_exceptions=True)
    assert results[:3] == [0, 1, 2] and results[4:] == [4, 5]
    assert isinstance(results[3], ValueError)
    assert _rows(tmp_path / "t.db") == [0, 1, 2, 4, 5]
    assert all(rows == [0, 1, 2, 4, 5] for rows in seen)
    runner.close()


async def test_a_duplicate_key_fails_its_own_job_only(runner: DbRunner, tmp_path: Path) -> None:
    await runner(lambda db: db.execute("INSERT INTO t (k) VALUES (7)") and None)

    def again(db: Database) -> None:
        db.execute("INSERT INTO t (k) VALUES (7)")

    def other(db: Database) -> None:
        db.execute("INSERT INTO t (k) VALUES (8)")

    results = await asyncio.gather(
        runner.grouped(again), runner.grouped(other), return_exceptions=True
    )
    assert isinstance(results[0], sqlite3.IntegrityError) and results[1] is None
    assert _rows(tmp_path / "t.db") == [7, 8]
    runner.close()
