"""The accounts this node serves, held in memory so the inbox finds a local actor by id
without a query: actor id -> handle, as the inbox's `local_actors` mapping.

Kept up to date as BlockList keeps the blocks (federation/blocks.py): read again after
another process committed (`amity school add` or `remove` beside `serve`; PRAGMA
data_version tells) and after this connection wrote the accounts table (a temporary
trigger tells), looked at before every group of inbox writes and, on a quiet node, when
the last look is older than `max_age` seconds. One query of every handle: no work per
school.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sqlite_utils import Database

from .clock import Clock, system_clock
from .runner import DbRunner

MAX_AGE = 1.0


class LocalAccounts(Mapping[str, str]):
    """Actor id -> handle of every account served here (not removed, not moved)."""

    def __init__(
        self, base_url: str, db: DbRunner, max_age: float = MAX_AGE, clock: Clock = system_clock
    ) -> None:
        self.prefix = f"{base_url}/actors/"
        self.db = db
        self.max_age = max_age
        self.clock = clock
        self._handles: frozenset[str] = frozenset()
        self._version: int | None = None
        self._looked_at = float("-inf")
        self._watching: Database | None = None
        db.before_group.append(self.refresh)

    def __getitem__(self, actor_id: str) -> str:
        if isinstance(actor_id, str) and actor_id.startswith(self.prefix):
            handle = actor_id[len(self.prefix) :]
            if handle in self._handles:
                return handle
        raise KeyError(actor_id)

    def __iter__(self) -> Iterator[str]:
        return (self.prefix + handle for handle in sorted(self._handles))

    def __len__(self) -> int:
        return len(self._handles)

    def serves(self, handle: str) -> bool:
        return handle in self._handles

    async def fresh(self) -> LocalAccounts:
        """This mapping, read again first if the last look is older than `max_age`."""
        if self.clock().timestamp() - self._looked_at > self.max_age:
            await self.db(self.refresh)
        return self

    def refresh(self, db: Database) -> None:
        """On the database thread: read the table again if it may have changed."""
        if self._watching is not db:
            self._watch(db)
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            rows = db.execute(
                "SELECT handle FROM accounts WHERE removed_at IS NULL AND moved_to IS NULL"
            ).fetchall()
            self._handles = frozenset(row[0] for row in rows)
            self._version = version
        self._looked_at = self.clock().timestamp()

    def _watch(self, db: Database) -> None:
        db.conn.create_function("amity_accounts_changed", 0, self._changed)
        for event in ("INSERT", "UPDATE", "DELETE"):
            db.execute(
                f"CREATE TEMP TRIGGER IF NOT EXISTS amity_accounts_{event.lower()} AFTER "
                f"{event} ON main.accounts BEGIN SELECT amity_accounts_changed(); END"
            )
        self._watching = db
        self._version = None

    def _changed(self) -> None:
        self._version = None
        self._looked_at = float("-inf")
