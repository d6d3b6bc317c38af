"""Serving a node until SIGTERM or SIGINT, then shutting down cleanly."""

from __future__ import annotations

import logging
from pathlib import Path

from .app import FederationSettings, create_app
from .config import load_config
from .http_server import serve_app
from .lan import lan_discovery as discovery
from .node import Node
from .serve_lock import serve_lock

log = logging.getLogger("amity")


def serve_data_dir(
    data_dir: Path,
    bind: str | None,
    port: int | None,
    allow_private_network: bool = False,
    lan_discovery: bool = True,
) -> None:
    """Serve the node in `data_dir` (bind and port default to its config), refusing at once
    when another process serves from it: the lock is taken before the database is opened
    or anything is advertised, so a refused start changes nothing."""
    load_config(data_dir)  # "no node here" comes before anything is created in the directory
    with serve_lock(data_dir):
        node = Node.open(data_dir)
        serve_node(
            node,
            bind or node.config.bind,
            port or node.config.port,
            allow_private_network,
            lan_discovery=lan_discovery,
        )


def serve_node(
    node: Node,
    bind: str,
    port: int,
    allow_private_network: bool = False,
    lan_discovery: bool = True,
) -> None:
    """Serve `node` on bind:port, advertising it on the local network (the interfaces of
    `bind` only) unless `lan_discovery` is off; returns after a signal stopped the server."""
    settings = FederationSettings(
        allow_private_network=allow_private_network,
        first_retry=node.config.first_retry_seconds,
        inbox_per_minute=node.config.inbox_per_minute,
        inbox_burst=node.config.inbox_burst,
        inbox_per_minute_per_address=node.config.inbox_per_minute_per_address,
        inbox_burst_per_address=node.config.inbox_burst_per_address,
        trusted_proxies=node.config.trusted_proxies,
        body_timeout=node.config.body_timeout_seconds,
    )
    app = create_app(node, settings)
    if lan_discovery:
        app.cleanup_ctx.append(discovery(bind, port))
    config = node.config

    def announce(_: str) -> None:
        log.info(
            "Amity %s node %r listening on http://%s:%d, public address %s (Ctrl-C stops it)",
            config.kind,
            config.handle,
            bind,
            port,
            config.base_url,
        )

    try:
        # Like web.run_app: SIGINT and SIGTERM become a graceful shutdown.
        serve_app(
            app,
            host=bind,
            port=port,
            print=announce,
            shutdown_timeout=5,
            header_timeout=config.header_timeout_seconds,
            idle_timeout=config.idle_timeout_seconds,
        )
    finally:
        node.close()
        log.info("Amity node '%s' stopped", config.handle)
