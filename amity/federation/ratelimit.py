"""Rate limiting of inbox requests (token buckets, in memory): per source address before
a signature is checked, per verified signing host after."""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

from .clock import Clock, system_clock

MAX_KEYS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allows `burst` requests at once and `per_minute` sustained, per key.

    At most `max_keys` buckets are held: idle ones (full again) are forgotten first, then
    the least recently used, so a stranger inventing keys cannot grow memory."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        clock: Clock = system_clock,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently used first

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: str) -> float:
        """0 when a request from `key` may go ahead (and counts it), else the seconds until
        it may."""
        now = self.clock().timestamp()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._forget(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            self._buckets.move_to_end(key)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget(self, now: float) -> None:
        """Make room for one more bucket."""
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            idle = oldest.tokens + (now - oldest.updated) * self.rate >= self.burst
            if not idle and len(self._buckets) < self.max_keys:
                return
            self._buckets.popitem(last=False)


@lru_cache(maxsize=1024)  # a busy peer sends from the same few addresses; parsing is slow
def address_key(address: str) -> str:
    """The bucket of a source address: IPv4 addresses alone, IPv6 by /64 (one customer's
    network, which its owner can fill with any number of addresses)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
