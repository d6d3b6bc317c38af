"""Liveness: a running school node re-publishes its profile weekly, so listings show who is
active, and a listing not refreshed for 60 days counts as stale."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from ..federation.runner import DbRunner
from .clock import parse_time
from .node import Node

log = logging.getLogger(__name__)
REPUBLISH_AFTER = timedelta(days=7)
STALE_AFTER = timedelta(days=60)
CHECK_INTERVAL = 3600.0


def republish_if_due(node: Node) -> bool:
    """Sign and send the profile again when its last version is a week old."""
    profile = node.profile()
    if profile is None or node.clock() - parse_time(profile.updated) < REPUBLISH_AFTER:
        return False
    node.publish_profile(profile.data)
    return True


async def keep_alive(node: Node, db: DbRunner, queued: Callable[[], None], interval: float) -> None:
    """Check hourly (and at start) whether the profile is due for re-publishing."""
    while True:
        if await db(lambda _db: republish_if_due(node)):
            log.info("profile re-published to show this school is active")
            queued()
        await asyncio.sleep(interval)
