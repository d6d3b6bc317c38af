"""The charter texts shipped inside the package, so a node can show and hash them alone."""

from __future__ import annotations

from importlib import resources

from ..protocol.partnership import CharterRef, charter_ref
from .errors import NodeError

CHARTER_VERSION = "1"  # the version new partnerships name
CHARTER_LANGUAGES = ("en", "es", "fr", "ar")
DEFAULT_LANGUAGE = "en"  # the text a Partnership names unless told otherwise


def charter_text(version: str = CHARTER_VERSION, language: str = DEFAULT_LANGUAGE) -> bytes:
    """The exact bytes of one charter text (docs/charter/vVERSION/LANGUAGE.md)."""
    path = resources.files("amity.node") / "charter_texts" / f"v{version}" / f"{language}.md"
    if not path.is_file():
        raise NodeError(
            f"no charter version {version} in {language!r}; languages: "
            + ", ".join(CHARTER_LANGUAGES)
        )
    return path.read_bytes()


def current_charter(language: str = DEFAULT_LANGUAGE) -> CharterRef:
    """The reference (version, language, SHA-256) new partnerships carry."""
    return charter_ref(charter_text(CHARTER_VERSION, language), CHARTER_VERSION, language)
