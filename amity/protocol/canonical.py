"""Canonical JSON (RFC 8785, JCS) and the hashes taken over it."""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from .contexts import ACTOR_CONTEXT, PROFILE_CONTEXT
from .errors import MalformedDocument

# The standard library's sorted, compact encoder writes exactly JCS's bytes unless the
# document holds a float (JCS formats numbers the ECMAScript way), an integer beyond 2^53
# (JCS refuses it), or a key with a character from U+E000 up (Python sorts by code point,
# JCS by UTF-16 code unit). Such documents go through rfc8785 instead.
_MAX_SAFE_INT = 2**53 - 1
_SORT_SAFE_BELOW = "\ue000"
# Contexts known to be plain need no walk (a list comparison runs in C).
_PLAIN_CONTEXTS = (PROFILE_CONTEXT, ACTOR_CONTEXT)


def _keys_sort_alike(mapping: dict[Any, Any]) -> bool:
    """True when every key is a string that sorts the same by code point and code unit."""
    try:
        keys = "".join(mapping)
    except TypeError:  # a key that is not a string
        return False
    return keys.isascii() or not keys or max(keys) < _SORT_SAFE_BELOW


def _is_plain(root: Any) -> bool:
    """True when json.dumps(sort_keys=True) writes exactly what JCS writes for `root`."""
    if type(root) is not dict and type(root) is not list:
        return _is_plain([root])
    stack: list[Any] = [root]
    while stack:
        container = stack.pop()
        if type(container) is dict:
            if not _keys_sort_alike(container):
                return False
            context = container.get("@context")
            items: list[Any] = [
                v for k, v in container.items() if k != "@context" or context not in _PLAIN_CONTEXTS
            ]
        else:
            items = container
        for item in items:
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            if kind is int:
                if not -_MAX_SAFE_INT <= item <= _MAX_SAFE_INT:
                    return False
            elif kind is dict or kind is list:
                stack.append(item)
            else:
                return False  # floats and anything JSON has no word for
    return True


def canonical_bytes(document: Any) -> bytes:
    """Serialize `document` per RFC 8785; refuse what JCS cannot represent."""
    try:
        if _is_plain(document):
            return json.dumps(
                document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise MalformedDocument(f"cannot canonicalize document: {exc}") from exc
