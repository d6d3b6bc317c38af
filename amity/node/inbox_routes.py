"""The inbox endpoints: each actor's and the shared one."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..federation.inbox_types import InboxRequest
from .app_state import ACCOUNTS, INBOX, NODE
from .forwarded import SourceAddresses

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
MAX_BODY = 1024 * 1024
# The answers to nearly every delivery, encoded once.
_ANSWERS = {reason: json.dumps({"status": reason}) for reason in ("accepted", "already processed")}


@dataclass(frozen=True)
class FrontDoor:
    """How the inbox reads a request: where it comes from, how long its body may take."""

    addresses: SourceAddresses
    body_timeout: float


FRONT_DOOR = web.AppKey("front_door", FrontDoor)


async def _read_body(request: web.Request, timeout: float) -> bytes:
    """The body, at most MAX_BODY bytes, all of it within `timeout` seconds."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    content = request.content
    if content.is_eof() and content.exception() is None:
        whole = content.read_nowait()  # it all came with the header: nothing to wait for
        if len(whole) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(whole))
        return whole
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.content.iter_chunked(65536):  # chunked: count as we go
                body += chunk
                if len(body) > MAX_BODY:
                    raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(body))
    except HttpProcessingError as exc:  # a broken chunked encoding, say
        reason = (str(exc.message).strip().splitlines() or ["unreadable"])[0]
        raise web.HTTPBadRequest(text=f"the body is malformed: {reason}") from None
    except TimeoutError:
        # aiohttp then reads what is left for a few seconds at most and closes.
        log.debug(
            "inbox body from %s too slow: %d bytes in %g s", request.remote, len(body), timeout
        )
        raise web.HTTPRequestTimeout(
            text=f"the body did not arrive within {timeout:g} seconds"
        ) from None
    return bytes(body)


async def _receive(request: web.Request) -> web.Response:
    door = request.app[FRONT_DOOR]
    body = await _read_body(request, door.body_timeout)
    items = list(request.headers.items())
    headers = {name.lower(): value for name, value in items}
    if len(headers) < len(items):  # a repeated field: its values joined, as signed
        headers = {}
        for name, value in items:
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
    node = request.app[NODE]
    result = await request.app[INBOX].receive(
        InboxRequest(
            url=node.config.base_url + request.raw_path,
            target=request.raw_path,
            headers=headers,
            header_items=items,
            body=body,
            source=door.addresses.source(
                request.remote, request.headers.getall("X-Forwarded-For", [])
            ),
        )
    )
    answer = _ANSWERS.get(result.reason) if result.status < 400 else None
    if answer is not None:
        response = web.json_response(text=answer, status=result.status)
    else:
        key = "status" if result.status < 400 else "error"
        response = web.json_response({key: result.reason}, status=result.status)
    if result.retry_after is not None:
        response.headers["Retry-After"] = str(max(1, round(result.retry_after)))
    return response


@routes.post("/inbox")
async def shared_inbox(request: web.Request) -> web.Response:
    return await _receive(request)


@routes.post("/actors/{handle}/inbox")
async def actor_inbox(request: web.Request) -> web.Response:
    handle = request.match_info["handle"]
    if not (await request.app[ACCOUNTS].fresh()).serves(handle):
        raise web.HTTPNotFound(text=f"no actor {handle!r} on this node")
    return await _receive(request)
