"""Multibase (base58btc) and Multikey encodings of Ed25519 keys (FEP-521a, W3C CID 1.0)."""

from __future__ import annotations

import base58

from .errors import MalformedDocument

# Multicodec varint prefixes: ed25519-pub is 0xed, ed25519-priv is 0x1300.
ED25519_PUB_PREFIX = b"\xed\x01"
ED25519_PRIV_PREFIX = b"\x80\x26"
BASE58BTC = "z"


def encode_multibase(data: bytes) -> str:
    """Multibase base58btc form of `data` ('z' + base58)."""
    return BASE58BTC + base58.b58encode(data).decode("ascii")


def decode_multibase(text: str) -> bytes:
    """Bytes of a base58btc multibase string; only the 'z' base is accepted."""
    if not isinstance(text, str) or not text.startswith(BASE58BTC):
        raise MalformedDocument("multibase value must be a base58btc string starting with 'z'")
    try:
        return base58.b58decode(text[1:])
    except ValueError as exc:
        raise MalformedDocument(f"invalid base58btc: {exc}") from exc


def encode_ed25519_public(public_key: bytes) -> str:
    """publicKeyMultibase of a raw 32-byte Ed25519 public key."""
    if len(public_key) != 32:
        raise MalformedDocument("an Ed25519 public key has 32 bytes")
    return encode_multibase(ED25519_PUB_PREFIX + public_key)


def decode_ed25519_public(multibase: str) -> bytes:
    """Raw 32-byte Ed25519 public key from its publicKeyMultibase."""
    data = decode_multibase(multibase)
    if not data.startswith(ED25519_PUB_PREFIX) or len(data) != 34:
        raise MalformedDocument("publicKeyMultibase is not an Ed25519 Multikey")
    return data[2:]


def encode_ed25519_secret(seed: bytes) -> str:
    """secretKeyMultibase of a 32-byte Ed25519 seed."""
    if len(seed) != 32:
        raise MalformedDocument("an Ed25519 seed has 32 bytes")
    return encode_multibase(ED25519_PRIV_PREFIX + seed)


def decode_ed25519_secret(multibase: str) -> bytes:
    """32-byte Ed25519 seed from its secretKeyMultibase."""
    data = decode_multibase(multibase)
    if not data.startswith(ED25519_PRIV_PREFIX) or len(data) != 34:
        raise MalformedDocument("secretKeyMultibase is not an Ed25519 secret key")
    return data[2:]
