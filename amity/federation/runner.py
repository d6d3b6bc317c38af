"""Running database work on the node's one database thread, from async code.

The thread takes every job waiting when it wakes and hands all their results back to the
event loop in one call, so a busy node pays one thread hand-off per batch, not per job.
Jobs sent with `grouped` are committed together: each runs in a savepoint of one shared
transaction, and every caller gets its answer only after that one COMMIT (group commit).

When the thread is idle, one turn's grouped jobs (the inbox's) run on the event loop
instead: handing them to the thread and their answers back costs the loop more than the
jobs, and each hand-off waits for the GIL. They run there only when nothing is waiting for
the thread (so no job overtakes an earlier one) and only if the write lock is free at once
(another process writing makes them go to the thread, which waits; the loop never does).
Their commits do not checkpoint the WAL (a checkpoint writes the database file and
fsyncs): once they have written CHECKPOINT_ROWS rows, the thread does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from queue import SimpleQueue
from typing import Any, TypeVar

from sqlite_utils import Database

T = TypeVar("T")
log = logging.getLogger(__name__)
MAX_GROUP = 64  # jobs per shared transaction: keeps the write lock short for the CLI
CHECKPOINT_ROWS = 1000  # rows written on the loop between the thread's WAL checkpoints
_STOP = None


@dataclass
class _Job:
    fn: Callable[[Database], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    grouped: bool
    outcome: tuple[bool, Any] = field(default=(False, None))  # (failed, value or exception)


class DbRunner:
    """Every database call goes through one thread: SQLite sees a single writer."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._jobs: SimpleQueue[list[_Job] | None] = SimpleQueue()
        self._pending: list[_Job] = []  # sent during this turn of the event loop
        self._lock = threading.Lock()  # held while jobs run, on the thread or on the loop
        self._sent = 0  # batches put on the queue (by the loop)
        self._done = 0  # batches the thread has run (under the lock)
        conn = db.conn
        self._changes_at_checkpoint = conn.total_changes  # rows written, as of then
        self._checkpoint_due = False
        self._busy_timeout = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
        self._autocheckpoint = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        self._thread = threading.Thread(target=self._run, name="amity-db", daemon=True)
        self._thread.start()
        self._closed = False
        # Called on the database thread at the start of every group, before its jobs:
        # a cheap place to notice what another process changed (see BlockList).
        self.before_group: list[Callable[[Database], None]] = []

    async def __call__(self, fn: Callable[[Database], T]) -> T:
        """Run `fn(db)` on the database thread, on its own (it commits as it likes)."""
        result: T = await self._submit(fn, grouped=False)
        return result

    async def grouped(self, fn: Callable[[Database], T]) -> T:
        """Run `fn(db)` inside a transaction shared with other waiting grouped jobs; the
        answer comes once that transaction is committed. `fn` must not commit itself; if it
        raises, only its own changes are rolled back."""
        result: T = await self._submit(fn, grouped=True)
        return result

    def _submit(self, fn: Callable[[Database], Any], grouped: bool) -> asyncio.Future[Any]:
        if self._closed:
            raise RuntimeError("the database runner is closed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._send)
        self._pending.append(_Job(fn, loop, future, grouped))
        return future

    def _send(self) -> None:
        """Hand the jobs of one turn of the event loop over at once: one wake-up (or run
        them here, see the module's docstring)."""
        jobs, self._pending = self._pending, []
        if jobs and self._run_here(jobs):
            return
        self._sent += 1
        self._jobs.put(jobs)

    def _run_here(self, group: list[_Job]) -> bool:
        """Run `group` on this thread, the event loop's; False (nothing committed, the
        thread is to run it) unless every job is grouped and the database thread and the
        write lock are free."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # close() outside the loop: the thread answers
            return False
        if len(group) > MAX_GROUP or not all(j.grouped and j.loop is loop for j in group):
            return False
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._done != self._sent:  # earlier jobs wait for the thread: keep the order
                return False
            conn = self.db.conn
            try:
                conn.execute("PRAGMA busy_timeout = 0")  # never wait for another process here
                conn.execute("PRAGMA wal_autocheckpoint = 0")
                # A hook that failed here (a read that would have waited, say) may work on
                # the thread; a group must not run on what it failed to refresh.
                if not self._before_group(quiet=True) or not self._shared_transaction(group):
                    return False  # nothing committed: the thread does it all again
            except sqlite3.Error:
                return False
            finally:
                for pragma, value in (
                    ("busy_timeout", self._busy_timeout),
                    ("wal_autocheckpoint", self._autocheckpoint),
                ):
                    try:
                        conn.execute(f"PRAGMA {pragma} = {value}")
                    except sqlite3.Error as exc:
                        log.error("cannot restore PRAGMA %s = %s: %s", pragma, value, exc)
            # Rows written stand in for pages: SQLite checkpoints after 1000 pages.
            if conn.total_changes - self._changes_at_checkpoint >= CHECKPOINT_ROWS:
                self._changes_at_checkpoint = conn.total_changes
                self._checkpoint_due = True
                self._sent += 1
                self._jobs.put([])  # wakes the thread for it
        finally:
            self._lock.release()
        _resolve(group)
        return True

    def close(self) -> None:
        """Finish every job already sent, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._send()
            self._jobs.put(_STOP)
            self._thread.join()

    # -- on the database thread ----------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[_Job] = []
            taken = 0
            jobs = self._jobs.get()
            while True:
                if jobs is _STOP:
                    stop = True
                else:
                    batch += jobs
                    taken += 1
                if self._jobs.empty():
                    break
                jobs = self._jobs.get_nowait()
            with self._lock:
                if self._checkpoint_due:  # before the jobs sent after it was due
                    self._checkpoint_due = False
                    self._checkpoint()
                self._execute(batch)
                self._done += taken

    def _checkpoint(self) -> None:
        try:
            self.db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # the disk, say: the next one catches up
            log.warning("WAL checkpoint failed: %s", exc)

    def _execute(self, batch: list[_Job]) -> None:
        """Run `batch` in order: grouped jobs next to each other share a transaction; the
        answers go back after each group and each job on its own."""
        group: list[_Job] = []
        for job in batch:
            if job.grouped:
                group.append(job)
                if len(group) == MAX_GROUP:
                    self._run_group(group)
                    group = []
                continue
            self._run_group(group)
            group = []
            job.outcome = _outcome(job.fn, self.db)
            self._answer([job])
        self._run_group(group)

    def _run_group(self, group: list[_Job]) -> None:
        if not group:
            return
        self._before_group()
        if len(group) == 1 or not self._shared_transaction(group):
            self._one_by_one(group)
        self._answer(group)

    def _before_group(self, quiet: bool = False) -> bool:
        """Run the hooks; False if one failed (logged unless `quiet`)."""
        ok = True
        for hook in self.before_group:
            try:
                hook(self.db)
            except Exception:
                ok = False
                if not quiet:
                    log.exception("database hook failed")
        return ok

    def _shared_transaction(self, group: list[_Job]) -> bool:
        """Run `group` in one transaction; False (all rolled back) if that failed as a
        whole, so each job must run again on its own."""
        conn = self.db.conn
        if conn.in_transaction:
            return False
        try:
            conn.execute("BEGIN IMMEDIATE")  # take the write lock now, waiting for the CLI
            for job in group:
                conn.execute("SAVEPOINT amity_job")
                job.outcome = _outcome(job.fn, self.db)
                if not conn.in_transaction:
                    return False  # an error ended the whole transaction
                if job.outcome[0]:
                    conn.execute("ROLLBACK TO amity_job")
                conn.execute("RELEASE amity_job")
            conn.execute("COMMIT")
        except BaseException as exc:  # Ctrl-C on the loop, too: never leave it open
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                return False
            raise
        return True

    def _one_by_one(self, group: list[_Job]) -> None:
        for job in group:
            job.outcome = _outcome(partial(_atomic, fn=job.fn), self.db)

    def _answer(self, batch: list[_Job]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in batch:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: no one waits any more
                loop.call_soon_threadsafe(_resolve, jobs)


def _outcome(fn: Callable[[Database], Any], db: Database) -> tuple[bool, Any]:
    try:
        return False, fn(db)
    except Exception as exc:
        return True, exc


def _atomic(db: Database, *, fn: Callable[[Database], T]) -> T:
    with db.atomic():
        return fn(db)


def _resolve(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.cancelled():
            continue
        failed, value = job.outcome
        if failed:
            job.future.set_exception(value)
        else:
            job.future.set_result(value)
