"""What the inbox is given and answers: the request, the result, a refusal, the verified
sender, and the hooks the node reacts through."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from sqlite_utils import Database

from ..protocol.endorsement import Endorsement


class InboxRequest(NamedTuple):
    """A signed request as the sender addressed it: a POST to an inbox, or a signed GET
    (a match query, with no body)."""

    # A NamedTuple: one is built for every inbox request, at a fifth of the cost of a
    # frozen dataclass.
    url: str  # the node's base URL + path + query
    target: str  # path + query, as in (request-target)
    headers: Mapping[str, str]  # lower-case names
    header_items: list[tuple[str, str]]  # every field line, for RFC 9421
    body: bytes
    source: str = ""  # the client's address (behind a trusted proxy, the one it names)
    method: str = "POST"  # a GET signs no Digest: it has no body


class InboxResult(NamedTuple):
    status: int
    reason: str
    retry_after: float | None = None


class Rejected(Exception):
    """The request is refused with `status`."""

    def __init__(self, status: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


class Sender(NamedTuple):
    """Who signed the request."""

    key_id: str
    owner: str
    actor_document: dict[str, Any]


class InboxHooks(Protocol):
    """What the node does in reaction, inside the transaction that applies an activity."""

    def accept_follow(
        self, db: Database, handle: str, follow: dict[str, Any], inbox: str
    ) -> None: ...

    def follow_accepted(
        self, db: Database, actor: dict[str, Any] | None, handle: str | None = None
    ) -> None:
        """The actor accepted the Follow of the local account `handle`."""
        ...

    def profile_stored(self, db: Database, document: dict[str, Any], via: str | None) -> None: ...

    def profile_removed(self, db: Database, delete: dict[str, Any], via: str | None) -> None: ...

    def endorsement_received(self, db: Database, endorsement: Endorsement) -> None: ...

    def endorsement_revoked(self, db: Database, delete: dict[str, Any], via: str) -> None: ...

    def school_profile(self, db: Database, handle: str) -> dict[str, Any] | None:
        """The local school's import-format profile (partnerships read its country and
        capacity), or None when it has none."""
        ...

    def partnership_overbooked(self, db: Database, handle: str, partnership_id: str) -> None:
        """A late Accept completed a proposal that had expired here while the school's
        places were taken since: the node ends it at once (a Leave to the others)."""
        ...
