"""Object integrity proofs: Data Integrity `eddsa-jcs-2022` as FEP-8b32 uses them.

Sign: hash(JCS(proof options)) || hash(JCS(document without proof)), Ed25519 over that,
proofValue = multibase base58btc of the signature (W3C vc-di-eddsa, section 3.3).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from .canonical import canonical_bytes
from .errors import BadSignature, MalformedDocument, UnknownKey
from .multikey import decode_ed25519_public, decode_multibase, encode_multibase

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"
PROOF_PURPOSE = "assertionMethod"


@dataclass(frozen=True)
class ProofInfo:
    """What a verified proof says: who signed (the key id and the key) and when."""

    verification_method: str
    created: str
    public_key: bytes


@lru_cache(maxsize=64)
def _signing_key(seed: bytes) -> SigningKey:
    """Deriving the key pair from the seed costs as much as a signature; do it once."""
    return SigningKey(seed)


def _hash_data(proof_options: dict[str, Any], unsecured: dict[str, Any]) -> bytes:
    return (
        hashlib.sha256(canonical_bytes(proof_options)).digest()
        + hashlib.sha256(canonical_bytes(unsecured)).digest()
    )


def sign_document(
    document: dict[str, Any], seed: bytes, verification_method: str, created: str
) -> dict[str, Any]:
    """A copy of `document` with an eddsa-jcs-2022 proof made with the Ed25519 `seed`.

    `created` is an XML Schema dateTime supplied by the caller (the protocol has no clock).
    An existing proof is replaced.
    """
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    options: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "verificationMethod": verification_method,
        "proofPurpose": PROOF_PURPOSE,
        "created": created,
    }
    if "@context" in unsecured:
        # FEP-8b32: the proof carries the document's context so it can be checked alone.
        options["@context"] = unsecured["@context"]
    signature = _signing_key(seed).sign(_hash_data(options, unsecured)).signature
    return {**unsecured, "proof": {**options, "proofValue": encode_multibase(signature)}}


def read_proof(document: dict[str, Any]) -> dict[str, Any]:
    """The proof object of `document`, checked for the fields this cryptosuite needs."""
    proof = document.get("proof")
    if not isinstance(proof, dict):
        raise MalformedDocument("document has no proof object")
    for field, expected in (
        ("type", PROOF_TYPE),
        ("cryptosuite", CRYPTOSUITE),
        ("proofPurpose", PROOF_PURPOSE),
    ):
        if proof.get(field) != expected:
            raise MalformedDocument(f"proof.{field} must be {expected!r}")
    for field in ("verificationMethod", "proofValue", "created"):
        if not isinstance(proof.get(field), str):
            raise MalformedDocument(f"proof.{field} must be a string")
    return proof


def verify_document(document: dict[str, Any], public_key: bytes) -> ProofInfo:
    """Check the eddsa-jcs-2022 proof of `document` against a raw Ed25519 public key."""
    proof = read_proof(document)
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    if "@context" in options:
        # vc-di-eddsa 3.3.2: the document's context must start with the proof's.
        proof_ctx = _as_list(options["@context"])
        doc_ctx = _as_list(unsecured.get("@context", []))
        if doc_ctx[: len(proof_ctx)] != proof_ctx:
            raise BadSignature("proof @context does not match the document's @context")
        unsecured["@context"] = options["@context"]
    signature = decode_multibase(proof["proofValue"])
    try:
        VerifyKey(public_key).verify(_hash_data(options, unsecured), signature)
    except (BadSignatureError, ValueError) as exc:
        raise BadSignature("integrity proof does not verify") from exc
    return ProofInfo(proof["verificationMethod"], proof["created"], public_key)


def assertion_methods(actor: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of `actor`'s assertionMethod (FEP-521a): one object or a list; what is
    not an object is skipped (the one parser of the field, for proofs and HTTP signatures)."""
    methods = actor.get("assertionMethod", [])
    return [method for method in _as_list(methods) if isinstance(method, dict)]


def find_assertion_key(actor: dict[str, Any], verification_method: str) -> bytes:
    """The Ed25519 key `verification_method` names in `actor`'s assertionMethod (FEP-521a)."""
    for method in assertion_methods(actor):
        if method.get("id") == verification_method:
            if method.get("type") != "Multikey":
                raise UnknownKey(f"{verification_method} is not a Multikey")
            if method.get("controller") != actor.get("id"):
                raise UnknownKey(f"{verification_method} is not controlled by {actor.get('id')}")
            return decode_ed25519_public(method.get("publicKeyMultibase", ""))
    raise UnknownKey(f"actor {actor.get('id')} has no assertion key {verification_method}")


def verify_with_actor(document: dict[str, Any], actor: dict[str, Any]) -> ProofInfo:
    """Verify `document`'s proof using only the key published in `actor`'s document."""
    proof = read_proof(document)
    return verify_document(document, find_assertion_key(actor, proof["verificationMethod"]))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
