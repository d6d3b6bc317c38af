"""The match query (docs/protocol.md "The match query"): a school asks a hub to rank the
hub's directory for it, and keeps only the profiles in the answer whose proof verifies
against their author's own key."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from yarl import URL

from ..protocol.activities import host_of
from ..protocol.endorsement import carried_endorsements, read_endorsement
from ..protocol.errors import ProtocolError
from ..protocol.profile_document import PROFILE_TYPE, profile_from_document
from . import directory, endorsement_store, limits
from .actors import RemoteActors
from .author_keys import verify_by_author
from .client import FederationClient
from .endorsement_verification import check_carried
from .errors import FetchFailed
from .runner import DbRunner
from .signer import Signer

MATCH_PATH = "/match"
ANSWERING_KINDS = ("hub", "authority")  # the node kinds that answer match queries
DEFAULT_CANDIDATES = 10
MAX_CANDIDATES = 50  # per answer: `limit` above it is refused (400)
MAX_ANSWER_BYTES = 768 * 1024  # candidates past it are left out of an answer
MAX_ACTOR_URL = 2048
# A query ranks a whole directory, so its allowance is far below the inbox's.
QUERIES_PER_MINUTE_PER_ADDRESS = 120.0  # before the signature is checked
QUERY_BURST_PER_ADDRESS = 60
QUERIES_PER_MINUTE_PER_HOST = 30.0  # per verified signing host
QUERY_BURST_PER_HOST = 10
MAX_HUBS = 5  # hubs a school asks in one `amity match`
AUTHOR_FETCHES = 4  # authors' actors fetched at once while an answer is checked


def query_url(hub: str, actor: str, limit: int, week: date) -> str:
    """The match query URL of the node whose actor is `hub` (its base URL + MATCH_PATH)."""
    parts = urlsplit(hub)
    # In the form the HTTP client sends it, so that the signed target is the one sent.
    url = URL(f"{parts.scheme}://{parts.netloc}{MATCH_PATH}")
    return str(url.with_query({"actor": actor, "limit": str(limit), "week": week.isoformat()}))


async def ask_hub(
    client: FederationClient, hub: str, signer: Signer, actor: str, limit: int, week: date
) -> list[Any]:
    """The candidates a hub answers for `actor` (unchecked), the signed GET made with
    `signer`; FetchFailed when the hub does not answer with a list of candidates."""
    answer = await client.get_json(
        query_url(hub, actor, limit, week), signer, accept="application/json"
    )
    candidates = answer.get("candidates") if isinstance(answer, dict) else None
    if not isinstance(candidates, list):
        raise FetchFailed(f"{hub} did not answer with a list of candidates")
    return candidates[:MAX_CANDIDATES]


@dataclass(frozen=True)
class Suggested:
    """A profile that verified with its author's key, and the trusted authorities whose
    endorsement it carries that counts now."""

    document: dict[str, Any]
    endorsed_by: frozenset[str]


@dataclass(frozen=True)
class CheckedAnswer:
    """The profiles of an answer that verified with their authors' keys, in the answer's
    order, and why each other candidate was dropped."""

    profiles: list[Suggested]
    dropped: list[str]


async def check_answer(
    actors: RemoteActors,
    db: DbRunner,
    candidates: list[Any],
    me: str,
    trusted: frozenset[str],
    now: datetime,
) -> CheckedAnswer:
    """Keep each candidate's profile only if its proof verifies with a key of its author:
    the one this node's listing of the author confirmed, else the author's actor (cached,
    or fetched now); the hub's word is never the key. Of the endorsements it carries, those
    of `trusted` authorities are checked (endorsement_verification.py)."""
    fetches = asyncio.Semaphore(AUTHOR_FETCHES)
    candidates = candidates[:MAX_CANDIDATES]
    authors = [_author(item) for item in candidates]
    listed = await db(lambda d: directory.listing_keys(d, [a for a in authors if a]))

    async def check(item: Any, author: str | None) -> Suggested | str:
        if author is None:
            return "not a school profile with its author"
        if author == me:
            return "this node's own school"
        document = item["profile"]
        if len(json.dumps(document, ensure_ascii=False).encode()) > limits.MAX_LISTING_BYTES:
            return f"larger than {limits.MAX_LISTING_BYTES} bytes"
        try:
            profile_from_document(document)
            known = listed.get(author)
            proof, _ = await verify_by_author(
                actors, document, author, known, now.timestamp(), fetches=fetches
            )
        except (ProtocolError, FetchFailed) as exc:
            return str(exc)
        endorsers = await _trusted_endorsers(actors, db, document, proof.public_key, trusted, now)
        return Suggested(document, endorsers)

    pairs = zip(candidates, authors, strict=True)
    outcomes = await asyncio.gather(*(check(item, author) for item, author in pairs))
    kept: list[Suggested] = []
    dropped: list[str] = []
    seen: set[str] = set()
    for author, outcome in zip(authors, outcomes, strict=True):
        if isinstance(outcome, str):
            dropped.append(f"{author or 'a candidate'}: {outcome}")
        elif outcome.document["attributedTo"] not in seen:
            seen.add(outcome.document["attributedTo"])
            kept.append(outcome)
    return CheckedAnswer(kept, dropped)


async def _trusted_endorsers(
    actors: RemoteActors,
    db: DbRunner,
    document: dict[str, Any],
    school_key: bytes,
    trusted: frozenset[str],
    now: datetime,
) -> frozenset[str]:
    """The `trusted` authorities whose endorsement `document` carries, checked against
    the authority's key, not expired at `now` and not revoked (as this node knows)."""
    relevant = [doc for doc in carried_endorsements(document) if _authority(doc) in trusted]
    if not relevant:
        return frozenset()
    held = await check_carried(actors, {**document, "endorsements": relevant}, school_key)
    ids = [endorsement.id for endorsement in held]
    revoked = await db(lambda d: endorsement_store.revoked_among(d, ids))
    moment = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return frozenset(
        e.authority
        for e in held
        if e.id not in revoked and (e.expires is None or e.expires > moment)
    )


def _authority(doc: Any) -> str | None:
    try:
        return read_endorsement(doc).authority
    except ProtocolError:
        return None


def _author(item: Any) -> str | None:
    """The author of a candidate's profile, if it is a profile on its author's host."""
    document = item.get("profile") if isinstance(item, dict) else None
    if not isinstance(document, dict) or document.get("type") != PROFILE_TYPE:
        return None
    author, profile_id = document.get("attributedTo"), document.get("id")
    if not isinstance(author, str) or not isinstance(profile_id, str):
        return None
    try:
        return author if host_of(author) == host_of(profile_id) else None
    except ProtocolError:
        return None
