"""The SSRF guard: without --allow-private-network, connect only to public addresses.

The check runs on the resolved addresses, so a public name that resolves to 127.0.0.1 is
refused as surely as the literal 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from .errors import AddressRefused


def is_public_address(address: str) -> bool:
    """True for globally routable unicast addresses (IPv4-mapped IPv6 judged as IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def ip_literal(host: str) -> str | None:
    """`host` itself when it is an IP address literal (brackets removed), else None."""
    candidate = host.strip("[]")
    try:
        ipaddress.ip_address(candidate.split("%", 1)[0])
    except ValueError:
        return None
    return candidate


def check_host(host: str, allow_private: bool) -> None:
    """AddressRefused when `host` is an IP literal this node may not contact."""
    literal = ip_literal(host)
    if literal is not None and not allow_private and not is_public_address(literal):
        raise AddressRefused(f"{host} is a private, loopback or local address")


class GuardedResolver(AbstractResolver):
    """Resolves names, then drops every address the guard refuses."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._allow_private:
            return results
        allowed = [r for r in results if is_public_address(r["host"])]
        if not allowed:
            raise AddressRefused(f"{host} resolves only to private, loopback or local addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def resolver_kwargs(allow_private: bool) -> dict[str, Any]:
    """Connector arguments that put the guard in place."""
    return {"resolver": GuardedResolver(allow_private)}
