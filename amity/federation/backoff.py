"""When to try a failed delivery again: exponential back-off with jitter over about 3 days."""

from __future__ import annotations

FIRST_DELAY = 60.0  # seconds
MAX_DELAY = 6 * 3600.0
# 1 min doubling to 4.3 h (9 tries, 8.5 h), then every 6 h: 20 tries span about 3 days.
MAX_ATTEMPTS = 20
PROBE_INTERVAL = 12 * 3600.0  # how often an unavailable host is tried again


def retry_delay(attempts: int, jitter: float, first_delay: float = FIRST_DELAY) -> float:
    """Seconds to wait after the `attempts`-th failure; `jitter` in [0, 1) spreads retries."""
    base = min(first_delay * 2.0 ** (attempts - 1), MAX_DELAY)
    return base * (0.75 + 0.5 * jitter)


def is_permanent_failure(status: int) -> bool:
    """4xx answers other than 401, 408 and 429 will not change by retrying (as Mastodon
    sees it). A 401 may: the receiver could not fetch this node's key just then (the node
    was unreachable, or a proxy in front of it failed)."""
    return 400 <= status < 500 and status not in (401, 408, 429)
