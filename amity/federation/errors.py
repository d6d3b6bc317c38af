"""Errors of the conversation with other nodes (part of the protocol's error family)."""

from __future__ import annotations

from ..protocol.errors import ProtocolError


class FetchFailed(ProtocolError):
    """A remote document could not be fetched or was not acceptable."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when the server answered


class AddressRefused(FetchFailed):
    """The target resolves to an address this node may not talk to (SSRF guard)."""
