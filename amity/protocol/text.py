"""Short texts as they may be shown: no invisible characters that reorder or hide text.

A name like "Evil\u202eloohcS" shows as "EvilSchool" reversed in part; a zero-width space
splits a word so search misses it; a terminal escape rewrites the operator's screen. Every
name, locality and description is cleaned on import, and again wherever a text another
node signed is shown or searched (its signed document cannot be changed).
"""

from __future__ import annotations

import unicodedata

ZWNJ = "\u200c"
ZWJ = "\u200d"
# Format characters (category Cf) that are visible marks, not controls: the prepended
# concatenation marks (Arabic number signs and the like) and Egyptian hieroglyph layout.
_VISIBLE_FORMAT = frozenset(
    [
        *map(chr, range(0x0600, 0x0606)),
        *"\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd",
        *map(chr, range(0x13430, 0x13460)),
    ]
)
# Blank letters (category Lo) used to make a name look empty.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
# Scripts whose letters join, where ZWNJ between two letters chooses the unjoined form
# (Persian "می‌خواهم"): Arabic, Syriac, Thaana, N'Ko, Mongolian and their extensions.
_JOINING = (
    (0x0600, 0x08FF),
    (0xFB50, 0xFDFF),
    (0xFE70, 0xFEFF),
    (0x1800, 0x18AF),
    (0x10D00, 0x10D3F),
)
_VIRAMA = 9  # canonical combining class of a virama (Indic scripts, Sinhala, Khmer, ...)


def _joining_letter(char: str) -> bool:
    code = ord(char)
    return unicodedata.category(char)[0] == "L" and any(a <= code <= b for a, b in _JOINING)


def _base(text: str, index: int, step: int) -> str | None:
    """The nearest character from `index` in direction `step` that is not a combining mark
    (marks sit on the letter before them and do not break joining)."""
    while 0 <= index < len(text):
        if unicodedata.category(text[index]) not in ("Mn", "Me"):
            return text[index]
        index += step
    return None


def _emoji(char: str | None) -> bool:
    return char is not None and (
        unicodedata.category(char) == "So" or char == "\ufe0f" or 0x1F3FB <= ord(char) <= 0x1F3FF
    )


def _keep_joiner(text: str, index: int) -> bool:
    """ZWNJ and ZWJ are kept only where they change how a word is written, as in the
    IDNA CONTEXTJ rules (RFC 5892 appendix A): after a virama (Devanagari, Bengali,
    Malayalam, Sinhala conjuncts); ZWNJ between two letters of a joining script; ZWJ
    between two emoji (family and profession sequences). Anywhere else they are invisible
    and only serve to split a word."""
    before = text[index - 1] if index > 0 else None
    if before is not None and unicodedata.combining(before) == _VIRAMA:
        return True
    previous, following = _base(text, index - 1, -1), _base(text, index + 1, 1)
    if text[index] == ZWNJ:
        return (
            previous is not None
            and following is not None
            and _joining_letter(previous)
            and _joining_letter(following)
        )
    return _emoji(previous) and _emoji(following)


def clean_text(value: str, *, multiline: bool = False) -> str:
    """`value` without bidirectional controls (U+202A-202E, U+2066-2069, U+200E, U+200F,
    U+061C), zero-width and other invisible format characters (U+200B, U+2060-2064,
    U+FEFF, soft hyphen, tag characters, ...: Unicode category Cf), control characters,
    lone surrogates and blank filler letters; ZWNJ/ZWJ stay only where a script needs
    them. Line breaks (any of Unicode's) and tabs become spaces; with `multiline`, line
    breaks stay, as one "\\n" each. The result is NFC-normalized."""
    text = unicodedata.normalize("NFC", value)
    lines = [
        line if line.isprintable() and _BLANK_LETTERS.isdisjoint(line) else _clean_line(line)
        for line in text.splitlines()
    ]
    return ("\n" if multiline else " ").join(lines)


def _clean_line(line: str) -> str:
    kept: list[str] = []
    for index, char in enumerate(line):
        category = unicodedata.category(char)
        if char == "\t":
            kept.append(" ")
        elif char in (ZWNJ, ZWJ):
            if _keep_joiner(line, index):
                kept.append(char)
        elif char in _VISIBLE_FORMAT or (
            category not in ("Cf", "Cc", "Cs") and char not in _BLANK_LETTERS
        ):
            kept.append(char)
    return "".join(kept)
