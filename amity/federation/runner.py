"""Running database work on the node's one database thread, from async code.

The thread takes every job waiting when it wakes and hands all their results back to the
event loop in one call, so a busy node pays one thread hand-off per batch, not per job.
Jobs sent with `grouped` are committed together: each runs in a savepoint of one shared
transaction, and every caller gets its answer only after that one COMMIT (group commit).
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
        """Hand the jobs of one turn of the event loop over at once: one wake-up."""
        jobs, self._pending = self._pending, []
        self._jobs.put(jobs)

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
            jobs = self._jobs.get()
            while True:
                if jobs is _STOP:
                    stop = True
                else:
                    batch += jobs
                if self._jobs.empty():
                    break
                jobs = self._jobs.get_nowait()
            self._execute(batch)

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
        for hook in self.before_group:
            try:
                hook(self.db)
            except Exception:
                log.exception("database hook failed")
        if len(group) == 1 or not self._shared_transaction(group):
            self._one_by_one(group)
        self._answer(group)

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
        except sqlite3.Error:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            return False
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
