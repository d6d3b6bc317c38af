"""What request handlers share: the app's keys and small response helpers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from ..federation.delivery import DeliveryWorker
from ..federation.inbox import Inbox
from ..federation.local_accounts import LocalAccounts
from ..federation.runner import DbRunner
from .node import Node

T = TypeVar("T")

NODE = web.AppKey("node", Node)
DB = web.AppKey("db", DbRunner)
INBOX = web.AppKey("inbox", Inbox)
WORKER = web.AppKey("worker", DeliveryWorker)
ACCOUNTS = web.AppKey("accounts", LocalAccounts)


async def run_db(request: web.Request, fn: Callable[[Node], T]) -> T:
    """Run `fn(node)` on the node's one database thread, off the event loop."""
    node = request.app[NODE]
    return await request.app[DB](lambda _db: fn(node))


def json_response(
    document: Any, content_type: str, status: int = 200, compact: bool = False
) -> web.Response:
    """`document` as UTF-8 JSON with exactly the given Content-Type; indented for people
    unless `compact` (large pages: indenting makes the encoder several times slower)."""
    if compact:
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    else:
        body = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
    response = web.Response(body=body, status=status)
    response.headers["Content-Type"] = content_type
    return response


def error_response(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)
