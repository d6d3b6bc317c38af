"""Pruning: what grows with traffic is dropped after its retention (federation/limits.py).

Each rule deletes in batches, one short transaction each, so inbox writes interleave.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from sqlite_utils import Database

from . import limits
from .actor_cache import UNREFERENCED_ACTOR
from .follows import FollowLimits
from .runner import DbRunner

log = logging.getLogger(__name__)
BATCH = 2_000
PRUNE_INTERVAL = 3600.0


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rules(now: datetime) -> dict[str, tuple[str, str, list[object]]]:
    """Per rule name: (table, condition on its alias `r`, arguments) of the rows to drop."""
    t = now.timestamp()
    return {
        "seen_activities": ("seen_activities", "r.received_at < ?", [t - limits.SEEN_RETENTION]),
        "reports": ("reports", "r.received_at < ?", [t - limits.REPORT_RETENTION]),
        "remote_actors": (
            "remote_actors",
            f"r.fetched_at < ? AND {UNREFERENCED_ACTOR}",
            [t - limits.ACTOR_RETENTION],
        ),
        "deliveries": ("deliveries", "r.created_at < ?", [t - limits.DELIVERY_RETENTION]),
        # The newest public activity of each account stays, so its outbox is never empty.
        "outbox": (
            "outbox",
            "r.published < ? AND NOT EXISTS "
            "(SELECT 1 FROM deliveries d WHERE d.activity_id = r.id) AND r.rowid NOT IN "
            "(SELECT max(rowid) FROM outbox WHERE type IN ('Update', 'Delete') GROUP BY handle)",
            [_iso(t - limits.OUTBOX_RETENTION)],
        ),
        # A host's availability matters only while something is queued for it.
        "hosts": (
            "hosts",
            "max(coalesce(r.last_success, 0), coalesce(r.unavailable_since, 0)) < ? "
            "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.host = r.host)",
            [t - limits.DELIVERY_RETENTION],
        ),
        # Follow requests nobody answered expire (they are not shown past this either).
        "follow_requests": (
            "follow_requests",
            "r.received_at < ?",
            [t - FollowLimits().pending_seconds],
        ),
        # Ended, declined and expired proposals are history (matching reads it) for a year.
        "partnerships": (
            "partnerships",
            "r.state IN ('declined', 'expired', 'withdrawn', 'left') AND r.changed_at < ?",
            [t - limits.PARTNERSHIP_RETENTION],
        ),
        # A move is remembered while a follow, a partnership or a later move needs it.
        "remote_moves": (
            "remote_moves",
            "r.received_at < ? AND NOT EXISTS (SELECT 1 FROM following f WHERE f.actor = r.new) "
            "AND NOT EXISTS (SELECT 1 FROM partnerships p WHERE p.partner = r.new "
            "OR p.proposer = r.old) "
            "AND NOT EXISTS (SELECT 1 FROM remote_moves m WHERE m.old = r.new)",
            [t - limits.PARTNERSHIP_RETENTION],
        ),
        "lan_peers": (
            "lan_peers",
            "r.rowid NOT IN (SELECT rowid FROM lan_peers ORDER BY seen_at DESC LIMIT ?)",
            [limits.LAN_PEERS],
        ),
    }


def prune_batch(db: Database, table: str, where: str, args: list[object]) -> int:
    """Delete up to BATCH rows of `table` matching `where`; how many went."""
    with db.atomic():
        return db.execute(
            f"DELETE FROM {table} WHERE rowid IN "
            f"(SELECT r.rowid FROM {table} r WHERE {where} LIMIT {BATCH})",
            args,
        ).rowcount


def prune(db: Database, now: datetime) -> dict[str, int]:
    """Apply every rule at `now` until nothing is left to drop; rows dropped per rule."""
    dropped: dict[str, int] = {}
    for name, (table, where, args) in rules(now).items():
        dropped[name] = 0
        while (gone := prune_batch(db, table, where, args)) > 0:
            dropped[name] += gone
    return dropped


async def prune_async(runner: DbRunner, now: datetime) -> dict[str, int]:
    """`prune` on the node's database thread, one batch at a time."""
    dropped: dict[str, int] = {}
    for name, (table, where, args) in rules(now).items():
        dropped[name] = 0
        while True:
            gone = await runner(partial(prune_batch, table=table, where=where, args=args))
            dropped[name] += gone
            if gone == 0:
                break
    return dropped


async def prune_regularly(
    runner: DbRunner, clock: Callable[[], datetime], interval: float = PRUNE_INTERVAL
) -> None:
    """Prune at start, then every `interval` seconds, until cancelled."""
    while True:
        try:
            dropped = await prune_async(runner, clock())
        except Exception:  # a failed round is logged; the next one tries again
            log.exception("pruning failed")
        else:
            if any(dropped.values()):
                log.info("pruned %s", {k: v for k, v in dropped.items() if v})
        await asyncio.sleep(interval)
