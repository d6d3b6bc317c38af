"""The database runner's group commit, on a real SQLite file: every job of a group is
committed together, a failing job changes nothing, and answers come only after COMMIT."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from queue import SimpleQueue

import pytest
from sqlite_utils import Database

from amity.federation import runner as runner_module
from amity.federation.runner import DbRunner


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(sqlite3.connect(tmp_path / "t.db", check_same_thread=False))
    db.execute("PRAGMA journal_mode=WAL")
    db.table("t").create({"k": int, "b": bytes}, pk="k")
    return db


@pytest.fixture
def runner(database: Database) -> DbRunner:
    return DbRunner(database)


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


async def test_grouped_jobs_run_on_the_loop_when_the_thread_is_idle(
    runner: DbRunner, tmp_path: Path
) -> None:
    """No hand-off when nothing waits: the job runs on the loop's thread, its answer still
    comes after COMMIT, and the connection's own settings are as they were."""
    before = runner.db.execute("PRAGMA busy_timeout").fetchone()[0]
    ran_on: list[int] = []

    def insert(db: Database) -> list[int]:
        ran_on.append(threading.get_ident())
        db.execute("INSERT INTO t (k) VALUES (1)")
        return _rows(tmp_path / "t.db")  # another connection: the insert is not yet visible

    assert await runner.grouped(insert) == []
    assert ran_on == [threading.get_ident()]
    assert _rows(tmp_path / "t.db") == [1]
    assert runner.db.execute("PRAGMA busy_timeout").fetchone()[0] == before
    runner.close()


async def test_another_writer_sends_grouped_jobs_to_the_thread_and_the_loop_never_waits(
    database: Database, tmp_path: Path
) -> None:
    """`amity school add` holding the write lock: the job waits on the database thread
    for it, while the loop goes on (with a 30 s busy timeout, a loop that waited would
    be stuck for 30 s)."""
    database.execute("PRAGMA busy_timeout = 30000")
    runner = DbRunner(database)
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (k) VALUES (1)")
    ran_on: list[int] = []

    def insert(db: Database) -> None:
        ran_on.append(threading.get_ident())
        db.execute("INSERT INTO t (k) VALUES (2)")

    loop = asyncio.get_running_loop()
    job = asyncio.ensure_future(runner.grouped(insert))
    start = loop.time()
    await asyncio.sleep(0.2)
    assert loop.time() - start < 10  # the loop was not held in the busy wait
    assert not job.done() and _rows(tmp_path / "t.db") == []
    other.execute("COMMIT")
    await job
    assert ran_on and all(ident != threading.get_ident() for ident in ran_on)
    assert _rows(tmp_path / "t.db") == [1, 2]
    assert runner.db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    assert runner.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    other.close()
    runner.close()


async def test_a_grouped_job_never_overtakes_one_sent_before_it(runner: DbRunner) -> None:
    order: list[str] = []

    def slow(db: Database) -> None:
        time.sleep(0.2)  # the thread is busy: the next job must wait for it
        order.append("slow")

    def grouped(db: Database) -> None:
        order.append("grouped")

    first = asyncio.ensure_future(runner(slow))
    await asyncio.sleep(0.05)  # a later turn of the loop, with the thread at work
    await asyncio.gather(first, runner.grouped(grouped))
    assert order == ["slow", "grouped"]
    runner.close()


async def test_commits_on_the_loop_leave_wal_checkpoints_to_the_thread(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint writes the database file and fsyncs: with SQLite asked to checkpoint
    after every page, the loop's commits still leave the file alone; once they have
    written CHECKPOINT_ROWS rows, the thread checkpoints."""
    database.execute("PRAGMA wal_autocheckpoint = 1")
    monkeypatch.setattr(runner_module, "CHECKPOINT_ROWS", 10)
    checkpointed_on: list[int] = []
    checkpoint = DbRunner._checkpoint

    def recorded(self: DbRunner) -> None:
        checkpointed_on.append(threading.get_ident())
        checkpoint(self)

    monkeypatch.setattr(DbRunner, "_checkpoint", recorded)
    runner = DbRunner(database)
    path = tmp_path / "t.db"
    blob = b"x" * 2000

    def insert(k: int):  # type: ignore[no-untyped-def]
        def job(db: Database) -> int:
            db.execute("INSERT INTO t (k, b) VALUES (?, ?)", [k, blob])
            return threading.get_ident()

        return job

    database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    start = path.stat().st_size
    for k in range(9):
        assert await runner.grouped(insert(k)) == threading.get_ident()  # on the loop
    assert path.stat().st_size == start and not checkpointed_on  # nine rows, in the WAL
    await runner.grouped(insert(9))  # the tenth row: the thread is woken to checkpoint
    await runner(lambda db: None)  # runs after the checkpoint, on the same thread
    assert path.stat().st_size > start + 9 * len(blob)
    assert len(checkpointed_on) == 1 and checkpointed_on[0] != threading.get_ident()
    assert runner.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1
    runner.close()


async def test_a_group_that_fails_as_a_whole_on_the_loop_is_done_again_on_the_thread(
    runner: DbRunner, tmp_path: Path
) -> None:
    """A job that ends the shared transaction: nothing of the loop's attempt stays, and the
    thread runs every job again, each on its own (the other job's row is committed)."""
    ran_on: list[int] = []

    def insert(db: Database) -> None:
        ran_on.append(threading.get_ident())
        db.execute("INSERT INTO t (k) VALUES (1)")

    def ends_the_transaction(db: Database) -> None:
        db.conn.execute("ROLLBACK")

    results = await asyncio.gather(
        runner.grouped(insert), runner.grouped(ends_the_transaction), return_exceptions=True
    )
    assert results[0] is None and isinstance(results[1], sqlite3.Error)
    assert _rows(tmp_path / "t.db") == [1]
    assert ran_on[0] == threading.get_ident() and ran_on[-1] != threading.get_ident()
    runner.close()


async def test_a_grouped_job_waits_for_jobs_the_thread_has_taken_but_not_yet_run(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread holds a job it has taken from its queue and not yet started (the lock
    is free): a grouped job sent after it must still run after it, on the thread."""
    gate = threading.Event()

    class HeldQueue(SimpleQueue):  # type: ignore[type-arg]
        def get(self, block: bool = True, timeout: float | None = None) -> object:
            item = super().get(block, timeout)
            gate.wait()
            return item

    monkeypatch.setattr(runner_module, "SimpleQueue", HeldQueue)
    runner = DbRunner(database)
    order: list[str] = []
    first = asyncio.ensure_future(runner(lambda db: order.append("first")))
    await asyncio.sleep(0.05)  # sent; the thread has taken it and waits at the gate
    second = asyncio.ensure_future(runner.grouped(lambda db: order.append("second")))
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(first, second)
    assert order == ["first", "second"]
    runner.close()


def test_ctrl_c_in_a_job_on_the_loop_leaves_no_transaction_open(
    database: Database, tmp_path: Path
) -> None:
    """Ctrl-C can now arrive while a group runs (on the loop's thread): the transaction is
    rolled back, so the write lock is free for the CLI and no later job runs inside it."""
    runner = DbRunner(database)

    def interrupted(db: Database) -> None:
        db.execute("INSERT INTO t (k) VALUES (1)")
        raise KeyboardInterrupt

    async def send() -> None:
        await runner.grouped(interrupted)

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(send())
    assert not database.conn.in_transaction
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # the lock is free
    other.execute("ROLLBACK")
    other.close()
    assert _rows(tmp_path / "t.db") == []
    runner.close()


async def test_a_hook_that_fails_on_the_loop_sends_the_group_to_the_thread(
    runner: DbRunner,
) -> None:
    """The hooks refresh what a group is checked against (the block list): a read that
    failed on the loop (it may not wait there) is done again on the thread, before the
    group runs there."""
    loop_thread = threading.get_ident()
    hooked_on: list[int] = []

    def refresh(db: Database) -> None:
        hooked_on.append(threading.get_ident())
        if threading.get_ident() == loop_thread:
            raise sqlite3.OperationalError("database is locked")

    runner.before_group.append(refresh)
    ran_on: list[int] = []
    await runner.grouped(lambda db: ran_on.append(threading.get_ident()))
    assert hooked_on[0] == loop_thread and hooked_on[-1] != loop_thread
    assert ran_on == [hooked_on[-1]]
    runner.close()
