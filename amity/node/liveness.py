"""Liveness: a running school node re-publishes its profile weekly, so listings show who is
active, and a listing not refreshed for 60 days counts as stale."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from ..federation.runner import DbRunner
from ..federation.waiting import wait_or_wake
from .clock import parse_time
from .node import Node

log = logging.getLogger(__name__)
REPUBLISH_AFTER = timedelta(days=7)
STALE_AFTER = timedelta(days=60)
CHECK_INTERVAL = 3600.0
ENDORSEMENT_PAUSE = 5.0


def republish_if_due(node: Node) -> bool:
    """Sign and send the profile again when its last version is a week old."""
    profile = node.profile()
    if profile is None or node.clock() - parse_time(profile.updated) < REPUBLISH_AFTER:
        return False
    node.publish_profile(profile.data)
    return True


def republish_if_outdated(node: Node) -> bool:
    """Sign and send the profile again when the endorsements it carries are out of date."""
    profile = node.profile()
    if profile is None or not node.endorsements_outdated():
        return False
    node.publish_profile(profile.data)
    return True


async def keep_alive(
    node: Node,
    db: DbRunner,
    queued: Callable[[], None],
    interval: float,
    wake: asyncio.Event,
) -> None:
    """Check hourly, at start and when woken whether the profile is due for re-publishing,
    weekly or because its endorsements changed; the latter at most every ENDORSEMENT_PAUSE
    seconds, so a burst of endorsements and revocations makes one version, not many."""
    last_for_endorsements = -ENDORSEMENT_PAUSE
    while True:
        wake.clear()
        timeout = interval
        if await db(lambda _db: republish_if_due(node)):
            log.info("profile re-published to show this school is active")
            queued()
        wait = ENDORSEMENT_PAUSE - (node.clock().timestamp() - last_for_endorsements)
        if wait > 0 and await db(lambda _db: node.endorsements_outdated()):
            timeout = min(interval, wait)
        elif await db(lambda _db: republish_if_outdated(node)):
            last_for_endorsements = node.clock().timestamp()
            log.info("profile re-published with its current endorsements")
            queued()
        await wait_or_wake(wake, timeout)
