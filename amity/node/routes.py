"""HTTP routes: discovery (WebFinger, NodeInfo), actors, profiles, collections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from .. import __version__
from ..federation import delivery_queue, directory, endorsement_store, relations
from ..protocol.contexts import ACTIVITYSTREAMS, DIRECTORY_CONTEXT
from ..protocol.discovery import (
    NODEINFO_CONTENT_TYPE,
    nodeinfo_document,
    nodeinfo_links,
    parse_acct,
    webfinger_document,
)
from .app_state import NODE, json_response, run_db
from .errors import NodeError
from .hosting import removed_view, served_school
from .moving_out import moved_view
from .negotiation import choose_representation
from .node import Node
from .pages import render_actor_page
from .school_accounts import ACTIVE, MOVED, REMOVED, UNKNOWN

T = TypeVar("T")
routes = web.RouteTableDef()
JRD = "application/jrd+json"


async def _actor_node(request: web.Request, actor: bool = False) -> Node:
    """The node acting for the account the path names: 404 when there is none, 410 Gone
    when it was removed (or moved) from this node. With `actor` (the actor document), a
    moved account's view (its actor keeps answering, with movedTo), and a removed
    school's while its withdrawal is on its way (with its keys, marked `removed`). The
    accounts table is read on every request, so a school removed by another process is
    gone at once."""
    node = request.app[NODE]
    handle = request.match_info["handle"]
    if handle == node.config.handle:
        return node
    state, view = await run_db(request, lambda n: served_school(n, handle))
    if view is None and actor and state == MOVED:
        view = await run_db(request, lambda n: moved_view(n, handle))
    if view is None and actor and state == REMOVED:
        view = await run_db(request, lambda n: removed_view(n, handle))
    if view is not None:
        return view
    if state in (REMOVED, MOVED):
        raise web.HTTPGone(text=f"actor {handle!r} is no longer on this node")
    raise web.HTTPNotFound(text=f"no actor {handle!r} on this node")


async def _as_actor(request: web.Request, fn: Callable[[Node], T]) -> T:
    """`fn` on the database thread for an actor found a moment ago: if its keys vanished
    meanwhile (another process removing the school), it is no actor, never a 500."""
    try:
        return await run_db(request, fn)
    except NodeError:  # what went missing is the operator's business, not the caller's
        raise web.HTTPNotFound(
            text=f"no actor {request.match_info['handle']!r} on this node"
        ) from None


def _negotiated(request: web.Request, document: dict[str, Any], html: str) -> web.Response:
    representation = choose_representation(request.headers.get("Accept"))
    if representation == "html":
        response = web.Response(text=html, content_type="text/html", charset="utf-8")
    else:
        response = json_response(document, representation)
    response.headers["Vary"] = "Accept"
    return response


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.app[NODE].urls.id)


@routes.get("/.well-known/webfinger")
async def webfinger(request: web.Request) -> web.Response:
    node = request.app[NODE]
    resource = request.query.get("resource")
    if not resource:
        raise web.HTTPBadRequest(text="the resource parameter is required (RFC 7033 4.2)")
    prefix = f"{node.config.base_url}/actors/"
    handle = None
    if resource.startswith("acct:"):
        name, host = parse_acct(resource)
        handle = name if host == node.config.host else None
    elif resource.startswith(prefix):
        handle = resource[len(prefix) :]
    state = UNKNOWN
    if handle is not None:
        named = handle
        state = await run_db(request, lambda n: served_school(n, named)[0])
    if state == REMOVED:
        raise web.HTTPGone(text=f"{resource} is no longer on this node")
    if state not in (ACTIVE, MOVED) or handle is None:  # a moved actor names where it went
        raise web.HTTPNotFound(text=f"no actor {resource} on this node")
    actor_id = prefix + handle
    document = webfinger_document(handle, node.config.host, actor_id)
    response = json_response(document, JRD)
    response.headers["Access-Control-Allow-Origin"] = "*"  # RFC 7033 section 5
    return response


@routes.get("/.well-known/nodeinfo")
async def nodeinfo_discovery(request: web.Request) -> web.Response:
    return json_response(nodeinfo_links(request.app[NODE].config.base_url), "application/json")


@routes.get("/nodeinfo/2.1")
async def nodeinfo(request: web.Request) -> web.Response:
    def build(node: Node) -> dict[str, Any]:
        return nodeinfo_document(
            version=__version__,
            kind=node.config.kind,
            actors=node.store.count_actors(),
            profiles=node.store.count_profiles(),
            metadata={
                "nodeName": node.config.handle,
                "hubs": [
                    hub["id"] for hub in relations.followed_hubs(node.store.db, node.config.handle)
                ],
            },
        )

    return json_response(await run_db(request, build), NODEINFO_CONTENT_TYPE)


@routes.get("/actors/{handle}")
async def actor(request: web.Request) -> web.Response:
    view = await _actor_node(request, actor=True)

    def build(_node: Node) -> tuple[dict[str, Any], str]:
        node = view
        document = node.actor_document()
        profile = node.profile()
        html = render_actor_page(
            document,
            profile.data if profile else None,
            f"@{node.handle}@{node.config.host}",
            profile.updated if profile else None,
        )
        return document, html

    document, html = await _as_actor(request, build)
    return _negotiated(request, document, html)


@routes.get("/actors/{handle}/profile")
async def profile(request: web.Request) -> web.Response:
    view = await _actor_node(request)
    stored = await _as_actor(request, lambda _node: view.profile())
    if stored is None:
        raise web.HTTPNotFound(text="this school has not published a profile")
    if choose_representation(request.headers.get("Accept")) == "html":
        raise web.HTTPFound(view.urls.id)
    response = json_response(stored.document, choose_representation(request.headers.get("Accept")))
    response.headers["Vary"] = "Accept"
    return response


PAGE_SIZE = 50


def _collection(
    collection_id: str, total: int, page: int | None, items: list[Any]
) -> dict[str, Any]:
    """An OrderedCollection whose items come in pages of PAGE_SIZE (`?page=N`, from 1)."""
    if page is None:
        return {
            "@context": ACTIVITYSTREAMS,
            "id": collection_id,
            "type": "OrderedCollection",
            "totalItems": total,
            "first": f"{collection_id}?page=1",
        }
    document: dict[str, Any] = {
        "@context": ACTIVITYSTREAMS,
        "id": f"{collection_id}?page={page}",
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "totalItems": total,
        "orderedItems": items,
    }
    if page * PAGE_SIZE < total:
        document["next"] = f"{collection_id}?page={page + 1}"
    if page > 1:
        document["prev"] = f"{collection_id}?page={page - 1}"
    return document


MAX_CURSOR = 2**63 - 1  # SQLite's largest integer
MAX_PAGE = MAX_CURSOR // PAGE_SIZE


def _whole_number(request: web.Request, name: str, smallest: int, largest: int) -> int | None:
    """Query parameter `name` as a whole number from `smallest` to `largest`, in ASCII
    digits (str.isdigit also takes '²' and other scripts' digits); None if absent."""
    raw = request.query.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and smallest <= int(raw) <= largest):
        raise web.HTTPBadRequest(
            text=f"{name} must be a whole number from {smallest} to {largest}, in digits 0-9"
        )
    return int(raw)


def _page(request: web.Request) -> int | None:
    return _whole_number(request, "page", 1, MAX_PAGE)


@routes.get("/actors/{handle}/{collection:outbox|followers|following}")
async def collection(request: web.Request) -> web.Response:
    node = await _actor_node(request)
    name = request.match_info["collection"]
    page = _page(request)
    offset = ((page or 1) - 1) * PAGE_SIZE

    def read(_node: Node) -> tuple[int, list[Any]]:
        db, handle = node.store.db, node.handle
        if name == "outbox":
            return delivery_queue.public_outbox(db, handle, offset, PAGE_SIZE)
        return relations.list_actors(db, name, handle, offset, PAGE_SIZE)

    total, items = await _as_actor(request, read)
    document = _collection(f"{node.urls.id}/{name}", total, page, items)
    return json_response(document, "application/activity+json")


DIRECTORY_PAGE = 100


def _directory_entry(change: dict[str, Any]) -> dict[str, Any]:
    if change["document"] is not None:
        return dict(change["document"])
    return {
        "type": "Tombstone",
        "id": change["profile_id"],
        "formerType": "SchoolProfile",
        "attributedTo": change["actor"],
        "deleted": change["deleted_at"],
    }


@routes.get("/directory")
async def directory_collection(request: web.Request) -> web.Response:
    """Every listing this node holds, as signed by each school, paged by change cursor."""

    keys: dict[str, str] = {}

    def changes(node: Node, since: int) -> list[tuple[int, dict[str, Any]]]:
        found = directory.changes_since(node.store.db, since, DIRECTORY_PAGE)
        for change in found:
            if change["document"] is not None and change["key_id"] and change["author_key"]:
                keys[change["key_id"]] = change["author_key"]
        return [(change["seq"], _directory_entry(change)) for change in found]

    return await _cursor_collection(
        request,
        request.app[NODE].urls.directory,
        lambda n: directory.count_listings(n.store.db),
        changes,
        {"authorKeys": keys},
    )


@routes.get("/revocations")
async def revocations_collection(request: web.Request) -> web.Response:
    """Every revocation of an endorsement this node has seen, as the authority signed it."""
    return await _cursor_collection(
        request,
        request.app[NODE].urls.revocations,
        lambda n: endorsement_store.count_revocations(n.store.db),
        lambda n, since: endorsement_store.revocations_since(n.store.db, since, DIRECTORY_PAGE),
    )


async def _cursor_collection(
    request: web.Request,
    base: str,
    count: Callable[[Node], int],
    changes: Callable[[Node, int], list[tuple[int, dict[str, Any]]]],
    extra: dict[str, Any] | None = None,
) -> web.Response:
    """A collection read by change cursor: `?since=N` gives the entries after N; `extra`
    (filled in by `changes`) goes into each page."""
    since = _whole_number(request, "since", 0, MAX_CURSOR)  # a page's cursor
    if since is None:
        document: dict[str, Any] = {
            "@context": DIRECTORY_CONTEXT,
            "id": base,
            "type": "OrderedCollection",
            "totalItems": await run_db(request, count),
            "first": f"{base}?since=0",
        }
        return json_response(document, "application/activity+json")
    found = await run_db(request, lambda n: changes(n, since))
    cursor = found[-1][0] if found else since
    page: dict[str, Any] = {
        "@context": DIRECTORY_CONTEXT,
        "id": f"{base}?since={since}",
        "type": "OrderedCollectionPage",
        "partOf": base,
        "orderedItems": [entry for _, entry in found],
        "cursor": cursor,
        **(extra or {}),
    }
    if len(found) == DIRECTORY_PAGE:
        page["next"] = f"{base}?since={cursor}"
    return json_response(page, "application/activity+json", compact=True)
