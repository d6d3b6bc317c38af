"""How much a node keeps of what others send it, and for how long (docs/protocol.md, 13).

Every kind of remote thing kept has a size limit and a quota per actor or per host; every
table that grows with traffic is pruned after its retention (federation/retention.py).
"""

from __future__ import annotations

from ..protocol.activities import host_of
from ..protocol.errors import ProtocolError

DAY = 24 * 3600.0

# Flag reports: stored for the operator, at most this large, this many per reporting actor,
# per host and in all; kept for REPORT_RETENTION.
MAX_REPORT_BYTES = 4096
REPORTS_PER_ACTOR = 10
REPORTS_PER_HOST = 100
REPORTS_IN_ALL = 10_000
REPORT_RETENTION = 90 * DAY

# Directory listings (tombstones included) per host: room for a ministry hosting every
# school of a country on one node.
LISTINGS_PER_HOST = 20_000
# A listing's signed profile object, endorsements carried included (16 of 4 KiB at most).
MAX_LISTING_BYTES = 96 * 1024

# Revocations are kept for good, so each authority's host has a ceiling.
REVOCATIONS_PER_HOST = 50_000
MAX_REVOCATION_BYTES = 4096

# Remote actors: a larger document is used but not cached; at most this many per host (the
# one fetched longest ago gives way, unless this node follows it, it follows this node or
# it is listed); unreferenced ones not fetched for ACTOR_RETENTION are dropped.
MAX_ACTOR_BYTES = 64 * 1024
ACTORS_PER_HOST = 20_000
ACTOR_RETENTION = 30 * DAY

# Activity ids seen (replay protection): far longer than the signature window (one hour
# either way), so a replayed request is always refused by its Date or by its id.
SEEN_RETENTION = 7 * DAY

# What this node sent: outbox entries and deliveries (pending or dead) made longer ago are
# dropped; an outbox entry with a delivery still queued stays.
OUTBOX_RETENTION = 30 * DAY
DELIVERY_RETENTION = 30 * DAY

# Nodes seen on the local network: the most recently seen ones are kept.
LAN_PEERS = 1_000

# Partnership proposals another node makes to this node's schools: pending ones per local
# school, per proposing actor and per host (an authority this node trusts is exempt from
# the last two: its pairing round may pair many of the node's schools); rows per proposing
# host in any state (the Offer's own size limit is
# protocol.partnership_activities.MAX_OFFER_BYTES); ended, declined and expired ones are
# kept for PARTNERSHIP_RETENTION (proposal history).
PENDING_PROPOSALS_PER_SCHOOL = 100
PENDING_PROPOSALS_PER_ACTOR = 3
PENDING_PROPOSALS_PER_HOST = 50
PARTNERSHIPS_PER_HOST = 20_000
PARTNERSHIP_RETENTION = 365 * DAY

# Retry-After given with a full quota (it frees up as rows age out).
QUOTA_RETRY_AFTER = 3600.0


def row_host(url: str) -> str:
    """The host a row is counted under for quotas ("" for what is not an http(s) URL)."""
    try:
        return host_of(url)
    except ProtocolError:
        return ""
