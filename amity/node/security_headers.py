"""Headers that keep browsers from misreading or framing what a node serves.

Every response says `X-Content-Type-Options: nosniff` (a JSON body a stranger shaped is
never run as HTML or script) and `Referrer-Policy: no-referrer`. The HTML pages get a
strict Content-Security-Policy: nothing loads but the page's own inline style (allowed by
its hash, so an injected <style> or script would not run), no framing, no <base>, forms
only to the node. Other responses may not be framed or load anything either.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from aiohttp import web

from .pages import inline_styles


@lru_cache(maxsize=1)
def page_policy() -> str:
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()}'"
        for style in inline_styles()
    )
    return (
        f"default-src 'none'; style-src {hashes or NONE}; "
        "img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


NONE = "'none'"
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An `on_response_prepare` signal: runs for every response, errors included."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        headers["Content-Security-Policy"] = page_policy()
        headers["X-Frame-Options"] = "DENY"
    else:
        headers.setdefault("Content-Security-Policy", OTHER_POLICY)
