"""Turning `name@host` handles into actor URLs (RFC 7033)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from .client import FederationClient
from .errors import FetchFailed

_HANDLE = re.compile(r"^@?([^@\s/]+)@([^@\s/]+)$")
JRD_ACCEPT = "application/jrd+json, application/json"


def parse_handle(text: str) -> tuple[str, str] | None:
    """(name, host) of `name@host` or `@name@host`; None for anything else."""
    match = _HANDLE.match(text.strip())
    return (match.group(1), match.group(2).lower()) if match else None


def self_link(jrd: Any) -> str:
    """The ActivityPub actor URL a JRD links to as `self`."""
    links = jrd.get("links") if isinstance(jrd, dict) else None
    for link in links if isinstance(links, list) else []:
        if (
            isinstance(link, dict)
            and link.get("rel") == "self"
            and isinstance(link.get("href"), str)
            and str(link.get("type", "")).startswith(
                ("application/activity+json", "application/ld+json")
            )
        ):
            return str(link["href"])
    raise FetchFailed("WebFinger answer has no ActivityPub self link")


async def resolve_actor_url(client: FederationClient, target: str) -> str:
    """The actor URL of a handle (WebFinger) or of a URL (unchanged).

    WebFinger is asked over https; on a private network (tests, a school LAN) plain http is
    tried when https cannot be reached.
    """
    if target.startswith(("https://", "http://")):
        return target
    parsed = parse_handle(target)
    if parsed is None:
        raise FetchFailed(f"{target!r} is neither name@host nor an http(s) URL")
    name, host = parsed
    resource = quote(f"acct:{name}@{host}", safe=":@")
    schemes = ("https", "http") if client.allow_private_network else ("https",)
    error: FetchFailed | None = None
    for scheme in schemes:
        url = f"{scheme}://{host}/.well-known/webfinger?resource={resource}"
        try:
            return self_link(await client.get_json(url, accept=JRD_ACCEPT))
        except FetchFailed as exc:
            error = exc
    raise FetchFailed(f"cannot resolve {target}: {error}")
