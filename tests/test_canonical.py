"""Amity's canonical JSON writes exactly what the rfc8785 library writes, for any JSON."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from amity.protocol.canonical import canonical_bytes
from amity.protocol.contexts import PROFILE_CONTEXT
from amity.protocol.errors import MalformedDocument

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_matches_rfc8785_on_arbitrary_json(value: Any) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet=st.characters(min_codepoint=0xD000, exclude_categories=["Cs"])),
        st.integers(0, 9),
        min_size=2,
        max_size=6,
    )
)
def test_key_order_follows_utf16_code_units(value: dict[str, int]) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_known_context_inside_document_is_still_canonical() -> None:
    document = {"@context": PROFILE_CONTEXT, "ages": [9, 12], "ratio": 0.5, "big": 2**52}
    assert canonical_bytes(document) == rfc8785.dumps(document)


def test_lone_surrogates_are_malformed() -> None:
    with pytest.raises(MalformedDocument):
        canonical_bytes({"name": "\ud800"})
