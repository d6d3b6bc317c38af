"""Checking endorsements against their authorities' published keys (fetched as needed)."""

from __future__ import annotations

import logging
from typing import Any

from ..protocol.endorsement import Endorsement, carried_endorsements, read_endorsement
from ..protocol.errors import ProtocolError
from ..protocol.proofs import verify_with_actor
from .actors import RemoteActors
from .errors import FetchFailed

log = logging.getLogger(__name__)


async def check_endorsement(actors: RemoteActors, doc: Any) -> Endorsement:
    """The endorsement `doc`, its proof checked against its authority's published key.
    Raises ProtocolError or FetchFailed when it does not hold."""
    endorsement = read_endorsement(doc)
    authority = await actors.get(endorsement.authority)
    if authority.get("nodeKind") != "authority":
        raise ProtocolError(f"{endorsement.authority} is not an authority")
    try:
        verify_with_actor(doc, authority)
    except ProtocolError:
        verify_with_actor(doc, await actors.get(endorsement.authority, refresh=True))
    return endorsement


async def check_carried(
    actors: RemoteActors, profile_doc: dict[str, Any], school_key: bytes
) -> list[Endorsement]:
    """The endorsements a verified profile carries that hold for its school and its key;
    the others are left out (a bad endorsement does not cost the school its listing)."""
    held = []
    for doc in carried_endorsements(profile_doc):
        try:
            endorsement = await check_endorsement(actors, doc)
            if endorsement.school != profile_doc["attributedTo"]:
                raise ProtocolError("it endorses another school")
            if endorsement.key != school_key:
                raise ProtocolError("it endorses another key of the school")
        except (ProtocolError, FetchFailed) as exc:
            log.info("endorsement %s left out: %s", _id(doc), exc)
            continue
        held.append(endorsement)
    return held


def _id(doc: Any) -> Any:
    return doc.get("id") if isinstance(doc, dict) else doc
