"""The directory as this node's operator sees it: listings with liveness and endorsements
judged at the node's own time (what `amity directory` prints)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..federation import directory
from .clock import format_time
from .liveness import STALE_AFTER
from .node import Node


def directory_listings(
    node: Node, filters: directory.Filters, show_all: bool, limit: int, offset: int
) -> list[dict[str, Any]]:
    """Listings matching `filters`, other than this node's own school (a school looks for
    partners, not itself); stale and paused ones only with `show_all`."""
    moment = node.clock()
    now, stale_before = format_time(moment), format_time(moment - STALE_AFTER)
    filters = replace(
        filters,
        exclude=[*filters.exclude, node.urls.id],
        updated_since=None if show_all else stale_before,
        include_paused=show_all,
        now=now,
    )
    db = node.store.db
    rows = directory.search(db, filters, limit, offset)
    return directory.summaries(db, rows, now, stale_before)
