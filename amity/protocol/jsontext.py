"""JSON from strangers: parsed only when it is nested no deeper than Amity's documents
ever are, so a deep body is a clear refusal rather than a RecursionError."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import MalformedDocument

MAX_DEPTH = 64  # an Announce of a profile with endorsements and proofs is about 6 deep

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS = bytes.maketrans(b"[]{}", b"()()")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_exceeds(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in `body` nest more than `limit` deep (strings ignored).

    Costs a few passes of bytes.replace (C speed) rather than a Python loop over the
    body: each pass removes the innermost pairs of brackets, so balanced brackets are
    gone after as many passes as they nest deep."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # the common case: too few brackets to nest that deep
    nest = _STRING.sub(b"", body).translate(_BRACKETS, _NOT_BRACKETS)
    too_deep = b"(" * (limit + 1)
    for _ in range(limit):
        if too_deep in nest:
            return True
        shorter = nest.replace(b"()", b"")
        if len(shorter) == len(nest):
            return False  # no pair left: empty, or unbalanced (the parser refuses it)
        nest = shorter
    return bool(nest)


def parse_json(body: bytes, limit: int = MAX_DEPTH) -> Any:
    """The JSON value of `body`; MalformedDocument when it is not JSON or nests deeper
    than `limit`."""
    if nesting_exceeds(body, limit):
        raise MalformedDocument(f"body is nested too deeply (more than {limit} levels)")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedDocument("body is not JSON") from exc
    except RecursionError as exc:  # unbalanced, deep brackets: never valid JSON anyway
        raise MalformedDocument("body is nested too deeply") from exc
