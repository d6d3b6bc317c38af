"""Arbitrary JSON and headers thrown at the inbox: never a 5xx, never a change without a
valid signature."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amity.protocol.activities import HANDLED_TYPES

from .inprocess import post_signed, start_node

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120)
TYPES = [*sorted(HANDLED_TYPES), "Like"]  # every handled type, and one that is not
activity_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=40) | st.just("http://127.0.0.1:9/a/1"),
        "type": st.sampled_from(TYPES) | st.text(max_size=8),
        "actor": st.text(max_size=40) | st.just("http://127.0.0.1:9/actors/x"),
        "object": json_values,
    },
)


def test_inbox_survives_arbitrary_input(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    receiver = loop.run_until_complete(start_node(tmp_path, "receiver"))
    sender = loop.run_until_complete(start_node(tmp_path, "sender"))
    session = loop.run_until_complete(_session())
    url = f"{receiver.base}/inbox"
    before = loop.run_until_complete(receiver.state())

    async def post_raw(body: bytes, headers: dict[str, str]) -> int:
        async with session.post(url, data=body, headers=headers) as response:
            return response.status

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        body=st.one_of(
            json_values.map(lambda v: json.dumps(v).encode()),
            st.binary(max_size=200),
            activity_like.map(lambda v: json.dumps(v).encode()),
        ),
        headers=st.dictionaries(
            st.sampled_from(
                [
                    "Signature",
                    "Signature-Input",
                    "Digest",
                    "Date",
                    "Content-Type",
                    "Content-Digest",
                    "X-Other",
                ]
            ),
            header_values,
            max_size=5,
        ),
    )
    def unsigned_or_forged(body: bytes, headers: dict[str, str]) -> None:
        status = loop.run_until_complete(post_raw(body, headers))
        assert status < 500
        assert loop.run_until_complete(receiver.state()) == before

    from_sender = st.builds(
        lambda kind, obj, n: {
            "id": f"{sender.actor}/activities/{n}",
            "type": kind,
            "actor": sender.actor,
            "object": obj,
        },
        st.sampled_from(TYPES),
        json_values | st.just(receiver.actor),
        st.integers(0, 10**9),
    )

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(activity=st.one_of(activity_like, json_values, from_sender))
    def validly_signed(activity: Any) -> None:
        status, _ = loop.run_until_complete(post_signed(session, url, activity, sender.node))
        assert status < 500

    try:
        unsigned_or_forged()
        validly_signed()
    finally:
        loop.run_until_complete(session.close())
        for live in (receiver, sender):
            loop.run_until_complete(live.server.close())
            live.node.close()
        loop.close()


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()
