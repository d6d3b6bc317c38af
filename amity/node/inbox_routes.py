"""The inbox endpoints: each actor's and the shared one."""

from __future__ import annotations

import json

from aiohttp import web

from ..federation.inbox import InboxRequest
from .app_state import INBOX, NODE

routes = web.RouteTableDef()
MAX_BODY = 1024 * 1024
# The answers to nearly every delivery, encoded once.
_ANSWERS = {reason: json.dumps({"status": reason}) for reason in ("accepted", "already processed")}


async def _receive(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    body = bytearray()
    async for chunk in request.content.iter_chunked(65536):  # chunked bodies: count as we go
        body += chunk
        if len(body) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(body))
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
            body=bytes(body),
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
    if request.match_info["handle"] != request.app[NODE].config.handle:
        raise web.HTTPNotFound(text=f"no actor {request.match_info['handle']!r} on this node")
    return await _receive(request)
