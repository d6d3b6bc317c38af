"""Reading a school profile file given on the command line."""

from __future__ import annotations

from typing import IO, Any

from ..protocol.errors import ValidationFailed
from ..protocol.profile import parse_profile_json

MAX_PROFILE_BYTES = 64 * 1024


def read_profile(source: IO[bytes]) -> dict[str, Any]:
    """A validated profile from a file; ValidationFailed names the file's problems."""
    raw = source.read(MAX_PROFILE_BYTES + 1)
    if len(raw) > MAX_PROFILE_BYTES:
        raise ValidationFailed([("profile", f"file is over {MAX_PROFILE_BYTES // 1024} KiB")])
    return parse_profile_json(raw)
