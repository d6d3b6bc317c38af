"""`GET /match`: a hub or authority ranks its directory for the school that signed the
query (docs/protocol.md "The match query")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiohttp import web

from ..federation.actors import RemoteActors
from ..federation.author_keys import verify_by_author
from ..federation.clock import Clock
from ..federation.errors import FetchFailed
from ..federation.inbox_types import InboxRequest, Rejected
from ..federation.match_query import (
    ANSWERING_KINDS,
    DEFAULT_CANDIDATES,
    MATCH_PATH,
    MAX_ACTOR_URL,
    MAX_CANDIDATES,
    QUERIES_PER_MINUTE_PER_ADDRESS,
    QUERIES_PER_MINUTE_PER_HOST,
    QUERY_BURST_PER_ADDRESS,
    QUERY_BURST_PER_HOST,
)
from ..federation.ratelimit import RateLimiter
from ..protocol.activities import host_of
from ..protocol.errors import ProtocolError
from ..protocol.live_window import coming_monday, in_reach
from ..protocol.matching import School
from .app_state import INBOX, NODE, error_response, json_response, run_db
from .inbox_routes import FRONT_DOOR
from .match_answer import answer, listed_querier, school_from_document

routes = web.RouteTableDef()
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class QueryLimits:
    """The match query's own rate limits: ranking a directory costs far more than an
    inbox delivery."""

    per_address: RateLimiter  # before the signature is checked
    per_host: RateLimiter  # per verified signing host


QUERY_LIMITS = web.AppKey("match_query_limits", QueryLimits)


def add_match_query(app: web.Application, clock: Clock) -> None:
    """Serve `GET /match` on `app`."""
    app[QUERY_LIMITS] = QueryLimits(
        RateLimiter(QUERIES_PER_MINUTE_PER_ADDRESS, QUERY_BURST_PER_ADDRESS, clock),
        RateLimiter(QUERIES_PER_MINUTE_PER_HOST, QUERY_BURST_PER_HOST, clock),
    )
    app.add_routes(routes)


@dataclass(frozen=True)
class MatchQuery:
    actor: str
    limit: int
    week: date | None


def parse_query(query: Any) -> MatchQuery:
    """The query's parameters; HTTPBadRequest naming the one that is wrong."""
    actor = query.get("actor")
    if not isinstance(actor, str) or not actor:
        raise web.HTTPBadRequest(text="actor is required: the querying school's actor URL")
    try:
        host_of(actor)
        valid = len(actor) <= MAX_ACTOR_URL
    except ProtocolError:
        valid = False
    if not valid:
        raise web.HTTPBadRequest(
            text=f"actor must be an http(s) actor URL of at most {MAX_ACTOR_URL} characters"
        )
    raw = query.get("limit", str(DEFAULT_CANDIDATES))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_CANDIDATES):
        raise web.HTTPBadRequest(
            text=f"limit must be a whole number from 1 to {MAX_CANDIDATES}, in digits 0-9"
        )
    week = None
    if "week" in query:
        raw_week = query["week"]
        try:
            # fromisoformat also reads week dates (2026-W51-1): only YYYY-MM-DD is meant.
            week = date.fromisoformat(raw_week) if _DAY.fullmatch(raw_week) else None
        except ValueError:
            week = None
        if week is None or week.weekday() != 0:
            raise web.HTTPBadRequest(text="week must be a Monday, as YYYY-MM-DD")
    return MatchQuery(actor, int(raw), week)


def _signed_get(request: web.Request) -> InboxRequest:
    """The request as the signature checks read it (repeated fields joined, as signed)."""
    items = list(request.headers.items())
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    door = request.app[FRONT_DOOR]
    return InboxRequest(
        url=request.app[NODE].config.base_url + request.raw_path,
        target=request.raw_path,
        headers=headers,
        header_items=items,
        body=b"",
        source=door.addresses.source(request.remote, request.headers.getall("X-Forwarded-For", [])),
        method="GET",
    )


async def _querier(request: web.Request, actor: str, actors: RemoteActors) -> School:
    """The querying school as its signed profile says: the listing this node holds, or
    its profile fetched from its node and checked against its actor's key."""
    document = await run_db(request, lambda node: listed_querier(node, actor))
    try:
        if document is None:
            actor_document = await actors.get(actor)
            url = actor_document.get("schoolProfile")
            if not isinstance(url, str) or host_of(url) != host_of(actor):
                raise web.HTTPBadRequest(text=f"{actor} publishes no school profile")
            document = await actors.client.get_json(url, actors.signer())
            if not isinstance(document, dict) or document.get("attributedTo") != actor:
                raise web.HTTPBadRequest(text=f"{url} is not {actor}'s school profile")
            clock = request.app[NODE].clock
            await verify_by_author(actors, document, actor, None, clock().timestamp())
        return school_from_document(document)
    except (ProtocolError, FetchFailed) as exc:
        raise web.HTTPBadRequest(text=f"cannot read the school's signed profile: {exc}") from exc


@routes.get(MATCH_PATH)
async def match_query(request: web.Request) -> web.Response:
    node = request.app[NODE]
    if node.config.kind not in ANSWERING_KINDS:
        raise web.HTTPNotFound(
            text=f"this node is a {node.config.kind}; hubs and authorities answer match queries"
        )
    query = parse_query(request.query)
    coming = coming_monday(node.clock())
    if query.week is not None and not in_reach(query.week, coming):
        raise web.HTTPBadRequest(text=f"week must be within ten years of {coming}")
    inbox, limits = request.app[INBOX], request.app[QUERY_LIMITS]
    try:
        signed = _signed_get(request)
        sender = await inbox.authenticate_get(signed, limits.per_host, limits.per_address)
    except Rejected as exc:
        response = error_response(exc.status, exc.reason)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response
    if sender.owner != query.actor:
        raise web.HTTPForbidden(
            text=f"the query is signed by {sender.owner}, not by the school it names"
        )
    querier = await _querier(request, query.actor, inbox.actors)
    week = query.week or coming
    found = await run_db(request, lambda n: answer(n, querier, week, query.limit))
    return json_response(found, "application/json", compact=True)
