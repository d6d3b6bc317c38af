"""The aiohttp application of one node: an app factory, no import-time state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from aiohttp import web

from ..federation.actors import RemoteActors
from ..federation.client import FederationClient
from ..federation.delivery import SAFETY_POLL, DeliveryWorker
from ..federation.errors import FederationError
from ..federation.follows import FollowLimits
from ..federation.inbox import Inbox
from ..federation.local_accounts import LocalAccounts
from ..federation.ratelimit import RateLimiter
from ..federation.retention import PRUNE_INTERVAL, prune_regularly
from ..federation.runner import DbRunner
from ..federation.sync import DirectorySync
from ..protocol.errors import ProtocolError
from . import wake
from .app_state import ACCOUNTS, DB, INBOX, NODE, WORKER, error_response
from .forwarded import SourceAddresses, parse_networks
from .hooks import NodeHooks
from .hosting import signer_for
from .inbox_routes import FRONT_DOOR, FrontDoor
from .inbox_routes import routes as inbox_routes
from .liveness import CHECK_INTERVAL, keep_alive
from .match_routes import add_match_query
from .node import Node
from .routes import routes
from .security_headers import add_security_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FederationSettings:
    """How this node talks to others; tests and benchmarks tune the limits."""

    allow_private_network: bool = False
    inbox_per_minute: float = 600.0  # per verified signing host
    inbox_burst: int = 300
    inbox_per_minute_per_address: float = 1200.0  # per source address, before verifying
    inbox_burst_per_address: int = 600
    trusted_proxies: tuple[str, ...] = ()  # IPs or networks whose X-Forwarded-For counts
    body_timeout: float = 30.0  # seconds to receive an inbox body
    sync_interval: float = 600.0
    poll_interval: float = SAFETY_POLL
    first_retry: float = 60.0
    liveness_interval: float = CHECK_INTERVAL
    # None: as the node's config says ([federation] follow_policy, followers_per_host).
    follow_policy: str | None = None
    follow_limits: FollowLimits | None = None
    prune_interval: float = PRUNE_INTERVAL  # seconds between pruning rounds (retention.py)


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
    except (ProtocolError, FederationError) as exc:
        return error_response(400, str(exc))
    except ConnectionError as exc:
        # The client went away (mid-upload, say): nobody to answer, nothing to fix.
        log.debug("client left during %s %s: %s", request.method, request.path, exc)
        return error_response(400, "connection closed by the client")
    except Exception:
        log.exception("error while answering %s %s", request.method, request.path)
        return error_response(500, "internal error")


def create_app(node: Node, settings: FederationSettings | None = None) -> web.Application:
    """The application serving `node`; the caller keeps ownership of `node`."""
    settings = settings or FederationSettings()
    app = web.Application(middlewares=[error_middleware])
    app[NODE] = node
    app.on_response_prepare.append(add_security_headers)
    app[FRONT_DOOR] = FrontDoor(
        SourceAddresses(parse_networks(settings.trusted_proxies)), settings.body_timeout
    )
    app.cleanup_ctx.append(_federation(settings))
    app.add_routes(routes)
    app.add_routes(inbox_routes)
    add_match_query(app, node.clock)
    return app


def _federation(
    settings: FederationSettings,
) -> Callable[[web.Application], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def context(app: web.Application) -> AsyncIterator[None]:
        node = app[NODE]
        runner = DbRunner(node.store.db)
        app[DB] = runner
        async with FederationClient(
            allow_private_network=settings.allow_private_network, clock=node.clock
        ) as client:
            actors = RemoteActors(runner, client, node.signer, clock=node.clock)
            worker = DeliveryWorker(
                runner,
                client,
                partial(signer_for, node),
                poll_interval=settings.poll_interval,
                first_retry=settings.first_retry,
                clock=node.clock,
            )
            app[WORKER] = worker
            hooks = NodeHooks(node)
            sync = DirectorySync(
                runner,
                client,
                actors,
                node.config.handle,
                node.signer,
                hooks.profile_stored,
                interval=settings.sync_interval,
                clock=node.clock,
            )
            # The hooks run inside the inbox's or the sync's transaction, on the database
            # thread (or on the loop, runner.py): they wake the loops through the event
            # loop, and what a woken loop reads through the runner comes after that
            # transaction.
            loop = asyncio.get_running_loop()

            def via_loop(wake: Callable[[], None]) -> Callable[[], None]:
                def call() -> None:
                    loop.call_soon_threadsafe(wake)

                return call

            hooks.wake_sync = via_loop(sync.wake)
            liveness = asyncio.Event()
            hooks.wake_liveness = via_loop(liveness.set)
            hooks.queued = via_loop(worker.wake)
            accounts = LocalAccounts(node.config.base_url, runner, clock=node.clock)
            await runner(accounts.refresh)
            app[ACCOUNTS] = accounts
            app[INBOX] = Inbox(
                runner,
                actors,
                local_actors=accounts,
                clock=node.clock,
                limiter=RateLimiter(settings.inbox_per_minute, settings.inbox_burst, node.clock),
                address_limiter=RateLimiter(
                    settings.inbox_per_minute_per_address,
                    settings.inbox_burst_per_address,
                    node.clock,
                ),
                queued=worker.wake,
                hooks=hooks,
                follow_policy=settings.follow_policy or node.config.follow_policy,
                follow_limits=settings.follow_limits
                or FollowLimits(followers_per_host=node.config.followers_per_host),
            )
            tasks = [
                asyncio.create_task(worker.run()),
                asyncio.create_task(sync.run()),
                asyncio.create_task(
                    keep_alive(
                        node,
                        runner,
                        worker.wake,
                        settings.liveness_interval,
                        liveness,
                        hooks.outdated,
                    )
                ),
                asyncio.create_task(prune_regularly(runner, node.clock, settings.prune_interval)),
            ]
            try:
                # Commands run beside `serve` wake the worker through the data directory;
                # one look now covers what they queued before the socket was there.
                async with wake.listening(node.config.data_dir, worker.wake):
                    worker.wake()
                    yield
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        runner.close()

    return context
