"""WebFinger (RFC 7033) and NodeInfo 2.1 documents."""

from __future__ import annotations

import re
from typing import Any

from .errors import MalformedDocument

NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/2.1"
NODEINFO_CONTENT_TYPE = f'application/json; profile="{NODEINFO_REL}#"'
HANDLE_PATTERN = re.compile(r"^[a-z0-9_-]{1,64}$")
_ACCT = re.compile(r"^acct:([^@\s]+)@([^@\s]+)$")


def parse_acct(resource: str) -> tuple[str, str]:
    """(handle, host) of an `acct:handle@host` URI."""
    match = _ACCT.match(resource)
    if not match:
        raise MalformedDocument(f"{resource!r} is not an acct: URI (acct:name@host)")
    return match.group(1), match.group(2).lower()


def webfinger_document(handle: str, host: str, actor_id: str) -> dict[str, Any]:
    """The JRD describing one actor (RFC 7033 section 4.4)."""
    return {
        "subject": f"acct:{handle}@{host}",
        "aliases": [actor_id],
        "links": [
            {"rel": "self", "type": "application/activity+json", "href": actor_id},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": actor_id},
        ],
    }


def nodeinfo_links(base_url: str) -> dict[str, Any]:
    """The /.well-known/nodeinfo discovery document."""
    return {"links": [{"rel": NODEINFO_REL, "href": f"{base_url}/nodeinfo/2.1"}]}


def nodeinfo_document(
    *, version: str, kind: str, actors: int, profiles: int, metadata: dict[str, Any]
) -> dict[str, Any]:
    """The NodeInfo 2.1 document; `metadata` always carries the node's kind."""
    return {
        "version": "2.1",
        "software": {
            "name": "amity",
            "version": version,
        },
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {"users": {"total": actors}, "localPosts": profiles},
        "metadata": {"kind": kind, **metadata},
    }
