"""Actor documents for the three kinds of node (ActivityPub section 4.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .contexts import ACTOR_CONTEXT
from .errors import MalformedDocument
from .multikey import decode_ed25519_public, encode_ed25519_public

# A school is an Organization; a hub relays for others, so it is a Service; an authority
# speaks for the group of schools it vouches for, so it is a Group.
ACTOR_TYPES = {"school": "Organization", "hub": "Service", "authority": "Group"}
RSA_KEY_FRAGMENT = "#main-key"
ED25519_KEY_FRAGMENT = "#ed25519-key"


@dataclass(frozen=True)
class ActorUrls:
    """Every address an actor publishes, derived from the node's base URL and a handle."""

    base_url: str
    handle: str

    @property
    def id(self) -> str:
        return f"{self.base_url}/actors/{self.handle}"

    @property
    def inbox(self) -> str:
        return f"{self.id}/inbox"

    @property
    def outbox(self) -> str:
        return f"{self.id}/outbox"

    @property
    def followers(self) -> str:
        return f"{self.id}/followers"

    @property
    def following(self) -> str:
        return f"{self.id}/following"

    @property
    def profile(self) -> str:
        return f"{self.id}/profile"

    @property
    def directory(self) -> str:
        return f"{self.base_url}/directory"

    @property
    def revocations(self) -> str:
        return f"{self.base_url}/revocations"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base_url}/inbox"

    @property
    def rsa_key_id(self) -> str:
        return self.id + RSA_KEY_FRAGMENT

    @property
    def ed25519_key_id(self) -> str:
        return self.id + ED25519_KEY_FRAGMENT


def actor_document(
    urls: ActorUrls,
    kind: str,
    *,
    name: str,
    summary: str | None,
    rsa_public_pem: str,
    ed25519_public: bytes,
    published: str,
    has_profile: bool,
    manually_approves: bool = False,
    also_known_as: list[str] | None = None,
    moved_to: str | None = None,
    removed: str | None = None,
) -> dict[str, Any]:
    """The ActivityPub actor of a node's account, with both of its public keys; an account
    that moved here names its former ids (`alsoKnownAs`), one that moved away its new
    actor (`movedTo`), a removed school when it was removed (`removed`), served only while
    its withdrawal is on its way."""
    doc: dict[str, Any] = {
        "@context": ACTOR_CONTEXT,
        "id": urls.id,
        "type": ACTOR_TYPES[kind],
        "nodeKind": kind,
        "preferredUsername": urls.handle,
        "name": name,
        "url": urls.id,
        "inbox": urls.inbox,
        "outbox": urls.outbox,
        "followers": urls.followers,
        "following": urls.following,
        "endpoints": {"sharedInbox": urls.shared_inbox},
        "directory": urls.directory,
        "revocations": urls.revocations,
        "manuallyApprovesFollowers": manually_approves,
        "discoverable": True,
        "published": published,
        "publicKey": {
            "id": urls.rsa_key_id,
            "owner": urls.id,
            "publicKeyPem": rsa_public_pem,
        },
        "assertionMethod": [
            {
                "id": urls.ed25519_key_id,
                "type": "Multikey",
                "controller": urls.id,
                "publicKeyMultibase": encode_ed25519_public(ed25519_public),
            }
        ],
    }
    if summary:
        doc["summary"] = summary
    if has_profile:
        doc["schoolProfile"] = urls.profile
    if also_known_as:
        doc["alsoKnownAs"] = list(also_known_as)
    if moved_to:
        doc["movedTo"] = moved_to
    if removed:
        doc["removed"] = removed
        doc["discoverable"] = False
    return doc


MAX_ASSERTION_METHODS = 8  # entries of a remote actor's assertionMethod looked at


def is_amity_actor(document: dict[str, Any]) -> bool:
    """Whether `document` is an Amity node's actor: a `nodeKind` Amity knows and an Ed25519
    Multikey in `assertionMethod`, the key its RFC 9421 signatures are checked with."""
    if document.get("nodeKind") not in ACTOR_TYPES:
        return False
    methods = document.get("assertionMethod")
    entries = methods if isinstance(methods, list) else [methods]
    for entry in entries[:MAX_ASSERTION_METHODS]:
        if not isinstance(entry, dict) or entry.get("type") != "Multikey":
            continue
        key = entry.get("publicKeyMultibase")
        if not isinstance(key, str):
            continue
        try:
            decode_ed25519_public(key)
        except MalformedDocument:
            continue
        return True
    return False
