"""Checking a relayed object's integrity proof against its author's key, wherever the
object came from (an inbox delivery, an Announce, a hub's directory page)."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from ..protocol.errors import BadSignature, UnknownKey
from ..protocol.multikey import decode_ed25519_public
from ..protocol.proofs import ProofInfo, read_proof, verify_document, verify_with_actor
from .actors import RemoteActors
from .directory import ListingKey


async def verify_by_author(
    actors: RemoteActors,
    obj: dict[str, Any],
    author: str,
    known: ListingKey | None,
    now: float,
    *,
    hub_key: str | None = None,
    fetches: asyncio.Semaphore | None = None,
) -> tuple[ProofInfo, float | None]:
    """The verified proof of `obj`, and when its key was seen in `author`'s own actor (None:
    only a hub says the key is the author's).

    Keys are tried cheapest first: the one the author's listing holds (`known`), while it
    was seen in the author's actor within KEY_TRUST; the author's actor as cached; the key a
    hub hands on with a listing (`hub_key`), only for a school no key was ever confirmed
    for; last, the author's actor fetched now (under `fetches`, which bounds how many
    fetches run at once). A key that fails moves on to the next, so an object signed with a
    newer key than one held still verifies."""
    method = read_proof(obj)["verificationMethod"]
    if known is not None and known.trusted(method, now):
        try:
            return verify_document(obj, known.key), known.confirmed_at
        except BadSignature:
            pass
    cached = await actors.cached(author)
    if cached is not None:
        try:
            return verify_with_actor(obj, cached), now
        except (BadSignature, UnknownKey):
            pass
    vouched = known is not None and known.confirmed_at is not None
    if hub_key is not None and method.split("#", 1)[0] == author and not vouched:
        try:
            return verify_document(obj, decode_ed25519_public(hub_key)), None
        except BadSignature:
            pass  # the hub's word is wrong: ask the author
    limit: AbstractAsyncContextManager[Any] = fetches if fetches is not None else nullcontext()
    async with limit:
        actor = await actors.get(author, refresh=cached is not None)
    return verify_with_actor(obj, actor), now
