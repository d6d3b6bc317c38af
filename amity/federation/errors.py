"""Errors of the conversation with other nodes: a family of their own, apart from the
protocol's ProtocolError ("this input is bad"), since a peer that is down or refused is not
bad input."""

from __future__ import annotations


class FederationError(Exception):
    """Talking to another node went wrong."""


class FetchFailed(FederationError):
    """A remote document could not be fetched or was not acceptable."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when the server answered


class Unreachable(FetchFailed):
    """The server could not be reached or did not answer in time: trying again later may
    succeed (a peer down for a while), unlike an answer that refuses."""


def is_transient(exc: FetchFailed) -> bool:
    """Whether the fetch may succeed later: no answer, a 5xx, a 408 or a 429."""
    if isinstance(exc, Unreachable):
        return True
    return exc.status is not None and (exc.status >= 500 or exc.status in (408, 429))


class AddressRefused(FetchFailed):
    """The target resolves to an address this node may not talk to (SSRF guard)."""
