"""The aiohttp application of one node: an app factory, no import-time state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from ..protocol.errors import ProtocolError
from .app_state import DB_EXECUTOR, NODE, error_response
from .node import Node
from .routes import routes

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer every error as short JSON; never leak a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return error_response(exc.status, exc.text or exc.reason)
        raise
    except ProtocolError as exc:
        return error_response(400, str(exc))
    except Exception:
        log.exception("error while answering %s %s", request.method, request.path)
        return error_response(500, "internal error")


def create_app(node: Node) -> web.Application:
    """The application serving `node`; the caller keeps ownership of `node`."""
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_REQUEST_BYTES)
    app[NODE] = node
    app.cleanup_ctx.append(_db_executor)
    app.add_routes(routes)
    return app


async def _db_executor(app: web.Application) -> AsyncIterator[None]:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amity-db")
    app[DB_EXECUTOR] = executor
    yield
    executor.shutdown(wait=True)
