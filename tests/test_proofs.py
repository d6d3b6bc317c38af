"""Canonical JSON and eddsa-jcs-2022 proofs: published vectors, round trips, tampering."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from amity.protocol.canonical import canonical_bytes
from amity.protocol.errors import BadSignature, MalformedDocument, UnknownKey
from amity.protocol.multikey import (
    decode_ed25519_public,
    decode_ed25519_secret,
    encode_ed25519_public,
)
from amity.protocol.profile_document import profile_document, profile_from_document
from amity.protocol.proofs import sign_document, verify_document, verify_with_actor

# Copies of ../shared/vectors (each file names its source).
VECTORS = Path(__file__).resolve().parent / "vectors"
W3C = json.loads((VECTORS / "w3c-eddsa-jcs-2022.json").read_text())
FEP = json.loads((VECTORS / "fep-8b32.json").read_text())
SEED = bytes(range(32))
KEY_ID = "https://school.example/actors/benito#ed25519-key"


def test_w3c_intermediate_values_reproduce() -> None:
    options = W3C["proofOptions"]
    assert canonical_bytes(W3C["unsigned"]).decode() == W3C["canonicalDocument"]
    assert canonical_bytes(options).decode() == W3C["canonicalProofConfig"]
    doc_hash = hashlib.sha256(canonical_bytes(W3C["unsigned"])).hexdigest()
    config_hash = hashlib.sha256(canonical_bytes(options)).hexdigest()
    assert doc_hash == W3C["documentHashHex"]
    assert config_hash == W3C["proofConfigHashHex"]
    assert config_hash + doc_hash == W3C["combinedHashHex"]


def test_w3c_signed_document_reproduces_exactly() -> None:
    seed = decode_ed25519_secret(W3C["secretKeyMultibase"])
    assert encode_ed25519_public(bytes(SigningKey(seed).verify_key)) == W3C["publicKeyMultibase"]
    options = W3C["proofOptions"]
    signed = sign_document(W3C["unsigned"], seed, options["verificationMethod"], options["created"])
    assert signed == W3C["signed"]
    assert signed["proof"]["proofValue"] == W3C["proofValue"]
    verify_document(W3C["signed"], decode_ed25519_public(W3C["publicKeyMultibase"]))


def test_fep_8b32_vector_signs_and_verifies_from_actor() -> None:
    seed = decode_ed25519_secret(FEP["secretKeyMultibase"])
    signed = sign_document(FEP["document"], seed, FEP["verificationMethod"], FEP["created"])
    assert signed == FEP["signed"]
    info = verify_with_actor(FEP["signed"], FEP["actor"])
    assert info.verification_method == FEP["verificationMethod"]
    assert info.created == FEP["created"]


def test_canonical_form_ignores_key_order_and_escapes_per_jcs() -> None:
    assert canonical_bytes({"b": 1, "a": [1.0, "é", "\u2028"]}) == canonical_bytes(
        {"a": [1, "é", "\u2028"], "b": 1}
    )
    assert canonical_bytes({"b": 1, "a": 2}) == b'{"a":2,"b":1}'


def test_canonicalization_refuses_non_json_values() -> None:
    with pytest.raises(MalformedDocument):
        canonical_bytes({"a": float("nan")})


def _signed_profile(profile: dict[str, Any]) -> dict[str, Any]:
    doc = profile_document(
        profile,
        profile_id="https://school.example/actors/benito/profile",
        actor_id="https://school.example/actors/benito",
        published="2026-11-01T10:00:00Z",
        updated="2026-11-02T10:00:00Z",
    )
    return sign_document(doc, SEED, KEY_ID, "2026-11-02T10:00:00Z")


def test_profile_round_trips_through_its_signed_document(profile: dict[str, Any]) -> None:
    from amity.protocol.profile import validate_profile

    normalized = validate_profile(profile)
    signed = _signed_profile(normalized)
    assert profile_from_document(signed) == normalized
    info = verify_document(signed, bytes(SigningKey(SEED).verify_key))
    assert info.verification_method == KEY_ID


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaf_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaf_paths(v, (*path, i))]
    return [path]


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return str(value) + "x"


def test_proof_fails_after_any_single_field_changes(profile: dict[str, Any]) -> None:
    signed = _signed_profile(profile)
    public = bytes(SigningKey(SEED).verify_key)
    paths = [p for p in _leaf_paths(signed) if p != ("proof", "proofValue")]
    assert len(paths) > 30
    for path in paths:
        tampered = copy.deepcopy(signed)
        target = tampered
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = _changed(target[path[-1]])
        with pytest.raises((BadSignature, MalformedDocument)):
            verify_document(tampered, public)
    # Adding or removing a field breaks it too.
    with pytest.raises(BadSignature):
        verify_document({**signed, "extra": 1}, public)
    without = {k: v for k, v in signed.items() if k != "summary"}
    with pytest.raises(BadSignature):
        verify_document(without, public)


def test_proof_fails_with_another_key(profile: dict[str, Any]) -> None:
    signed = _signed_profile(profile)
    with pytest.raises(BadSignature):
        verify_document(signed, bytes(SigningKey(bytes(32)).verify_key))


def test_malformed_proofs_are_refused(profile: dict[str, Any]) -> None:
    signed = _signed_profile(profile)
    public = bytes(SigningKey(SEED).verify_key)
    for field, value in [
        ("cryptosuite", "eddsa-rdfc-2022"),
        ("proofValue", "not-multibase"),
        ("type", "Ed25519Signature2020"),
        ("proofPurpose", "authentication"),
    ]:
        broken = copy.deepcopy(signed)
        broken["proof"][field] = value
        with pytest.raises((MalformedDocument, BadSignature)):
            verify_document(broken, public)
    with pytest.raises(MalformedDocument):
        verify_document({k: v for k, v in signed.items() if k != "proof"}, public)


def test_actor_key_lookup_checks_id_and_controller(profile: dict[str, Any]) -> None:
    signed = _signed_profile(profile)
    actor = {
        "id": "https://school.example/actors/benito",
        "assertionMethod": {
            "id": KEY_ID,
            "type": "Multikey",
            "controller": "https://school.example/actors/benito",
            "publicKeyMultibase": encode_ed25519_public(bytes(SigningKey(SEED).verify_key)),
        },
    }
    verify_with_actor(signed, actor)
    stolen = copy.deepcopy(actor)
    stolen["assertionMethod"]["controller"] = "https://evil.example/actors/x"
    with pytest.raises(UnknownKey):
        verify_with_actor(signed, stolen)
    with pytest.raises(UnknownKey):
        verify_with_actor(signed, {**actor, "assertionMethod": []})
