"""Waiting for a wake-up or a time-out, in a way that never swallows a cancellation.

On Python 3.11 `asyncio.wait_for` around an event's wait returns normally when the task
is cancelled in the same loop iteration as the event is set (CPython issue 86296), so a
loop built on it can outlive its cancellation and hang shutdown. `asyncio.timeout` has no such
gap: a cancellation always ends the wait with CancelledError.
"""

from __future__ import annotations

import asyncio


async def wait_or_wake(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set (True) or `seconds` have passed (False)."""
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
