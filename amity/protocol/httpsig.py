"""HTTP Signatures as the fediverse uses them (draft-cavage-http-signatures-12).

Outgoing requests are signed `rsa-sha256` over `(request-target) host date digest` (what
Mastodon expects). Incoming ones may use `rsa-sha256` or `hs2019` with an RSA or Ed25519
key. Everything here is a function of its inputs: the caller supplies keys and the clock.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from .errors import BadSignature, KeyMismatch, MalformedDocument, UnknownKey
from .multikey import decode_ed25519_public
from .proofs import assertion_methods

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
SIGNED_HEADERS = ("(request-target)", "host", "date", "digest")
MAX_CLOCK_SKEW = timedelta(hours=1)
_PARAM = re.compile(r'\s*([a-zA-Z]+)\s*=\s*(?:"([^"]*)"|([0-9.]+))\s*(?:,|$)')
# An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), what every sender writes: read directly.
_FIXDATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|"
    r"Nov|Dec) ([12][0-9]{3}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT\Z"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


class SignatureParams(NamedTuple):
    """The parameters of a draft-cavage Signature header."""

    # A NamedTuple: one is built for every inbox request, at a fifth of the cost of a
    # frozen dataclass.
    key_id: str
    algorithm: str
    headers: tuple[str, ...]
    signature: bytes
    created: int | None = None
    expires: int | None = None


def http_date(moment: datetime) -> str:
    """An IMF-fixdate, as the Date header wants it."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def digest_header(body: bytes) -> str:
    """The `Digest` header value for `body` (RFC 3230, SHA-256)."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def check_digest(header: str | None, body: bytes) -> None:
    """BadSignature unless `header` carries the SHA-256 digest of `body`."""
    if not header:
        raise BadSignature("a request with a body needs a Digest header")
    for part in header.split(","):
        algorithm, _, value = part.strip().partition("=")
        if algorithm.lower() == "sha-256":
            if value.strip() != digest_header(body).split("=", 1)[1]:
                raise BadSignature("Digest does not match the body")
            return
    raise BadSignature("Digest has no SHA-256 value")


@functools.lru_cache(maxsize=256)  # the inbox reads one request's header more than once
def parse_signature_header(value: str) -> SignatureParams:
    """Parse `keyId="..",algorithm="..",headers="..",signature=".."`."""
    params: dict[str, str] = {}
    position = 0
    while position < len(value):
        match = _PARAM.match(value, position)
        if not match or match.end() == position:
            raise MalformedDocument('Signature header is not a list of key="value" pairs')
        params[match.group(1)] = match.group(2) if match.group(2) is not None else match.group(3)
        position = match.end()
    try:
        key_id, signature = params["keyId"], base64.b64decode(params["signature"], validate=True)
    except KeyError as exc:
        raise MalformedDocument(f"Signature header lacks {exc.args[0]}") from exc
    except ValueError as exc:
        raise MalformedDocument("Signature is not base64") from exc
    try:
        created = int(params["created"]) if "created" in params else None
        expires = int(float(params["expires"])) if "expires" in params else None
    except ValueError as exc:
        raise MalformedDocument("Signature created/expires are not numbers") from exc
    return SignatureParams(
        key_id=key_id,
        algorithm=params.get("algorithm", "hs2019").lower(),
        headers=tuple(params.get("headers", "date").lower().split()),
        signature=signature,
        created=created,
        expires=expires,
    )


def signing_string(
    method: str,
    target: str,
    headers: Mapping[str, str],
    names: tuple[str, ...],
    created: int | None = None,
    expires: int | None = None,
) -> bytes:
    """The string draft-cavage section 2.3 signs; `headers` are looked up by lower-case name."""
    lines = []
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        elif name == "(created)":
            if created is None:
                raise MalformedDocument("(created) is signed but has no value")
            lines.append(f"(created): {created}")
        elif name == "(expires)":
            if expires is None:
                raise MalformedDocument("(expires) is signed but has no value")
            lines.append(f"(expires): {expires}")
        else:
            if name not in headers:
                raise MalformedDocument(f"signed header {name!r} is missing")
            lines.append(f"{name}: {headers[name]}")
    return "\n".join(lines).encode("utf-8")


def sign_request(
    *,
    method: str,
    url: str,
    body: bytes | None,
    key_id: str,
    private_key: rsa.RSAPrivateKey,
    now: datetime,
) -> dict[str, str]:
    """Headers (Host, Date, Digest for a body, Signature) that sign a request, Mastodon-style."""
    unsigned = prepare_request(method=method, url=url, body=body, now=now)
    return unsigned.signed(key_id, rsa_sign(private_key, unsigned.message))


@dataclass(frozen=True)
class UnsignedRequest:
    """A request's signed headers before the signature, and the string to sign: the RSA
    operation can then run elsewhere (a helper process) and `signed` finishes the headers."""

    headers: dict[str, str]
    names: tuple[str, ...]
    message: bytes

    def signed(self, key_id: str, signature: bytes) -> dict[str, str]:
        headers = dict(self.headers)
        headers["signature"] = (
            f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(self.names)}",'
            f'signature="{base64.b64encode(signature).decode("ascii")}"'
        )
        return {name.title(): value for name, value in headers.items()}


def prepare_request(*, method: str, url: str, body: bytes | None, now: datetime) -> UnsignedRequest:
    """What `sign_request` signs: Host, Date and (for a body) Digest, and the signing string."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    headers = {"host": parts.netloc, "date": http_date(now)}
    names: tuple[str, ...] = ("(request-target)", "host", "date")
    if body is not None:
        headers["digest"] = digest_header(body)
        names = SIGNED_HEADERS
    return UnsignedRequest(headers, names, signing_string(method, target, headers, names))


def rsa_sign(private_key: rsa.RSAPrivateKey, message: bytes) -> bytes:
    """The rsa-sha256 signature (PKCS#1 v1.5) of `message`."""
    return private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def verify_request(
    params: SignatureParams,
    *,
    method: str,
    target: str,
    headers: Mapping[str, str],
    public_key: PublicKey,
    now: datetime,
    require: tuple[str, ...] = ("(request-target)", "host", "date"),
) -> None:
    """BadSignature unless `params` verifies over the request with `public_key`.

    `headers` maps lower-case names to values. `require` lists what must be signed.
    """
    check_coverage(params, require)
    check_freshness(headers.get("date"), params.created, now, params.expires)
    message = signing_string(
        method, target, headers, params.headers, params.created, params.expires
    )
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if params.algorithm not in ("rsa-sha256", "hs2019"):
                raise KeyMismatch(f"algorithm {params.algorithm} does not fit an RSA key")
            public_key.verify(params.signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            if params.algorithm not in ("hs2019", "ed25519"):
                raise KeyMismatch(f"algorithm {params.algorithm} does not fit an Ed25519 key")
            public_key.verify(params.signature, message)
    except InvalidSignature as exc:
        raise KeyMismatch("HTTP signature does not verify") from exc


def check_coverage(params: SignatureParams, require: tuple[str, ...]) -> None:
    """BadSignature unless the signature covers every name in `require` ((created) may
    stand in for date)."""
    missing = [name for name in require if name not in params.headers]
    if "date" in missing and "(created)" in params.headers:
        missing.remove("date")
    if missing:
        raise BadSignature(f"signature does not cover {', '.join(missing)}")


def check_freshness(
    date: str | None, created: int | None, now: datetime, expires: int | None = None
) -> None:
    """BadSignature when the request's time is more than an hour from `now`, or expired."""
    if expires is not None and expires < now.timestamp():
        raise BadSignature("signature has expired")
    if created is not None:
        moment = datetime.fromtimestamp(created, UTC)
    elif date:
        moment = _http_date(date)
    else:
        raise BadSignature("request has no Date")
    if abs(now - moment) > MAX_CLOCK_SKEW:
        raise BadSignature("Date is more than one hour from this node's clock")


@functools.lru_cache(maxsize=64)  # one sender's requests share the Date of their second
def _http_date(date: str) -> datetime:
    fixdate = _FIXDATE.match(date)
    if fixdate is not None:
        day, month, year, hour, minute, second = fixdate.groups()
        try:
            return datetime(
                int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=UTC
            )
        except ValueError:
            pass  # not a real date: the general parser has the last word
    try:
        moment = parsedate_to_datetime(date)
    except (TypeError, ValueError) as exc:
        raise BadSignature("Date header is not an HTTP date") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def key_from_document(document: dict[str, Any], key_id: str) -> tuple[str, PublicKey]:
    """(owner, key) for `key_id` in an actor document or a stand-alone key document.

    RSA keys come from `publicKey` (a dict or a list), Ed25519 keys from `assertionMethod`
    Multikeys; a key document (`owner` + `publicKeyPem`) names its owner itself.
    """
    keys = document.get("publicKey")
    candidates: list[Any] = [*(keys if isinstance(keys, list) else [keys])]
    candidates += assertion_methods(document)
    if "publicKeyPem" in document or "publicKeyMultibase" in document:
        candidates.append(document)
    for entry in candidates:
        if not isinstance(entry, dict) or entry.get("id") != key_id:
            continue
        owner = entry.get("owner") or entry.get("controller") or document.get("id")
        if not isinstance(owner, str):
            raise UnknownKey(f"key {key_id} names no owner")
        if isinstance(entry.get("publicKeyPem"), str):
            return owner, load_public_pem(entry["publicKeyPem"])
        if isinstance(entry.get("publicKeyMultibase"), str):
            raw = decode_ed25519_public(entry["publicKeyMultibase"])
            return owner, ed25519.Ed25519PublicKey.from_public_bytes(raw)
    raise UnknownKey(f"document {document.get('id')} does not publish key {key_id}")


def load_public_pem(pem: str) -> PublicKey:
    """An RSA or Ed25519 public key from PEM; MalformedDocument otherwise."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise MalformedDocument("publicKeyPem is not a PEM public key") from exc
    if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise MalformedDocument("publicKeyPem is neither RSA nor Ed25519")
    return key
