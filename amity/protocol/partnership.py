"""Partnerships: one object both schools sign, its proof set, and its life cycle.

A Partnership names both schools (`partners`), who proposed it (`attributedTo`: one of the
schools, or an authority arranging the pair), the working languages, the charter (by
version, language and the SHA-256 of its text), an optional starter project and message.
Its `proof` is a proof set (W3C Data Integrity 1.0, section 2.1.1): a list of independent
eddsa-jcs-2022 proofs, each made over the same document without any `proof`, so no proof
covers another and their order does not matter. The proposer signs first; each school
adds its own proof when it accepts; the partnership is in force once every partner (and
the proposer, when it is a third party) has a proof on it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .activities import host_of
from .contexts import ACTIVITYSTREAMS, AMITY_NS, DATA_INTEGRITY_V2
from .errors import BadSignature, MalformedDocument, UnknownKey
from .httpsig import MAX_CLOCK_SKEW
from .move import also_known_as, verify_as_alias
from .proofs import sign_document, verify_with_actor
from .text import clean_text

PARTNERSHIP_TYPE = "Partnership"
PARTNERSHIP_CONTEXT: list[Any] = [
    ACTIVITYSTREAMS,
    DATA_INTEGRITY_V2,
    {
        "amity": AMITY_NS,
        "Partnership": "amity:Partnership",
        "partners": {"@id": "amity:partners", "@type": "@id"},
        "workingLanguages": "amity:workingLanguages",
        "charter": "amity:charter",
        "version": "amity:charterVersion",
        "language": "amity:charterLanguage",
        "sha256": "amity:sha256",
        "starterProject": "amity:starterProject",
    },
]
MAX_PARTNERSHIP_BYTES = 8192  # the object with up to MAX_PROOFS proofs
MAX_PROOFS = 3  # both schools and, for an arranged pair, the authority
MAX_MESSAGE = 1000  # characters of the proposer's message
MAX_LANGUAGES = 8
PROPOSAL_LIFETIME = timedelta(days=14)  # an Offer's endTime is its published + this
OFFER_MIN_LEFT = timedelta(days=10)  # a received Offer has at least this long left

# Starter projects: a small fixed set, named by code so both schools see them in their
# own language; the descriptions are the English one-liners the CLI shows.
STARTER_PROJECTS: dict[str, str] = {
    "postcards": "Each class sends illustrated postcards about its town and daily life.",
    "our-water": "Both classes measure and compare where their water comes from and goes.",
    "festivals": "Each class presents a festival it celebrates, then asks about the other's.",
    "school-day": "Each class shows one ordinary school day, from arrival to going home.",
    "recipes": "Each class shares a family recipe and the story of where it comes from.",
}

# The life cycle, declared once: every change of a proposal's state is checked here.
# An expired proposal may still become accepted by an Accept whose proof was made before
# the Offer's endTime (the proposer was down when it came).
STATES = ("pending", "accepted", "declined", "expired", "withdrawn", "left")
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"accepted", "declined", "expired", "withdrawn"}),
    "expired": frozenset({"accepted"}),
    "accepted": frozenset({"left"}),
    "declined": frozenset(),
    "withdrawn": frozenset(),
    "left": frozenset(),
}
OPEN_STATES = ("pending", "accepted")  # a pair holds at most one of these at a time

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TAG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
_VERSION = re.compile(r"^[0-9]{1,4}$")


@dataclass(frozen=True)
class CharterRef:
    """The charter a partnership commits to, identified without any URL."""

    version: str
    language: str
    sha256: str

    def as_json(self) -> dict[str, str]:
        return {"version": self.version, "language": self.language, "sha256": self.sha256}


@dataclass(frozen=True)
class Partnership:
    """The fields of a partnership object that decide what it means."""

    id: str
    proposer: str
    partners: tuple[str, str]
    working_languages: tuple[str, ...]
    charter: CharterRef
    starter_project: str | None
    message: str | None
    published: str
    document: dict[str, Any]

    @property
    def arranged(self) -> bool:
        """Proposed by a third party (an authority pairing schools)."""
        return self.proposer not in self.partners

    @property
    def required_signers(self) -> frozenset[str]:
        return frozenset({self.proposer, *self.partners})

    def other_partner(self, school: str) -> str:
        return self.partners[1] if self.partners[0] == school else self.partners[0]


def charter_ref(text: bytes, version: str, language: str) -> CharterRef:
    """The reference to a charter text: its SHA-256 over the exact bytes."""
    return CharterRef(version, language, hashlib.sha256(text).hexdigest())


def check_transition(old: str, new: str) -> None:
    """Refuse a change of state the life cycle does not allow."""
    if new not in TRANSITIONS.get(old, frozenset()):
        raise MalformedDocument(f"a {old} proposal cannot become {new}")


def working_languages(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[str]:
    """Languages both schools can use (import-format profiles): instructed by one and
    instructed or learned by the other; sorted."""

    def langs(profile: Mapping[str, Any], kind: str) -> set[str]:
        value = profile.get("languages", {}).get(kind, [])
        return {tag for tag in value if isinstance(tag, str)}

    a_taught, b_taught = langs(first, "instruction"), langs(second, "instruction")
    a_all, b_all = a_taught | langs(first, "learning"), b_taught | langs(second, "learning")
    return sorted((a_taught & b_all) | (b_taught & a_all))


def expiry_of(published: str) -> str:
    """The endTime of an Offer published at `published`."""
    moment = _parse_time(published, "published") + PROPOSAL_LIFETIME
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def partnership_document(
    partnership_id: str,
    *,
    proposer: str,
    partners: tuple[str, str],
    languages: list[str],
    charter: CharterRef,
    published: str,
    starter_project: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The unsigned partnership object; the proposer adds the first proof (`add_proof`)."""
    doc: dict[str, Any] = {
        "@context": PARTNERSHIP_CONTEXT,
        "id": partnership_id,
        "type": PARTNERSHIP_TYPE,
        "attributedTo": proposer,
        "partners": list(partners),
        "workingLanguages": sorted(languages),
        "charter": charter.as_json(),
        "published": published,
    }
    if starter_project is not None:
        doc["starterProject"] = starter_project
    if message:
        doc["content"] = message
    read_partnership({**doc, "proof": []}, require_proof=False)
    return doc


def proof_set(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The proofs on `document` as a list (one proof object counts as a set of one)."""
    proof = document.get("proof")
    if proof is None:
        return []
    proofs = proof if isinstance(proof, list) else [proof]
    if not all(isinstance(p, dict) for p in proofs):
        raise MalformedDocument("every proof must be an object")
    return list(proofs)


def unsecured(document: Mapping[str, Any]) -> dict[str, Any]:
    """`document` without its proofs: what every proof of the set signs."""
    return {k: v for k, v in document.items() if k != "proof"}


def signer_of(proof: Mapping[str, Any]) -> str:
    """The actor a proof names through its verificationMethod (the actor id before `#`)."""
    method = proof.get("verificationMethod")
    if not isinstance(method, str) or "#" not in method:
        raise MalformedDocument("proof.verificationMethod must be an actor's key id (ACTOR#KEY)")
    return method.split("#", 1)[0]


def add_proof(
    document: Mapping[str, Any], seed: bytes, verification_method: str, created: str
) -> dict[str, Any]:
    """A copy of `document` with one more proof in its set, made with the Ed25519 `seed`;
    a proof the same key made before is replaced."""
    signed = sign_document(unsecured(document), seed, verification_method, created)
    signer = signer_of(signed["proof"])
    kept = [p for p in proof_set(document) if signer_of(p) != signer]
    return {**unsecured(document), "proof": [*kept, signed["proof"]]}


def merge_proofs(held: Mapping[str, Any], received: Mapping[str, Any]) -> dict[str, Any]:
    """`held` with the proofs of `received` it lacks; both must be the same partnership."""
    if unsecured(held) != unsecured(received):
        raise MalformedDocument("the partnership differs from the one proposed")
    signers = {signer_of(p) for p in proof_set(held)}
    extra = [p for p in proof_set(received) if signer_of(p) not in signers]
    return {**unsecured(held), "proof": [*proof_set(held), *extra]}


def read_partnership(doc: Any, *, require_proof: bool = True) -> Partnership:
    """The partnership `doc` describes; MalformedDocument naming what is missing or wrong.
    Proofs are only checked for shape here (`verify_partnership` checks signatures)."""
    if not isinstance(doc, dict) or doc.get("type") != PARTNERSHIP_TYPE:
        raise MalformedDocument(f"not a {PARTNERSHIP_TYPE}")
    size = len(json.dumps(doc, ensure_ascii=False).encode())
    if size > MAX_PARTNERSHIP_BYTES:
        raise MalformedDocument(f"partnership is over {MAX_PARTNERSHIP_BYTES} bytes")
    for field in ("id", "attributedTo", "published"):
        if not isinstance(doc.get(field), str):
            raise MalformedDocument(f"partnership has no {field}")
    _parse_time(doc["published"], "published")
    if host_of(doc["id"]) != host_of(doc["attributedTo"]):
        raise MalformedDocument("partnership id is not on its proposer's host")
    partners = doc.get("partners")
    if (
        not isinstance(partners, list)
        or len(partners) != 2
        or not all(isinstance(p, str) for p in partners)
        or partners[0] == partners[1]
    ):
        raise MalformedDocument("partners must name two different school actors")
    for partner in partners:
        host_of(partner)
    languages = doc.get("workingLanguages")
    if (
        not isinstance(languages, list)
        or not 1 <= len(languages) <= MAX_LANGUAGES
        or not all(isinstance(t, str) and _TAG.match(t) for t in languages)
    ):
        raise MalformedDocument(
            f"workingLanguages must list 1 to {MAX_LANGUAGES} BCP 47 language tags"
        )
    charter = _read_charter(doc.get("charter"))
    project = doc.get("starterProject")
    if project is not None and (not isinstance(project, str) or project not in STARTER_PROJECTS):
        raise MalformedDocument(f"starterProject {project!r} is not one of Amity's")
    message = doc.get("content")
    if message is not None and (
        not isinstance(message, str)
        or len(message) > MAX_MESSAGE
        or clean_text(message, multiline=True) != message
    ):
        raise MalformedDocument(f"content must be clean text of at most {MAX_MESSAGE} characters")
    proofs = proof_set(doc)
    if require_proof and not proofs:
        raise MalformedDocument("partnership has no proof")
    if len(proofs) > MAX_PROOFS:
        raise MalformedDocument(f"partnership carries more than {MAX_PROOFS} proofs")
    signers = [signer_of(p) for p in proofs]
    if len(set(signers)) != len(signers):
        raise MalformedDocument("partnership carries two proofs by one actor")
    allowed = {doc["attributedTo"], *partners}
    for signer in signers:
        if signer not in allowed:
            raise MalformedDocument(f"{signer} signed a partnership it is not part of")
    return Partnership(
        id=doc["id"],
        proposer=doc["attributedTo"],
        partners=(partners[0], partners[1]),
        working_languages=tuple(languages),
        charter=charter,
        starter_project=project,
        message=message,
        published=doc["published"],
        document=doc,
    )


def _read_charter(value: Any) -> CharterRef:
    if not isinstance(value, dict) or set(value) != {"version", "language", "sha256"}:
        raise MalformedDocument("charter must be {version, language, sha256}")
    if not (isinstance(value["version"], str) and _VERSION.match(value["version"])):
        raise MalformedDocument('charter version must be a number like "1"')
    if not (isinstance(value["language"], str) and _TAG.match(value["language"])):
        raise MalformedDocument("charter language must be a BCP 47 tag")
    if not (isinstance(value["sha256"], str) and _HEX64.match(value["sha256"])):
        raise MalformedDocument("charter sha256 must be 64 lower-case hex digits")
    return CharterRef(value["version"], value["language"], value["sha256"])


def proof_signers(doc: Mapping[str, Any]) -> set[str]:
    """The actors that have a proof on `doc` (unchecked)."""
    return {signer_of(p) for p in proof_set(doc)}


def verify_partnership(
    doc: Mapping[str, Any], actors: Mapping[str, Mapping[str, Any]]
) -> Partnership:
    """Check every proof of the set against the key its signer's actor document (from
    `actors`, by id) publishes; the proposer must have signed. A school that moved is
    given by its new actor, whose alsoKnownAs names the id it signed under: its proof
    then verifies with the key the new actor publishes (protocol/move.py). Raises
    BadSignature or UnknownKey naming the proof that fails."""
    partnership = read_partnership(dict(doc))
    signers = proof_signers(doc)
    if partnership.proposer not in signers:
        raise BadSignature(f"the proposer {partnership.proposer} has not signed")
    base = unsecured(doc)
    for proof in proof_set(doc):
        signer = signer_of(proof)
        actor = actors.get(signer)
        moved = next((a for a in actors.values() if signer in also_known_as(a)), None)
        if actor is None and moved is None:
            raise UnknownKey(f"no actor document for {signer}, who signed the partnership")
        try:
            if actor is not None:
                verify_with_actor({**base, "proof": proof}, dict(actor))
            else:
                assert moved is not None
                verify_as_alias({**base, "proof": proof}, moved)
        except BadSignature as exc:
            raise BadSignature(f"the proof of {signer} does not verify") from exc
    return partnership


def complete(doc: Mapping[str, Any]) -> bool:
    """Whether every partner (and a third-party proposer) has a proof on `doc`."""
    partnership = read_partnership(dict(doc))
    return partnership.required_signers <= proof_signers(doc)


def proof_created(doc: Mapping[str, Any], signer: str) -> str | None:
    """When `signer`'s proof on `doc` says it was made."""
    for proof in proof_set(doc):
        if signer_of(proof) == signer and isinstance(proof.get("created"), str):
            return str(proof["created"])
    return None


def offer_end_time(offer: Mapping[str, Any], published: str, now: datetime) -> str:
    """The Offer's endTime, checked: after `now`, and no later than the partnership's
    `published` plus PROPOSAL_LIFETIME (so both sides expire it on the same day)."""
    end = offer.get("endTime")
    if not isinstance(end, str):
        raise MalformedDocument("Offer has no endTime")
    sent = _parse_time(published, "published")
    if sent > now + MAX_CLOCK_SKEW:
        raise MalformedDocument("the proposal's published time is in the future")
    moment = _parse_time(end, "endTime")
    if moment > sent + PROPOSAL_LIFETIME:
        raise MalformedDocument("Offer endTime is more than 14 days after the proposal")
    if moment <= now:
        raise MalformedDocument("Offer endTime has passed: the proposal has expired")
    if moment - now < OFFER_MIN_LEFT:
        # A queued Offer arrives within about 3 days of being made; one made to expire at
        # once would only free its sender's quota of pending proposals at once.
        raise MalformedDocument(
            f"Offer endTime is less than {OFFER_MIN_LEFT.days} days away: too late to answer"
        )
    return end


def _parse_time(text: str, field: str) -> datetime:
    if not _TIME.match(text):
        raise MalformedDocument(f"{field} must be like 2026-01-31T00:00:00Z")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise MalformedDocument(f"{field} is not a real date and time") from exc


def parse_time(text: str) -> datetime:
    """An xsd:dateTime as this protocol writes it (UTC, whole seconds)."""
    return _parse_time(text, "time")
