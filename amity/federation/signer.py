"""The keys an actor signs its HTTP requests with (kept apart from the HTTP client, so that
code which only names it does not load aiohttp)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


@dataclass(frozen=True)
class Signer:
    """RSA for draft-cavage (everyone); Ed25519, when given, for RFC 9421 to Amity nodes."""

    key_id: str
    private_key: rsa.RSAPrivateKey
    ed25519_key_id: str | None = None
    ed25519_key: ed25519.Ed25519PrivateKey | None = None
