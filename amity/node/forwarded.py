"""The address a request comes from: the peer's, or behind a trusted reverse proxy the
client the proxy names in X-Forwarded-For."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[object]) -> tuple[Network, ...]:
    """IP addresses or CIDR networks, as given in `[federation] trusted_proxies`."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"[federation] trusted_proxies: {entry!r} is not an IP address or network "
                '(like "127.0.0.1" or "10.0.0.0/8")'
            ) from None
    return tuple(networks)


@dataclass
class SourceAddresses:
    """Finds a request's source address, trusting X-Forwarded-For only from `trusted`."""

    trusted: tuple[Network, ...] = ()
    _hinted: bool = field(default=False, repr=False)

    def is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.trusted)

    def source(self, peer: str | None, forwarded_for: list[str]) -> str:
        """The client's address. From a trusted proxy, the rightmost X-Forwarded-For entry
        that is not itself a trusted proxy (entries further left are the client's own
        word); from anyone else, the peer."""
        peer = peer or ""
        if not forwarded_for:
            return peer
        if not self.is_trusted(peer):
            self._hint(peer)
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        client = peer
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                break  # not written by a proxy we trust: stop at the last trusted hop
            client = hop
            if not self.is_trusted(hop):
                break
        return client

    def _hint(self, peer: str) -> None:
        """Once: a loopback peer that forwards for others is most likely the operator's own
        reverse proxy, and without trusting it every client counts as that one address."""
        if self._hinted:
            return
        try:
            loopback = ipaddress.ip_address(peer).is_loopback
        except ValueError:
            return
        if loopback:
            self._hinted = True
            log.warning(
                "requests arrive through a proxy at %s that sends X-Forwarded-For; add "
                'trusted_proxies = ["%s"] to [federation] in amity.toml so that rate limits '
                "count each client, not the proxy",
                peer,
                peer,
            )
