"""Liveness: a running node re-publishes each school's profile weekly, so listings show who
is active, and a listing not refreshed for 60 days counts as stale.

Each school has its own slot in the week, from a hash of its handle, so a node hosting
thousands of schools re-publishes a few at a time all week long rather than all at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from ..federation.runner import DbRunner
from ..federation.waiting import wait_or_wake
from .clock import parse_time
from .node import Node

log = logging.getLogger(__name__)
WEEK = timedelta(days=7)
REPUBLISH_AFTER = WEEK
# A version younger than this at its slot is fresh enough: the next slot re-publishes it.
MIN_AGE = timedelta(days=1)
STALE_AFTER = timedelta(days=60)
CHECK_INTERVAL = 3600.0
ENDORSEMENT_PAUSE = 5.0
BATCH = 100  # re-published per pass; the rest follow a second later
_WEEK_SECONDS = int(WEEK.total_seconds())


def slot_offset(handle: str) -> int:
    """The school's slot: seconds into the week (counted from the Unix epoch), from a hash
    of its handle, so slots spread evenly whatever the handles."""
    digest = hashlib.sha256(handle.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % _WEEK_SECONDS


def last_slot(handle: str, now: datetime) -> float:
    """The latest time (Unix seconds) at or before `now` that is the school's slot."""
    t = now.timestamp()
    return t - ((t - slot_offset(handle)) % _WEEK_SECONDS)


def is_due(handle: str, updated: datetime, now: datetime) -> bool:
    """Whether the school's last slot has passed since its profile was at least a day old:
    once a week for each school, at most eight days apart."""
    return updated.timestamp() < last_slot(handle, now) - MIN_AGE.total_seconds()


def due_schools(node: Node) -> list[str]:
    """Handles of the served schools whose profile is due for re-publishing, oldest first."""
    now = node.clock()
    rows = node.store.db.execute(
        "SELECT p.handle, p.updated FROM profiles p JOIN accounts a ON a.handle = p.handle "
        "WHERE p.deleted_at IS NULL AND a.removed_at IS NULL AND a.moved_to IS NULL "
        "ORDER BY p.updated"
    ).fetchall()
    return [handle for handle, updated in rows if is_due(handle, parse_time(updated), now)]


def republish_due(node: Node, limit: int = BATCH) -> tuple[int, bool]:
    """Sign and send again the profiles that are due, at most `limit`; returns how many,
    and whether more are due."""
    due = due_schools(node)
    for handle in due[:limit]:
        school = node.for_school(handle)
        profile = school.profile()
        if profile is not None:
            school.publish_profile(profile.data)
    return min(len(due), limit), len(due) > limit


def republish_if_due(node: Node) -> bool:
    """Sign and send the profile of the school `node` acts for again when it is due."""
    profile = node.profile()
    if profile is None or not is_due(node.handle, parse_time(profile.updated), node.clock()):
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


def _any_outdated(_db: object, views: list[Node]) -> bool:
    return any(view.endorsements_outdated() for view in views)


def _republish_outdated(_db: object, views: list[Node]) -> int:
    return sum(republish_if_outdated(view) for view in views)


def _outdated_views(node: Node, outdated: set[str]) -> list[Node]:
    """The first account and each hosted school whose endorsements changed (drained)."""
    handles, views = sorted(outdated), [node]
    outdated.clear()
    for handle in handles:
        if handle != node.handle:
            try:
                views.append(node.for_school(handle))
            except Exception:  # removed meanwhile: nothing to re-publish
                log.debug("school %s is gone; its endorsements are not re-published", handle)
    return views


async def keep_alive(
    node: Node,
    db: DbRunner,
    queued: Callable[[], None],
    interval: float,
    wake: asyncio.Event,
    outdated: set[str] | None = None,
) -> None:
    """Check hourly, at start and when woken which profiles are due for re-publishing,
    weekly at each school's slot or because its endorsements changed (the first account's,
    and the hosted schools named in `outdated`); the latter at most every
    ENDORSEMENT_PAUSE seconds, so a burst of endorsements and revocations makes one
    version, not many."""
    last_for_endorsements = -ENDORSEMENT_PAUSE
    changed: set[str] = outdated if outdated is not None else set()
    pending: dict[str, Node] = {}
    while True:
        wake.clear()
        timeout = interval
        done, more = await db(lambda _db: republish_due(node))
        if done:
            log.info("%d profile(s) re-published to show their schools are active", done)
            queued()
        if more:
            timeout = 1.0
        for view in _outdated_views(node, changed):
            pending.setdefault(view.handle, view)
        wait = ENDORSEMENT_PAUSE - (node.clock().timestamp() - last_for_endorsements)
        checking = list(pending.values())
        if wait > 0 and await db(partial(_any_outdated, views=checking)):
            timeout = min(timeout, wait)
        else:
            views, pending = checking, {}
            count = await db(partial(_republish_outdated, views=views))
            if count:
                last_for_endorsements = node.clock().timestamp()
                log.info("%d profile(s) re-published with their current endorsements", count)
                queued()
        await wait_or_wake(wake, timeout)
