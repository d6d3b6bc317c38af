"""The node's blocks, held in memory so the inbox can refuse before it does any work.

The set is read again whenever the database may hold other blocks: after another process
committed (`amity block` from the CLI; SQLite's `PRAGMA data_version` tells) and after
this node's own connection wrote the blocks table (a temporary trigger tells). The
database thread looks before every group of inbox writes; the inbox asks it to look when
the last look is older than `max_age` seconds (a quiet node).
"""

from __future__ import annotations

from sqlite_utils import Database

from .blocklist import block_targets
from .clock import Clock, system_clock
from .runner import DbRunner

MAX_AGE = 1.0  # seconds a quiet node trusts its last look at the blocks table


class BlockList:
    """The `blocks` table's targets, kept up to date from the database thread."""

    def __init__(
        self,
        db: DbRunner,
        max_age: float = MAX_AGE,
        clock: Clock = system_clock,
    ) -> None:
        self.db = db
        self.max_age = max_age
        self.clock = clock
        self._targets: frozenset[str] = frozenset()
        self._version: int | None = None  # data_version at the last read; None: read again
        self._looked_at = float("-inf")
        self._watching: Database | None = None
        db.before_group.append(self.refresh)

    async def blocked(self, *urls: str) -> bool:
        """True when any of `urls` is blocked (an actor, its host or its domain)."""
        if self.clock().timestamp() - self._looked_at > self.max_age:
            await self.db(self.refresh)
        return self.holds(*urls)

    def holds(self, *urls: str) -> bool:
        """The same answer from memory, as of the last look (exact on the database thread
        inside a group, which looks first)."""
        targets = self._targets
        return bool(targets) and not targets.isdisjoint(block_targets(*urls))

    def refresh(self, db: Database) -> None:
        """On the database thread: read the table again if it may have changed."""
        if self._watching is not db:
            self._watch(db)
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            rows = db.execute("SELECT target FROM blocks").fetchall()
            self._targets = frozenset(row[0] for row in rows)
            self._version = version
        self._looked_at = self.clock().timestamp()

    def _watch(self, db: Database) -> None:
        """Have this connection's own writes to `blocks` mark the set stale (data_version
        only counts other connections' commits)."""
        db.conn.create_function("amity_blocks_changed", 0, self._changed)
        for event in ("INSERT", "UPDATE", "DELETE"):
            db.execute(
                f"CREATE TEMP TRIGGER IF NOT EXISTS amity_blocks_{event.lower()} AFTER {event} "
                "ON main.blocks BEGIN SELECT amity_blocks_changed(); END"
            )
        self._watching = db
        self._version = None

    def _changed(self) -> None:
        self._version = None
        self._looked_at = float("-inf")
