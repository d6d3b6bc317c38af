"""The published school profile: an ActivityStreams object carrying the import format.

The mapping is one-to-one, so a relayed copy turns back into the exact profile its author
imported (`profile_from_document`).
"""

from __future__ import annotations

from typing import Any

from .contexts import PROFILE_CONTEXT
from .endorsement import carried_endorsements
from .errors import MalformedDocument
from .profile import validate_profile

PROFILE_TYPE = "SchoolProfile"
# import-format field -> document property; the rest keep their names.
_RENAMED = {
    "name_map": "nameMap",
    "school_days": "schoolDays",
    "school_hours": "schoolHours",
    "description": "summary",
    "pairing_rounds": "pairingRounds",
}
_FROM_DOCUMENT = {v: k for k, v in _RENAMED.items()}
_ENVELOPE = (
    "@context",
    "id",
    "type",
    "attributedTo",
    "published",
    "updated",
    "paused",
    "endorsements",
    "proof",
)


def profile_document(
    profile: dict[str, Any],
    *,
    profile_id: str,
    actor_id: str,
    published: str,
    updated: str,
    paused: bool = False,
    endorsements: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The unsigned profile object for a validated profile; `paused` hides the listing;
    `endorsements` are the signed endorsements the school holds, carried as they are."""
    doc: dict[str, Any] = {
        "@context": PROFILE_CONTEXT,
        "id": profile_id,
        "type": PROFILE_TYPE,
        "attributedTo": actor_id,
        "published": published,
        "updated": updated,
    }
    for field, value in profile.items():
        doc[_RENAMED.get(field, field)] = value
    if paused:
        doc["paused"] = True
    if endorsements:
        doc["endorsements"] = endorsements
    return doc


def profile_from_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The validated import-format profile a profile object carries."""
    if not isinstance(doc, dict) or doc.get("type") != PROFILE_TYPE:
        raise MalformedDocument(f"not a {PROFILE_TYPE} object")
    for field in ("id", "attributedTo", "updated"):
        if not isinstance(doc.get(field), str):
            raise MalformedDocument(f"profile object has no {field}")
    if "paused" in doc and not isinstance(doc["paused"], bool):
        raise MalformedDocument("profile paused must be true or false")
    carried_endorsements(doc)
    fields = {
        _FROM_DOCUMENT.get(key, key): value for key, value in doc.items() if key not in _ENVELOPE
    }
    return validate_profile(fields, received=True)
