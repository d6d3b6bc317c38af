"""The states a queued delivery is shown in, derived from its row (the table keeps only
`pending` and `dead`)."""

from __future__ import annotations

from typing import Any

# pending: never tried; retrying: failed, tried again later; held: its host has been
# unavailable for days (probed every 12 h); dead: refused or out of attempts.
STATES = ("pending", "retrying", "dead", "held")


def describe_state(row: dict[str, Any]) -> str:
    """The state of a row of `store.queue_rows`."""
    if row["state"] == "dead":
        return "dead"
    if row["host_unavailable_since"] is not None:
        return "held"
    return "retrying" if row["attempts"] else "pending"
