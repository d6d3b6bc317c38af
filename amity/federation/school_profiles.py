"""A remote school's current profile, fetched from its actor and checked with its key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..protocol.errors import MalformedDocument
from ..protocol.profile_document import profile_from_document
from ..protocol.proofs import verify_with_actor
from .errors import FetchFailed

GetJson = Callable[[str], Awaitable[dict[str, Any]]]


async def fetch_school_profile(get_json: GetJson, actor: dict[str, Any]) -> dict[str, Any]:
    """The import-format profile `actor` publishes (its `schoolProfile`), its proof checked
    against the actor's own key; FetchFailed when it has none."""
    url = actor.get("schoolProfile")
    if not isinstance(url, str):
        raise FetchFailed(f"{actor.get('id')} publishes no school profile")
    document = await get_json(url)
    if document.get("attributedTo") != actor.get("id"):
        raise MalformedDocument(f"the profile at {url} is not {actor.get('id')}'s")
    verify_with_actor(document, actor)
    return profile_from_document(document)
