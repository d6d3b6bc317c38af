"""The key an actor signs its HTTP requests with (kept apart from the HTTP client, so that
code which only names it does not load aiohttp)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class Signer:
    key_id: str
    private_key: rsa.RSAPrivateKey
