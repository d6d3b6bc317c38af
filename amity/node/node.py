"""A node opened from its data directory, and the operations the CLI and the app share."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..federation import actor_cache, blocklist, directory, endorsement_store, relations
from ..federation.signer import Signer
from ..protocol import activities
from ..protocol.activities import host_of
from ..protocol.actor import ActorUrls, actor_document
from ..protocol.endorsement import read_endorsement
from ..protocol.profile import display_name
from ..protocol.profile_document import profile_document
from ..protocol.proofs import ProofInfo, sign_document
from . import account_moves, outbox, wake
from .clock import Clock, format_time, later_than, system_clock
from .config import (
    NodeConfig,
    check_base_url,
    check_handle,
    check_kind,
    config_exists,
    default_port,
    load_config,
    write_config,
)
from .errors import NodeError
from .key_cache import KeyCache
from .keys import ActorKeys, generate_keys, keys_stamp, load_keys, replace_keys, save_keys
from .school_accounts import account_row, check_school, school_handles
from .storage import Store, StoredProfile, open_database


@dataclass
class Node:
    """Configuration, storage and keys of one node, acting for one of its accounts:
    `handle`, the node's first account (config.handle) unless opened for another school."""

    config: NodeConfig
    store: Store
    keys: ActorKeys
    clock: Clock = field(default=system_clock)
    keys_stamp: tuple[int, ...] = ()
    changes_at_open: int = 0
    handle: str = ""
    key_cache: KeyCache | None = None
    # A view made by for_school shares its parent's store and leaves closing it to the parent.
    owns_store: bool = True

    def __post_init__(self) -> None:
        self.handle = self.handle or self.config.handle
        self.keys_stamp = keys_stamp(self.config.keys_dir, self.handle)
        if self.key_cache is None:
            self.key_cache = KeyCache(self.config.keys_dir)
            self.key_cache.put(self.handle, self.keys, self.keys_stamp)
        self.changes_at_open = self.store.db.conn.total_changes

    @classmethod
    def open(cls, data_dir: Path, clock: Clock = system_clock, school: str | None = None) -> Node:
        """The node in `data_dir`, acting for the hosted school `school` or (None) for its
        first account; NodeError naming `amity school list` for an unknown school."""
        config = load_config(data_dir)
        store = Store(open_database(config.database_path))
        handle = school or config.handle
        try:
            if handle != config.handle:
                check_school(store.db, handle)
            keys = load_keys(config.keys_dir, handle)
        except NodeError:
            store.close()
            raise
        return cls(config, store, keys, clock, handle=handle)

    def for_school(self, handle: str) -> Node:
        """A view acting for the hosted school `handle` that shares this node's database
        connection and key cache (closing it leaves the database open)."""
        if handle == self.handle:
            return self
        if handle != self.config.handle:
            check_school(self.store.db, handle)
        assert self.key_cache is not None
        return self.view(handle, self.key_cache.get(handle))

    def view(self, handle: str, keys: ActorKeys) -> Node:
        """A view acting for the account `handle` with `keys`, sharing this node's database
        connection and key cache (closing it leaves the database open); no checks."""
        return Node(
            self.config,
            self.store,
            keys,
            self.clock,
            handle=handle,
            key_cache=self.key_cache,
            owns_store=False,
        )

    def add_school(
        self, handle: str, profile: dict[str, Any], keys: ActorKeys | None = None
    ) -> Node:
        """Host a new school account with its own keys and signed profile (hosting.py)."""
        from .hosting import add_school

        return add_school(self, handle, profile, keys)

    def remove_school(self, handle: str) -> None:
        """Withdraw a hosted school everywhere and stop serving it (hosting.py)."""
        from .hosting import remove_school

        remove_school(self, handle)

    def school_handles(self) -> list[str]:
        """Every school this node hosts (its first account too when it is a school), sorted."""
        return school_handles(self.store.db, self.config)

    @property
    def kind(self) -> str:
        """The kind of the account acted for: the node's own, or school for a hosted one."""
        return self.config.kind if self.handle == self.config.handle else "school"

    @property
    def is_first_account(self) -> bool:
        return self.handle == self.config.handle

    def close(self) -> None:
        """Close the database; if this process changed it (queued a delivery, say), tell a
        node serving the same directory to look at its queue now."""
        if not self.owns_store:
            return
        try:
            changed = self.store.db.conn.total_changes != self.changes_at_open
        except sqlite3.ProgrammingError:  # closed already
            return
        self.store.close()
        if changed:
            wake.poke(self.config.data_dir)

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def urls(self) -> ActorUrls:
        return ActorUrls(self.config.base_url, self.handle)

    def profile(self) -> StoredProfile | None:
        return self.store.profile(self.handle)

    def actor_document(self) -> dict[str, Any]:
        """The account's actor, named after its school profile when it has one."""
        self.reload_keys_if_rotated()
        actor = self.store.actor(self.handle)
        if actor is None:
            raise NodeError(f"the database has no account {self.handle!r}")
        profile = self.profile()
        row = account_row(self.store.db, self.handle)
        return actor_document(
            self.urls,
            self.kind,
            name=display_name(profile.data) if profile else self.handle,
            summary=profile.data.get("description") if profile else None,
            rsa_public_pem=self.keys.rsa_public_pem,
            ed25519_public=self.keys.ed25519_public,
            published=actor["published"],
            has_profile=profile is not None,
            # Some followers wait for the operator (fediverse servers show "request sent").
            manually_approves=self.config.follow_policy != "accept-all",
            also_known_as=account_moves.aliases(self.store.db, self.handle),
            moved_to=row["moved_to"] if row else None,
            removed=row["removed_at"] if row else None,
        )

    def publish_profile(self, data: dict[str, Any], paused: bool | None = None) -> StoredProfile:
        """Sign and store a validated profile as the new current version; `paused` None keeps
        the listing paused or not as it was."""
        if self.kind != "school":
            raise NodeError(
                f"this node is a {self.kind}; school profiles belong on school nodes "
                "(or hosted schools: `amity school add`)"
            )
        previous = self.store.profile(self.handle, include_withdrawn=True)
        current = self.profile()
        now = self.clock()
        updated = later_than(previous.updated if previous else None, now)
        published = current.published if current else updated
        if paused is None:
            paused = current.paused if current else False
        urls = self.urls
        held = self.held_endorsements()
        document = profile_document(
            data,
            profile_id=urls.profile,
            actor_id=urls.id,
            published=published,
            updated=updated,
            paused=paused,
            endorsements=held,
        )
        signed = sign_document(document, self.keys.ed25519_seed, urls.ed25519_key_id, updated)
        stored = StoredProfile(data=data, document=signed, published=published, updated=updated)
        with self.store.db.atomic():
            self.store.save_profile(self.handle, stored)
            directory.store_profile(
                self.store.db,
                signed,
                self.clock().timestamp(),
                [read_endorsement(doc) for doc in held],
                ProofInfo(urls.ed25519_key_id, updated, self.keys.ed25519_public),
                self.clock().timestamp(),
            )
            outbox.update_object(
                self.store.db, urls, signed, updated, self.clock().timestamp(), self.config.handle
            )
        return stored

    def held_endorsements(self) -> list[dict[str, Any]]:
        """The endorsements this school carries in its next profile version: in force now
        and made out to the key it signs with now."""
        found = endorsement_store.held_documents(self.store.db, self.now(), self.urls.id)
        return [doc for doc in found if read_endorsement(doc).key == self.keys.ed25519_public]

    def endorsements_outdated(self) -> bool:
        """Whether the published profile carries other endorsements than it should now
        (one was given, revoked or expired since it was signed)."""
        current = self.profile()
        if current is None:
            return False
        carried = [e.get("id") for e in current.document.get("endorsements", [])]
        return carried != [e["id"] for e in self.held_endorsements()]

    def set_paused(self, paused: bool) -> StoredProfile:
        """Pause the listing (hidden from directories, kept everywhere) or resume it."""
        current = self.profile()
        if current is None:
            raise NodeError("this school has no profile to pause or resume")
        if current.paused == paused:
            raise NodeError(f"the listing is already {'paused' if paused else 'listed'}")
        return self.publish_profile(current.data, paused=paused)

    def withdraw_profile(self) -> str:
        """Withdraw the profile everywhere: a signed Delete to followers and hubs, who relay
        it; returns when it was deleted."""
        current = self.profile()
        if current is None:
            raise NodeError("this school has no profile to delete")
        urls = self.urls
        when = later_than(current.updated, self.clock())
        activity = activities.delete(
            outbox.new_activity_id(urls),
            urls.id,
            urls.profile,
            urls.followers,
            when,
            former_type="SchoolProfile",
        )
        signed = sign_document(activity, self.keys.ed25519_seed, urls.ed25519_key_id, when)
        db = self.store.db
        with db.atomic():
            self.store.withdraw_profile(self.handle, when)
            directory.remove_profile(db, urls.id, when, self.clock().timestamp())
            inboxes = relations.follower_inboxes(db, urls.handle) + relations.followed_hub_inboxes(
                db, urls.handle, also=self.config.handle
            )
            outbox.send(db, urls.handle, signed, inboxes, when, self.clock().timestamp())
        return when

    def signer(self) -> Signer:
        """The keys this account signs HTTP requests with."""
        self.reload_keys_if_rotated()
        return Signer(
            self.urls.rsa_key_id,
            self.keys.rsa_private,
            self.urls.ed25519_key_id,
            self.keys.ed25519_private,
        )

    def reload_keys_if_rotated(self) -> None:
        """Pick up keys that `amity keys rotate` replaced while this process runs."""
        stamp = keys_stamp(self.config.keys_dir, self.handle)
        if stamp != self.keys_stamp:
            assert self.key_cache is not None
            self.keys = self.key_cache.get(self.handle)
            self.keys_stamp = stamp

    def now(self) -> str:
        return format_time(self.clock())

    def follow(self, target: dict[str, Any]) -> str:
        """Queue a Follow of the remote actor `target`; returns the Follow's id."""
        inbox = target.get("inbox")
        if not isinstance(inbox, str):
            raise NodeError(f"{target.get('id')} has no inbox; it cannot be followed")
        if target["id"] == self.urls.id:
            raise NodeError("a node cannot follow itself")
        db = self.store.db
        if blocklist.is_blocked(db, target["id"]):
            raise NodeError(f"{target['id']} is blocked here; unblock it first")
        follow_id = outbox.new_activity_id(self.urls)
        activity = activities.follow(follow_id, self.urls.id, target["id"])
        with db.atomic():
            actor_cache.cache_actor(db, target, self.clock().timestamp())
            relations.set_following(db, self.handle, target["id"], follow_id, "pending", self.now())
            outbox.send(db, self.handle, activity, [inbox], self.now(), self.clock().timestamp())
        return follow_id

    def following_state(self, actor_id: str) -> str | None:
        return relations.following_state(self.store.db, self.handle, actor_id)

    def block(self, target: str) -> str:
        """Block an actor URL or a domain; returns which of the two it was."""
        kind = "actor" if "://" in target else "domain"
        if kind == "actor":
            host_of(target)
        elif not target or "/" in target or "@" in target:
            raise NodeError(f"{target!r}: give a domain (example.org) or an actor URL")
        blocklist.add_block(
            self.store.db, target.lower() if kind == "domain" else target, kind, self.now()
        )
        return kind

    def unblock(self, target: str) -> bool:
        key = target if "://" in target else target.lower()
        with self.store.db.atomic():
            return blocklist.remove_block(self.store.db, key)

    def rotate_keys(self) -> None:
        """New keys; the profile re-signed; followers told of the new actor and profile."""
        new_keys = generate_keys()
        replace_keys(self.config.keys_dir, self.handle, new_keys)
        self.keys = new_keys
        self.keys_stamp = keys_stamp(self.config.keys_dir, self.handle)
        assert self.key_cache is not None
        self.key_cache.put(self.handle, new_keys, self.keys_stamp)
        profile = self.profile()
        if profile is not None:
            self.publish_profile(profile.data)
        with self.store.db.atomic():
            outbox.update_object(
                self.store.db,
                self.urls,
                self.actor_document(),
                self.now(),
                self.clock().timestamp(),
                self.config.handle,
            )


def init_node(
    data_dir: Path,
    *,
    handle: str,
    base_url: str,
    kind: str,
    profile: dict[str, Any] | None = None,
    clock: Clock = system_clock,
) -> Node:
    """Create a node in `data_dir`; refuses when a node is already there.

    Either the whole node is created or nothing is left behind.
    """
    config = NodeConfig(
        data_dir=data_dir,
        handle=check_handle(handle),
        kind=check_kind(kind),
        base_url=check_base_url(base_url),
        bind="127.0.0.1",
        port=default_port(base_url),
    )
    if profile is not None and kind != "school":
        raise NodeError("--profile is for school nodes; hubs and authorities have no profile")
    if config_exists(data_dir) or config.database_path.exists() or config.keys_dir.exists():
        raise NodeError(f"{data_dir} already holds an Amity node; choose another --data")
    created_dir = not data_dir.exists()
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        save_keys(config.keys_dir, handle, generate_keys())
        store = Store(open_database(config.database_path))
        store.add_actor(handle, kind, format_time(clock()))  # and its row in accounts
        node = Node(config, store, load_keys(config.keys_dir, handle), clock)
        if profile is not None:
            node.publish_profile(profile)
        # The config is written last: its presence is what marks a complete node.
        write_config(config)
    except BaseException:
        _remove_partial(data_dir, config, created_dir)
        raise
    return node


def _remove_partial(data_dir: Path, config: NodeConfig, created_dir: bool) -> None:
    if created_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
        return
    for suffix in ("", "-wal", "-shm"):
        Path(f"{config.database_path}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(config.keys_dir, ignore_errors=True)
