"""The tables federation/ keeps, created by the steps of the node's migrations that name
them (amity/node/schema.py holds the one ordered list, so a step's name and place never
change). A step that has shipped is never edited: a change is a new step.
"""

from __future__ import annotations

from sqlite_utils import Database

from ..protocol.activities import host_of
from ..protocol.errors import MalformedDocument
from .follows import host_or_none


def m003_federation(db: Database) -> None:
    # Remote actors as last fetched; `fetched_at` is epoch seconds.
    db.table("remote_actors").create(
        {"id": str, "document": str, "inbox": str, "shared_inbox": str, "fetched_at": float},
        pk="id",
    )
    db.table("followers").create(
        {"handle": str, "actor": str, "inbox": str, "follow_id": str, "created": str},
        pk=("handle", "actor"),
    )
    # state: pending (Follow sent), accepted, rejected
    db.table("following").create(
        {"handle": str, "actor": str, "follow_id": str, "state": str, "created": str},
        pk=("handle", "actor"),
    )
    # Every activity id processed, so a second delivery of the same one does nothing.
    db.table("seen_activities").create(
        {"id": str, "type": str, "actor": str, "received_at": float}, pk="id"
    )
    # Objects other nodes published (profiles among them); deleted ones keep a tombstone.
    db.table("objects").create(
        {
            "id": str,
            "type": str,
            "attributed_to": str,
            "document": str,
            "updated": str,
            "deleted_at": str,
            "received_at": float,
        },
        pk="id",
    )
    db.table("objects").create_index(["attributed_to"])
    # What this node's actors sent, newest last (the outbox collection).
    db.table("outbox").create(
        {"id": str, "handle": str, "type": str, "document": str, "published": str}, pk="id"
    )
    # state: pending or dead; a delivered row is deleted.
    db.table("deliveries").create(
        {
            "id": int,
            "activity_id": str,
            "handle": str,
            "inbox": str,
            "host": str,
            "body": str,
            "state": str,
            "attempts": int,
            "next_attempt_at": float,
            "last_error": str,
            "created_at": float,
        },
        pk="id",
    )
    db.table("deliveries").create_index(["state", "next_attempt_at"])
    db.table("deliveries").create_index(["host"])
    db.table("hosts").create(
        {"host": str, "unavailable_since": float, "next_probe_at": float, "last_success": float},
        pk="host",
    )
    # kind: domain or actor
    db.table("blocks").create({"target": str, "kind": str, "created": str}, pk="target")
    db.table("reports").create(
        {"id": str, "actor": str, "document": str, "received_at": float}, pk="id"
    )


def m004_directory(db: Database) -> None:
    # The latest verified profile of every school this node knows (itself included), with
    # the columns searches filter on. `seq` grows with every change, for sync cursors.
    db.table("directory").create(
        {
            "actor": str,
            "profile_id": str,
            "document": str,
            "updated": str,
            "deleted_at": str,
            "seq": int,
            "received_at": float,
            "name": str,
            "country": str,
            "locality": str,
            "timezone": str,
            "instruction": str,
            "learning": str,
            "age_min": int,
            "age_max": int,
            "subjects": str,
            "modes": str,
            "description": str,
        },
        pk="actor",
    )
    db.table("directory").create_index(["seq"], unique=True)
    db.table("directory").create_index(["country"])
    db.table("directory").enable_fts(
        ["name", "locality", "description"], tokenize="unicode61", create_triggers=True
    )
    # How far this node has read each hub's directory.
    db.table("sync_cursors").create({"hub": str, "seq": int}, pk="hub")


def m005_directory_paused(db: Database) -> None:
    db.table("directory").add_column("paused", int, not_null_default=0)


def m006_endorsements(db: Database) -> None:
    # Endorsements carried by the current profile of each known school, each checked
    # against its authority's key and the key the school signed that profile with.
    db.table("endorsements").create(
        {
            "id": str,
            "school": str,
            "authority": str,
            "published": str,
            "expires": str,
            "document": str,
        },
        pk="id",
    )
    db.table("endorsements").create_index(["school"])
    # Revocations this node has seen (signed Deletes from the authority); kept for good, so
    # a revoked endorsement never counts again wherever it turns up.
    db.table("revocations").create(
        {"id": str, "authority": str, "revoked_at": str, "seq": int, "document": str}, pk="id"
    )
    db.table("revocations").create_index(["seq"], unique=True)
    # On a school: the endorsements it was given, at most one per authority, carried in
    # its profile while they count (apart from `endorsements`, which follows listings).
    db.table("held_endorsements").create(
        {"id": str, "authority": str, "expires": str, "document": str, "received_at": str},
        pk="id",
    )
    db.table("held_endorsements").create_index(["authority"], unique=True)
    # Authorities whose endorsements make a school "verified" on this node.
    db.table("trusted_authorities").create({"actor": str, "since": str}, pk="actor")


def m008_listing_keys(db: Database) -> None:
    # The key each listing's proof was checked with, so a hub can hand it on with the
    # listing, and later versions verify without fetching the author's actor again;
    # `key_confirmed_at` is when the author's own actor was last seen publishing it (NULL
    # while that key is only a hub's word).
    db.table("directory").add_column("key_id", str)
    db.table("directory").add_column("author_key", str)
    db.table("directory").add_column("key_confirmed_at", float)


def m010_bounds(db: Database) -> None:
    # Quotas count rows per host, so each table that holds remote things gets the lower-case
    # host of its actor (filled in for rows already there); pruning reads the time columns.
    def host(url: str) -> str:
        try:
            return host_of(url)
        except MalformedDocument:
            return ""

    db.conn.create_function("amity_host", 1, host, deterministic=True)
    # The full-text index does not change with the host: its update trigger is set aside
    # while the column is filled, so a large directory is not re-indexed.
    trigger = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'directory_au'"
    ).fetchone()
    if trigger:
        db.execute("DROP TRIGGER directory_au")
    for table, column in (
        ("remote_actors", "id"),
        ("reports", "actor"),
        ("directory", "actor"),
        ("revocations", "authority"),
    ):
        db.table(table).add_column("host", str)
        db.execute(f"UPDATE {table} SET host = amity_host({column})")
        db.table(table).create_index(["host"])
    if trigger:
        db.execute(trigger[0])
    db.table("remote_actors").create_index(["fetched_at"])
    db.table("followers").create_index(["actor"])  # "is this actor referenced?"
    db.table("following").create_index(["actor"])
    db.table("seen_activities").create_index(["received_at"])
    db.table("reports").create_index(["actor"])
    db.table("reports").create_index(["received_at"])
    db.table("revocations").create_index(["authority"])
    db.table("outbox").create_index(["published"])
    db.table("deliveries").create_index(["created_at"])
    db.table("deliveries").create_index(["activity_id"])
    # Objects Amity has no use for are no longer kept (only profiles, in `directory`).
    db.execute("DELETE FROM objects")


def m011_follow_requests(db: Database) -> None:
    # Follows waiting for the operator's approval (the follow policy), per local account;
    # `follow` is the Follow as the Accept or Reject will quote it, `received_at` epoch
    # seconds (requests expire).
    db.table("follow_requests").create(
        {
            "handle": str,
            "actor": str,
            "host": str,
            "name": str,
            "inbox": str,
            "personal_inbox": str,
            "follow": str,
            "received_at": float,
        },
        pk=("handle", "actor"),
    )
    db.table("follow_requests").create_index(["handle", "host"])
    db.table("follow_requests").create_index(["received_at"])
    # Followers are counted per host (caps per host); a follower recorded before with an
    # inbox on another host than its actor's is dropped: it could aim deliveries at a third
    # party, and it can follow again under the new rules.
    db.table("followers").add_column("host", str)
    for actor, inbox in db.execute("SELECT actor, inbox FROM followers").fetchall():
        host = host_or_none(actor)
        if host is None or host != host_or_none(inbox):
            db.execute("DELETE FROM followers WHERE actor = ?", [actor])
        else:
            db.execute("UPDATE followers SET host = ? WHERE actor = ?", [host, actor])
    db.table("followers").create_index(["handle", "host"])


def m012_partnerships(db: Database) -> None:
    # Partnership proposals and partnerships, one row per local school (`handle`) and
    # partnership id. `role`: outgoing (this school proposed), incoming (asked), arranged
    # (this authority proposed the pair). `partner` is the other school as this school sees
    # it (for an arranged row, the first school), `partner_name` its name from its signed
    # profile when the row was made; `host` the proposer's host, for quotas on
    # what strangers propose. `document` is the Partnership with the proofs held; `signed` 1
    # once this actor's own proof is on it (it then holds a place of the school's capacity);
    # `end_time` the Offer's endTime in epoch seconds; times are epoch seconds.
    db.table("partnerships").create(
        {
            "handle": str,
            "id": str,
            "short": str,
            "role": str,
            "proposer": str,
            "partner": str,
            "partner_name": str,
            "host": str,
            "state": str,
            "signed": int,
            "document": str,
            "offer_id": str,
            "inboxes": str,
            "end_time": float,
            "created_at": float,
            "changed_at": float,
            "reason": str,
        },
        pk=("handle", "id"),
    )
    db.table("partnerships").create_index(["handle", "state"])
    db.table("partnerships").create_index(["handle", "partner"])
    db.table("partnerships").create_index(["proposer", "state"])
    db.table("partnerships").create_index(["host", "state"])
    db.table("partnerships").create_index(["state", "end_time"])
    db.table("partnerships").create_index(["changed_at"])


def m013_delivery_signature(db: Database) -> None:
    # How a delivery is signed: 'rfc9421' (Ed25519, to an inbox of a known Amity node),
    # NULL for draft-cavage rsa-sha256 (everyone else, and the fallback after a 401).
    db.table("deliveries").add_column("signature", str)
    # Which queued inboxes are Amity actors' is looked up by inbox at every enqueue.
    db.table("remote_actors").create_index(["inbox"])
    db.table("remote_actors").create_index(["shared_inbox"])
