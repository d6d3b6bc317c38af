"""Checking a signed request's signature (an inbox POST, a signed GET): the key it names,
what can be refused before any key is fetched, and the verification itself (draft-cavage-12
or RFC 9421)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..protocol.activities import host_of
from ..protocol.errors import MalformedDocument
from ..protocol.httpsig import (
    check_coverage,
    check_digest,
    check_freshness,
    parse_signature_header,
    verify_request,
)
from ..protocol.message_signatures import message_key_id, verify_message
from .inbox_types import InboxRequest, Rejected


def signing_key_id(headers: Mapping[str, str]) -> str:
    """The keyId the request says it is signed with; 401 when it names none."""
    try:
        if "signature-input" in headers:
            key_id = message_key_id(dict(headers))
        elif "signature" in headers:
            key_id = parse_signature_header(headers["signature"]).key_id
        else:
            raise Rejected(401, "request is not signed")
        host_of(key_id)
    except MalformedDocument as exc:
        raise Rejected(401, f"bad signature header: {exc}") from exc
    return key_id


def _covered(request: InboxRequest) -> tuple[str, ...]:
    """What a draft-cavage signature must cover: a GET has no body, so no Digest."""
    if request.method == "GET":
        return ("(request-target)", "host", "date")
    return ("(request-target)", "host", "date", "digest")


def check_without_key(request: InboxRequest, now: datetime) -> None:
    """draft-cavage checks that need no key: Digest (for a POST), coverage and time."""
    if "signature-input" in request.headers:
        return  # RFC 9421: the library checks digest and coverage with the signature
    params = parse_signature_header(request.headers["signature"])
    if request.method != "GET":
        check_digest(request.headers.get("digest"), request.body)
    check_coverage(params, _covered(request))
    check_freshness(request.headers.get("date"), params.created, now)


def verify_signature(request: InboxRequest, key_id: str, key: Any, now: datetime) -> None:
    """The request's signature verifies with `key` (draft-cavage or RFC 9421)."""
    if "signature-input" in request.headers:
        verify_message(
            method=request.method,
            url=request.url,
            headers=request.header_items,
            body=request.body,
            key_id=key_id,
            public_key=key,
            now=now,
        )
        return
    verify_request(
        parse_signature_header(request.headers["signature"]),
        method=request.method,
        target=request.target,
        headers=request.headers,
        public_key=key,
        now=now,
        require=_covered(request),
    )
