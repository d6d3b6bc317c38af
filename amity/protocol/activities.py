"""ActivityStreams activities: building the ones Amity sends, reading the ones it receives."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from .contexts import ACTIVITYSTREAMS, DATA_INTEGRITY_V2, PUBLIC
from .errors import MalformedDocument

HANDLED_TYPES = frozenset(
    {"Follow", "Accept", "Reject", "Undo", "Create", "Update", "Delete", "Announce", "Flag"}
)
MAX_ID_LENGTH = 2048
# The common shape, read without urlsplit: scheme, plain host, optional port, then the end
# or a path, query or fragment. Anything else goes the long way.
_PLAIN_URL = re.compile(r"(?i:https?)://([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?(?=[/?#]|\Z)")


class IncomingActivity(NamedTuple):
    """The fields of a received activity that inbox processing relies on."""

    # A NamedTuple: one is built for every inbox request, at a fifth of the cost of a
    # frozen dataclass.
    id: str
    type: str
    actor: str
    object: Any
    document: dict[str, Any]

    @property
    def object_id(self) -> str | None:
        """The id of the object, whether it is embedded or a bare URL."""
        if isinstance(self.object, str):
            return self.object
        if isinstance(self.object, dict) and isinstance(self.object.get("id"), str):
            return str(self.object["id"])
        return None


def host_of(url: str) -> str:
    """The lower-case authority (host[:port]) of an http(s) URL; MalformedDocument otherwise."""
    if isinstance(url, str) and len(url) <= MAX_ID_LENGTH:
        return _cached_host_of(url)
    return _host_of(url)


# One inbox request asks for the host of its key, actor and ids a dozen times, and the
# same actors come back request after request. Bounded: at most 1024 URLs of 2 KiB.
@lru_cache(maxsize=1024)
def _cached_host_of(url: str) -> str:
    return _host_of(url)


def _host_of(url: str) -> str:
    plain = _PLAIN_URL.match(url) if isinstance(url, str) else None
    if plain is not None and (plain.group(2) is None or int(plain.group(2)) <= 65535):
        return url[plain.start(1) : plain.end()].lower()
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except (ValueError, TypeError, AttributeError):
        valid = False
    if not valid:
        raise MalformedDocument(f"{str(url)[:100]!r} is not an http(s) URL")
    return parts.netloc.lower()


def _id_of(value: Any, field: str) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise MalformedDocument(f"activity {field} must be a URL")
    host_of(value)
    return value


def read_activity(document: Any) -> IncomingActivity:
    """The checked core of an incoming activity; MalformedDocument names what is missing."""
    if not isinstance(document, dict):
        raise MalformedDocument("activity must be a JSON object")
    kind = document.get("type")
    if kind is None:
        raise MalformedDocument("activity has no type")
    if not isinstance(kind, str):
        raise MalformedDocument('activity type must be one string, like "Follow"')
    activity_id = _id_of(document.get("id"), "id")
    actor = _id_of(document.get("actor"), "actor")
    if kind in HANDLED_TYPES and "object" not in document:
        raise MalformedDocument(f"{kind} has no object")
    obj = document.get("object")
    if isinstance(obj, dict) and not isinstance(obj.get("type", ""), str):
        raise MalformedDocument('object type must be one string, like "Note"')
    return IncomingActivity(activity_id, kind, actor, obj, document)


def _activity(kind: str, activity_id: str, actor: str, obj: Any, **extra: Any) -> dict[str, Any]:
    return {
        "@context": ACTIVITYSTREAMS,
        "id": activity_id,
        "type": kind,
        "actor": actor,
        "object": obj,
        **extra,
    }


def follow(activity_id: str, actor: str, target: str) -> dict[str, Any]:
    return _activity("Follow", activity_id, actor, target)


def accept(activity_id: str, actor: str, follow_activity: dict[str, Any]) -> dict[str, Any]:
    return _activity("Accept", activity_id, actor, follow_activity, to=[follow_activity["actor"]])


def reject(activity_id: str, actor: str, follow_activity: dict[str, Any]) -> dict[str, Any]:
    return _activity("Reject", activity_id, actor, follow_activity, to=[follow_activity["actor"]])


def create(
    activity_id: str, actor: str, obj: dict[str, Any], to: list[str], published: str
) -> dict[str, Any]:
    """A Create of `obj` addressed to `to` only (for objects meant for their recipients)."""
    document = _activity("Create", activity_id, actor, obj, to=to, published=published)
    if isinstance(obj.get("proof"), dict):
        document["@context"] = [ACTIVITYSTREAMS, DATA_INTEGRITY_V2]
    return document


def update(
    activity_id: str, actor: str, obj: dict[str, Any], followers: str, published: str
) -> dict[str, Any]:
    """An Update of `obj` addressed to the public and the actor's followers."""
    document = _activity(
        "Update", activity_id, actor, obj, to=[PUBLIC], cc=[followers], published=published
    )
    if isinstance(obj.get("proof"), dict):
        document["@context"] = [ACTIVITYSTREAMS, DATA_INTEGRITY_V2]
    return document


def announce(
    activity_id: str, actor: str, obj: dict[str, Any], followers: str, published: str
) -> dict[str, Any]:
    """A hub relaying `obj` (which keeps its author's proof) to its followers."""
    return _activity(
        "Announce",
        activity_id,
        actor,
        obj,
        to=[PUBLIC],
        cc=[followers],
        published=published,
    ) | {"@context": [ACTIVITYSTREAMS, DATA_INTEGRITY_V2]}


def delete(
    activity_id: str,
    actor: str,
    object_id: str,
    followers: str,
    deleted: str,
    former_type: str | None = None,
) -> dict[str, Any]:
    """A Delete of `object_id`, leaving a Tombstone; the caller may add an integrity proof so
    hubs can relay it and anyone can check it came from `actor`."""
    tombstone: dict[str, Any] = {"id": object_id, "type": "Tombstone", "deleted": deleted}
    if former_type:
        tombstone["formerType"] = former_type
    document = _activity(
        "Delete", activity_id, actor, tombstone, to=[PUBLIC], cc=[followers], published=deleted
    )
    document["@context"] = [ACTIVITYSTREAMS, DATA_INTEGRITY_V2]
    return document
