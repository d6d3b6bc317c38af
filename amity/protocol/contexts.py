"""JSON-LD context URLs and Amity's own inline context.

Documents are produced and read in compact form; no context is ever fetched.
"""

from __future__ import annotations

from typing import Any

ACTIVITYSTREAMS = "https://www.w3.org/ns/activitystreams"
SECURITY_V1 = "https://w3id.org/security/v1"
DATA_INTEGRITY_V2 = "https://w3id.org/security/data-integrity/v2"
MULTIKEY_V1 = "https://w3id.org/security/multikey/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"

AMITY_NS = "https://amity-network.org/ns#"

# The terms Amity adds to ActivityStreams. The namespace is an identifier, never dereferenced.
ACTOR_TERMS: dict[str, Any] = {
    "amity": AMITY_NS,
    "nodeKind": "amity:nodeKind",
    "schoolProfile": {"@id": "amity:schoolProfile", "@type": "@id"},
    "directory": {"@id": "amity:directory", "@type": "@id"},
    "revocations": {"@id": "amity:revocations", "@type": "@id"},
    "discoverable": "http://joinmastodon.org/ns#discoverable",
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    # Account migration, with the terms Mastodon uses (docs/protocol.md, "Moving out").
    "alsoKnownAs": {"@id": "as:alsoKnownAs", "@type": "@id"},
    "movedTo": {"@id": "as:movedTo", "@type": "@id"},
    # When a hosted school was removed (docs/protocol.md, "Removal").
    "removed": {"@id": "amity:removed", "@type": "http://www.w3.org/2001/XMLSchema#dateTime"},
}
# Profile terms not defined by ActivityStreams fall into Amity's namespace through @vocab;
# a short context matters because every proof carries a copy of it (FEP-8b32).
PROFILE_TERMS: dict[str, Any] = {
    "@vocab": AMITY_NS,
    "schema": "http://schema.org/",
    "country": "schema:addressCountry",
    "locality": "schema:addressLocality",
    "start": "schema:startDate",
    "end": "schema:endDate",
}

ACTOR_CONTEXT: list[Any] = [
    ACTIVITYSTREAMS,
    SECURITY_V1,
    DATA_INTEGRITY_V2,
    MULTIKEY_V1,
    ACTOR_TERMS,
]
PROFILE_CONTEXT: list[Any] = [ACTIVITYSTREAMS, DATA_INTEGRITY_V2, PROFILE_TERMS]

# A directory page adds two terms: the cursor to ask for the changes after it, and the
# keys the page's profiles were checked with.
DIRECTORY_CONTEXT: list[Any] = [
    ACTIVITYSTREAMS,
    {"amity": AMITY_NS, "cursor": "amity:cursor", "authorKeys": "amity:authorKeys"},
]
