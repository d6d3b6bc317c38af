"""Canonical JSON (RFC 8785, JCS) and the hashes taken over it."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

from .errors import MalformedDocument


def canonical_bytes(document: Any) -> bytes:
    """Serialize `document` per RFC 8785; refuse what JCS cannot represent."""
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise MalformedDocument(f"cannot canonicalize document: {exc}") from exc


def canonical_hash(document: Any) -> bytes:
    """SHA-256 of the canonical form of `document`."""
    return hashlib.sha256(canonical_bytes(document)).digest()
