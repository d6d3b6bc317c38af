"""The database schema as an ordered list of migrations, applied at every start.

Each layer creates its own tables: the steps for federation/'s tables are in
amity/federation/schema.py and take their place in this list by name. Never edit a
migration that has shipped: add a new one, so that a node made by an older version opens
in a newer one.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

from ..federation import schema as federation

migrations = Migrations("amity")


@migrations()
def m001_actors(db: Database) -> None:
    db.table("actors").create(
        {"handle": str, "kind": str, "published": str},
        pk="handle",
    )


@migrations()
def m002_profiles(db: Database) -> None:
    # `data` is the import format; `document` the signed object exactly as served.
    db.table("profiles").create(
        {"handle": str, "data": str, "document": str, "published": str, "updated": str},
        pk="handle",
        foreign_keys=[("handle", "actors", "handle")],
    )


migrations(name="m003_federation")(federation.m003_federation)
migrations(name="m004_directory")(federation.m004_directory)


@migrations()
def m005_pause_and_withdraw(db: Database) -> None:
    # A withdrawn profile keeps its row (and its last `updated`) so a later one is newer.
    db.table("profiles").add_column("deleted_at", str)
    federation.m005_directory_paused(db)


@migrations()
def m006_endorsements(db: Database) -> None:
    federation.m006_endorsements(db)
    # On an authority: what it issued, to whom, and where to send a revocation.
    db.table("issued_endorsements").create(
        {
            "id": str,
            "school": str,
            "school_inbox": str,
            "issued": str,
            "expires": str,
            "revoked_at": str,
            "document": str,
        },
        pk="id",
    )
    db.table("issued_endorsements").create_index(["school"])


@migrations()
def m007_lan_peers(db: Database) -> None:
    # Amity nodes advertised on the local network (zeroconf), found afresh each run.
    db.table("lan_peers").create(
        {"name": str, "actor": str, "kind": str, "url": str, "seen_at": float}, pk="name"
    )


migrations(name="m008_listing_keys")(federation.m008_listing_keys)
migrations(name="m010_bounds")(federation.m010_bounds)
migrations(name="m011_follow_requests")(federation.m011_follow_requests)
migrations(name="m012_partnerships")(federation.m012_partnerships)
migrations(name="m013_delivery_signature")(federation.m013_delivery_signature)


@migrations()
def m014_accounts(db: Database) -> None:
    # Every school account this node hosts (its first account too): a row per handle, kept
    # after removal (removed_at) so the actor answers 410 Gone rather than 404.
    db.table("accounts").create(
        {"handle": str, "created": str, "moved_to": str, "removed_at": str},
        pk="handle",
        not_null={"created"},
    )
    db.execute(
        "INSERT INTO accounts (handle, created) SELECT handle, published FROM actors "
        "ORDER BY published"
    )
    # Delivery turns keep the queue fair between accounts (federation/delivery_queue.py).
    db.table("deliveries").add_column("turn", int, not_null_default=0)
    db.table("deliveries").create_index(["state", "turn"])
    db.table("deliveries").create_index(["handle", "state", "turn"])
    # Endorsements held per local school (each hosted school carries its own), one per
    # authority and school.
    db.table("held_endorsements").add_column("school", str)
    db.execute("UPDATE held_endorsements SET school = json_extract(document, '$.object')")
    db.execute("DROP INDEX IF EXISTS idx_held_endorsements_authority")
    db.table("held_endorsements").create_index(["school", "authority"], unique=True)
