"""The activities of a partnership's life cycle (ActivityStreams 2.0 vocabulary).

Offer (object: the signed Partnership, with `endTime`) from the proposer to each school;
Accept (object: a reference to the Offer, `result`: the Partnership with the accepting
school's proof added) and Reject (object: the Offer reference, `content`: an optional
reason) from a school to the other parties; Leave (object: the Partnership's id) from a
school or the proposer ending it. Expiry needs no activity: both sides read the Offer's
`endTime` on their own clocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .contexts import ACTIVITYSTREAMS, DATA_INTEGRITY_V2
from .errors import MalformedDocument
from .partnership import MAX_MESSAGE
from .text import clean_text

MAX_OFFER_BYTES = 12 * 1024  # an Offer, Accept, Reject or Leave with its partnership
MAX_REASON = 500  # characters of a decline's reason
_CONTEXT: list[Any] = [ACTIVITYSTREAMS, DATA_INTEGRITY_V2]


def offer(
    activity_id: str,
    actor: str,
    partnership: dict[str, Any],
    to: list[str],
    published: str,
    end_time: str,
) -> dict[str, Any]:
    return {
        "@context": _CONTEXT,
        "id": activity_id,
        "type": "Offer",
        "actor": actor,
        "object": partnership,
        "to": to,
        "published": published,
        "endTime": end_time,
    }


def offer_ref(offer_id: str, proposer: str, partnership_id: str) -> dict[str, Any]:
    """How an Accept or Reject names the Offer it answers."""
    return {"id": offer_id, "type": "Offer", "actor": proposer, "object": partnership_id}


def accept(
    activity_id: str,
    actor: str,
    ref: dict[str, Any],
    partnership: dict[str, Any],
    to: list[str],
    published: str,
) -> dict[str, Any]:
    return {
        "@context": _CONTEXT,
        "id": activity_id,
        "type": "Accept",
        "actor": actor,
        "object": ref,
        "result": partnership,
        "to": to,
        "published": published,
    }


def reject(
    activity_id: str,
    actor: str,
    ref: dict[str, Any],
    to: list[str],
    published: str,
    reason: str | None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": ACTIVITYSTREAMS,
        "id": activity_id,
        "type": "Reject",
        "actor": actor,
        "object": ref,
        "to": to,
        "published": published,
    }
    if reason:
        document["content"] = reason
    return document


def leave(
    activity_id: str, actor: str, partnership_id: str, to: list[str], published: str
) -> dict[str, Any]:
    return {
        "@context": ACTIVITYSTREAMS,
        "id": activity_id,
        "type": "Leave",
        "actor": actor,
        "object": partnership_id,
        "to": to,
        "published": published,
    }


def answers_offer(activity: Mapping[str, Any]) -> bool:
    """Whether an Accept or Reject answers a partnership Offer (not a Follow)."""
    obj = activity.get("object")
    return isinstance(obj, dict) and obj.get("type") == "Offer"


def answered_partnership(activity: Mapping[str, Any]) -> str:
    """The partnership id an Accept or Reject of an Offer names."""
    obj = activity.get("object")
    target = obj.get("object") if isinstance(obj, dict) else None
    if isinstance(target, dict):
        target = target.get("id")
    if not isinstance(target, str):
        raise MalformedDocument("the answered Offer names no partnership")
    return target


def clean_reason(text: str | None, limit: int = MAX_REASON) -> str | None:
    """A message or reason as it may travel: clean text within `limit` characters."""
    if text is None:
        return None
    cleaned = clean_text(text, multiline=True).strip()
    if len(cleaned) > limit:
        raise MalformedDocument(f"the text is {len(cleaned)} characters; at most {limit}")
    return cleaned or None


def clean_message(text: str | None) -> str | None:
    return clean_reason(text, MAX_MESSAGE)
