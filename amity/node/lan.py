"""Finding Amity nodes on the local network with zeroconf (mDNS/DNS-SD, `_amity._tcp`).

A serving node advertises itself, and browses for others, only on the interfaces it
listens on: bound to 127.0.0.1 it stays on loopback; bound to one address it uses that
address's interface; bound to 0.0.0.0 or :: it uses every interface. What it finds goes
into `lan_peers`, for `amity lan`. An advertisement is only a hint: following a node found
this way fetches its actor like any other, and everything it publishes is verified.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import ifaddr
from aiohttp import web
from sqlite_utils import Database
from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from .app_state import DB, NODE
from .node import Node

log = logging.getLogger(__name__)
SERVICE_TYPE = "_amity._tcp.local."
RESOLVE_MS = 3000


def lan_interfaces(bind: str) -> tuple[list[str] | InterfaceChoice, IPVersion, list[str]]:
    """Where to speak mDNS for a node bound to `bind`: the interfaces, the IP version, and
    the addresses to advertise."""
    try:
        address = ipaddress.ip_address(bind)
    except ValueError:
        resolved = {str(info[4][0]) for info in socket.getaddrinfo(bind, None, socket.AF_INET)}
        return sorted(resolved), IPVersion.V4Only, sorted(resolved)
    if address.is_unspecified:
        version = IPVersion.V4Only if address.version == 4 else IPVersion.All
        return InterfaceChoice.All, version, _all_addresses(address.version == 6)
    version = IPVersion.V4Only if address.version == 4 else IPVersion.V6Only
    return [bind], version, [bind]


def _all_addresses(with_v6: bool) -> list[str]:
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                found.append(ip.ip)
            elif with_v6 and not ip.ip[0].startswith("fe80"):
                found.append(ip.ip[0])
    return found


def _confine(zeroconf: Zeroconf, addresses: list[str]) -> bool:
    """Keep mDNS on the interface of `addresses`.

    zeroconf receives on one wildcard socket, which on Linux also gets packets that
    arrived on other interfaces, and it answers some queries by unicast from that socket:
    a node bound to 127.0.0.1 could then answer a query from the real network. Binding
    every socket to the interface's device (SO_BINDTODEVICE) stops both. False, and
    discovery stays off, when that cannot be done.
    """
    devices = {_device_of(address) for address in addresses}
    engine = getattr(zeroconf, "engine", None)
    listen = getattr(engine, "_listen_socket", None)
    respond = getattr(engine, "_respond_sockets", None)
    if None in devices or len(devices) != 1 or listen is None or not isinstance(respond, list):
        log.warning("local network discovery is off: cannot confine it to %s", addresses)
        return False
    device = str(devices.pop()).encode()
    try:
        for sock in {listen, *respond}:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device)
    except (OSError, AttributeError) as exc:
        # Without it the wildcard socket would hear, and answer, other interfaces.
        log.warning("local network discovery is off: cannot keep mDNS on %s (%s)", device, exc)
        return False
    return True


def _device_of(address: str) -> str | None:
    """The name of the network interface that has `address`."""
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            found = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            if found == address:
                return str(adapter.name)
    return None


def advertisement(node: Node, addresses: list[str], port: int) -> AsyncServiceInfo:
    """The node's service: its instance name is unique per actor and readable in mDNS
    browsers (the handle is cut to fit a 63-byte DNS label)."""
    tag = hashlib.sha256(node.urls.id.encode()).hexdigest()[:8]
    return AsyncServiceInfo(
        SERVICE_TYPE,
        f"{node.config.handle[:40]} {tag}.{SERVICE_TYPE}",
        port=port,
        parsed_addresses=addresses,
        server=f"amity-{tag}.local.",
        properties={"v": "1", "actor": node.urls.id, "kind": node.config.kind},
    )


def record_peer(db: Database, name: str, info: dict[str, Any], now: float) -> None:
    db.execute(
        "INSERT OR REPLACE INTO lan_peers (name, actor, kind, url, seen_at) VALUES (?, ?, ?, ?, ?)",
        [name, info["actor"], info["kind"], info["url"], now],
    )


def forget_peer(db: Database, name: str) -> None:
    db.execute("DELETE FROM lan_peers WHERE name = ?", [name])


def peers(db: Database) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT actor, kind, url, max(seen_at) FROM lan_peers GROUP BY actor ORDER BY kind, actor"
    ).fetchall()
    return [{"actor": r[0], "kind": r[1], "url": r[2], "seen_at": r[3]} for r in rows]


def _peer(info: AsyncServiceInfo) -> dict[str, Any] | None:
    """What an advertisement says, when it is an Amity node's."""
    props = {
        (k or b"").decode(errors="replace"): (v or b"").decode(errors="replace")
        for k, v in info.properties.items()
    }
    addresses = info.parsed_addresses()
    if props.get("v") != "1" or not props.get("actor", "").startswith(("http://", "https://")):
        return None
    if not addresses or info.port is None:
        return None
    host = addresses[0]
    host = f"[{host}]" if ":" in host else host
    return {
        "actor": props["actor"],
        "kind": props.get("kind", ""),
        "url": f"http://{host}:{info.port}",
    }


def lan_discovery(
    bind: str, port: int
) -> Callable[[web.Application], contextlib.AbstractAsyncContextManager[None]]:
    """An aiohttp cleanup context that advertises the node and records the nodes it finds."""

    @contextlib.asynccontextmanager
    async def context(app: web.Application) -> AsyncIterator[None]:
        node, db = app[NODE], app[DB]
        try:
            interfaces, version, addresses = lan_interfaces(bind)
            zeroconf = AsyncZeroconf(interfaces=interfaces, ip_version=version)
        except Exception as exc:  # discovery is a convenience: the node serves without it
            log.warning("local network discovery is off: %s", exc)
            yield
            return
        if isinstance(interfaces, list) and not _confine(zeroconf.zeroconf, addresses):
            await zeroconf.async_close()
            yield
            return
        await db(lambda d: d.execute("DELETE FROM lan_peers"))  # found afresh each run
        own = node.urls.id
        tasks: set[asyncio.Task[None]] = set()

        async def resolve(name: str) -> None:
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if not await info.async_request(zeroconf.zeroconf, RESOLVE_MS):
                return
            peer = _peer(info)
            if peer is None or peer["actor"] == own:
                return
            await db(lambda d: record_peer(d, name, peer, node.clock().timestamp()))
            log.info(
                "found %s %s on the local network at %s", peer["kind"], peer["actor"], peer["url"]
            )

        def changed(
            zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
        ) -> None:
            if state_change is ServiceStateChange.Removed:
                task = asyncio.create_task(db(lambda d: forget_peer(d, name)))
            else:
                task = asyncio.create_task(resolve(name))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        browser = None
        try:
            info = advertisement(node, addresses, port)
            # Another host may already answer to this name: take a free variant of it.
            await zeroconf.async_register_service(info, allow_name_change=True)
            browser = AsyncServiceBrowser(zeroconf.zeroconf, SERVICE_TYPE, handlers=[changed])
        except Exception as exc:
            log.warning("local network discovery is off: %s", exc)
        try:
            yield
        finally:
            if browser is not None:
                await browser.async_cancel()
            for task in list(tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await zeroconf.async_unregister_all_services()
            await zeroconf.async_close()

    return context
