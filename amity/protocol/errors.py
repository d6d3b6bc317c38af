"""The one error family of the protocol layer."""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error the protocol layer raises on bad input."""


class MalformedDocument(ProtocolError):
    """A document is not of the shape the protocol requires."""


class BadSignature(ProtocolError):
    """A signature or proof does not verify."""


class KeyMismatch(BadSignature):
    """The signature does not verify with this key; a fresher copy of the key might."""


class UnknownKey(ProtocolError):
    """The key a signature names cannot be found where it should be."""


class ValidationFailed(ProtocolError):
    """A school profile breaks one or more rules; `problems` lists each one."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))
