"""Content negotiation between ActivityPub JSON and the public HTML page."""

from __future__ import annotations

import mimeparse

ACTIVITY_JSON = "application/activity+json"
LD_JSON = "application/ld+json"
AS_PROFILE = "https://www.w3.org/ns/activitystreams"
# mimeparse prefers the later entry on a tie, so ActivityPub JSON wins over HTML for */*.
_OFFERED = ["text/html", "application/json", LD_JSON, ACTIVITY_JSON]


def choose_representation(accept: str | None) -> str:
    """`html`, or the JSON content type to answer with; JSON when nothing says otherwise."""
    if not accept:
        return ACTIVITY_JSON
    try:
        best = mimeparse.best_match(_OFFERED, accept)
    except (ValueError, IndexError):
        return ACTIVITY_JSON
    if best == "text/html":
        return "html"
    if best == LD_JSON:
        return f'{LD_JSON}; profile="{AS_PROFILE}"'
    return ACTIVITY_JSON
