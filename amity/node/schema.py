"""The database schema as an ordered list of migrations, applied at every start.

Never edit a migration that has shipped: add a new one, so that a node made by an older
version opens in a newer one.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

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
