"""Endorsements: an authority vouching, with its integrity proof, for one school's key.

An endorsement names the school's actor and the Ed25519 key the school signs its profile
with, so it stays with that key: a school whose key changes needs a new endorsement, and
whoever takes over a school's domain without its key inherits nothing. Schools carry the
endorsements they hold inside their signed profile; authorities revoke one with a signed
Delete of its id.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .activities import host_of
from .contexts import ACTIVITYSTREAMS, AMITY_NS, DATA_INTEGRITY_V2
from .errors import MalformedDocument
from .multikey import decode_ed25519_public

ENDORSEMENT_TYPE = "Endorsement"
MAX_ENDORSEMENTS = 16  # carried in one profile; more is refused as malformed
MAX_ENDORSEMENT_BYTES = 4096
ENDORSEMENT_CONTEXT: list[Any] = [
    ACTIVITYSTREAMS,
    DATA_INTEGRITY_V2,
    {
        "amity": AMITY_NS,
        "Endorsement": "amity:Endorsement",
        "endorsedKey": "amity:endorsedKey",
        "expires": "amity:expires",
    },
]
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@dataclass(frozen=True)
class Endorsement:
    """The fields of an endorsement that decide whether it counts."""

    id: str
    authority: str
    school: str
    key: bytes  # the school's raw Ed25519 public key
    published: str
    expires: str | None
    document: dict[str, Any]


def endorsement_document(
    endorsement_id: str,
    *,
    authority: str,
    school: str,
    key_multibase: str,
    published: str,
    expires: str | None = None,
) -> dict[str, Any]:
    """The unsigned endorsement; the authority adds its eddsa-jcs-2022 proof."""
    doc: dict[str, Any] = {
        "@context": ENDORSEMENT_CONTEXT,
        "id": endorsement_id,
        "type": ENDORSEMENT_TYPE,
        "attributedTo": authority,
        "object": school,
        "endorsedKey": key_multibase,
        "published": published,
    }
    if expires is not None:
        doc["expires"] = expires
    return doc


def read_endorsement(doc: Any) -> Endorsement:
    """The endorsement `doc` describes; MalformedDocument when a field is missing or wrong.
    The proof is not checked here (that needs the authority's key)."""
    if not isinstance(doc, dict) or doc.get("type") != ENDORSEMENT_TYPE:
        raise MalformedDocument(f"not an {ENDORSEMENT_TYPE}")
    for field in ("id", "attributedTo", "object", "endorsedKey", "published"):
        if not isinstance(doc.get(field), str):
            raise MalformedDocument(f"endorsement has no {field}")
    for field in ("published", "expires"):
        if field in doc and not (isinstance(doc[field], str) and _TIME.match(doc[field])):
            raise MalformedDocument(f"endorsement {field} must be like 2026-01-31T00:00:00Z")
    if "proof" not in doc:
        raise MalformedDocument("endorsement has no proof")
    if len(json.dumps(doc)) > MAX_ENDORSEMENT_BYTES:
        raise MalformedDocument(f"endorsement is over {MAX_ENDORSEMENT_BYTES} bytes")
    host_of(doc["object"])
    if host_of(doc["id"]) != host_of(doc["attributedTo"]):
        # Ids are the authority's own: another cannot reuse one (nor revoke it).
        raise MalformedDocument("endorsement id is not on its authority's host")
    return Endorsement(
        id=doc["id"],
        authority=doc["attributedTo"],
        school=doc["object"],
        key=decode_ed25519_public(doc["endorsedKey"]),
        published=doc["published"],
        expires=doc.get("expires"),
        document=doc,
    )


def carried_endorsements(profile_doc: dict[str, Any]) -> list[Any]:
    """The endorsements a profile object carries (unchecked)."""
    carried = profile_doc.get("endorsements", [])
    if not isinstance(carried, list) or len(carried) > MAX_ENDORSEMENTS:
        raise MalformedDocument(f"endorsements must be a list of at most {MAX_ENDORSEMENTS}")
    return carried


def revoked_endorsement(delete: dict[str, Any]) -> str | None:
    """The endorsement id a Delete revokes, or None when it deletes something else."""
    tombstone = delete.get("object")
    if isinstance(tombstone, dict) and tombstone.get("formerType") == ENDORSEMENT_TYPE:
        object_id = tombstone.get("id")
        return object_id if isinstance(object_id, str) else None
    return None
