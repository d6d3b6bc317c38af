"""JSON from strangers: parsed only when it is nested no deeper than Amity's documents
ever are, so a deep body is a clear refusal rather than a RecursionError."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from .errors import MalformedDocument

MAX_DEPTH = 64  # an Announce of a profile with endorsements and proofs is about 6 deep

# A string, or an unterminated one to the end: always matching from its first quote keeps
# the search linear (retrying from every escaped quote would be quadratic).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_STEPS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")  # +1 and -1 as signed bytes
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_exceeds(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in `body` nest more than `limit` deep (strings ignored).

    Cheap: the brackets outside strings become +1 and -1, and the deepest point is the
    largest running sum, all in C (about 20 ms for a MiB of brackets)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # the common case: too few brackets to nest that deep
    steps = _STRING.sub(b"", body).translate(_STEPS, _NOT_BRACKETS)
    return max(itertools.accumulate(memoryview(steps).cast("b")), default=0) > limit


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
