"""Running database work on the node's one database thread, from async code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlite_utils import Database

T = TypeVar("T")


class DbRunner:
    """Every database call goes through one thread: SQLite sees a single writer."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amity-db")

    async def __call__(self, fn: Callable[[Database], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self.db)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
