"""Profiles signed and verified per second through Amity's code, against raw pynacl.

Run: python bench/proofs.py [--seconds N]

Amity's path per profile: build the profile object, canonicalize (RFC 8785) the document and
the proof options, hash, sign (or verify against the key found in an actor document). The
baseline signs and verifies the same canonical document bytes with pynacl directly, in the
same run. A ratio near 1 means canonicalization and document handling cost little beside the
signature itself; above 0.5 they cost less than the signature.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from nacl.signing import SigningKey

from amity.protocol.actor import ActorUrls, actor_document
from amity.protocol.canonical import canonical_bytes
from amity.protocol.profile import validate_profile
from amity.protocol.profile_document import profile_document
from amity.protocol.proofs import sign_document, verify_with_actor

ROOT = Path(__file__).resolve().parent.parent
SEED = bytes(range(32))


def rate(label: str, work: Callable[[], object], seconds: float) -> float:
    """Calls per second of `work`, over about `seconds`."""
    work()  # warm up
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            work()
        count += 50
    per_second = count / elapsed
    print(f"  {label:<44}{per_second:>10,.0f} /s")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()

    profile = validate_profile(json.loads((ROOT / "examples" / "profile.json").read_text()))
    urls = ActorUrls("https://school.example", "benito")
    key = SigningKey(SEED)
    actor = actor_document(
        urls,
        "school",
        name="Benito",
        summary=None,
        rsa_public_pem="-",
        ed25519_public=bytes(key.verify_key),
        published="2026-01-01T00:00:00Z",
        has_profile=True,
    )

    def amity_sign() -> dict[str, object]:
        document = profile_document(
            profile,
            profile_id=urls.profile,
            actor_id=urls.id,
            published="2026-01-01T00:00:00Z",
            updated="2026-11-28T12:00:00Z",
        )
        return sign_document(document, SEED, urls.ed25519_key_id, "2026-11-28T12:00:00Z")

    signed = amity_sign()
    canonical = canonical_bytes({k: v for k, v in signed.items() if k != "proof"})
    raw_signature = key.sign(canonical).signature
    verify_key = key.verify_key

    print(f"profile document: {len(canonical)} canonical bytes")
    print("signing")
    amity_s = rate("amity: build + JCS + hash + Ed25519 sign", amity_sign, args.seconds)
    raw_s = rate(
        "raw pynacl: Ed25519 sign of the same bytes", lambda: key.sign(canonical), args.seconds
    )
    print("verifying")
    amity_v = rate(
        "amity: JCS + hash + key from actor + verify",
        lambda: verify_with_actor(signed, actor),
        args.seconds,
    )
    raw_v = rate(
        "raw pynacl: Ed25519 verify of the same bytes",
        lambda: verify_key.verify(canonical, raw_signature),
        args.seconds,
    )
    print("ratios (amity / raw pynacl; 1.0 = no overhead beyond the signature)")
    print(f"  sign   {amity_s / raw_s:.2f}")
    print(f"  verify {amity_v / raw_v:.2f}")


if __name__ == "__main__":
    main()
