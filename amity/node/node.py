"""A node opened from its data directory, and the operations the CLI and the app share."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..protocol.actor import ActorUrls, actor_document
from ..protocol.profile import display_name
from ..protocol.profile_document import profile_document
from ..protocol.proofs import sign_document
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
from .keys import ActorKeys, generate_keys, load_keys, save_keys
from .storage import Store, StoredProfile, open_database


@dataclass
class Node:
    """Configuration, storage and keys of one node's account."""

    config: NodeConfig
    store: Store
    keys: ActorKeys
    clock: Clock = field(default=system_clock)

    @classmethod
    def open(cls, data_dir: Path, clock: Clock = system_clock) -> Node:
        config = load_config(data_dir)
        store = Store(open_database(config.database_path))
        try:
            keys = load_keys(config.keys_dir, config.handle)
        except NodeError:
            store.close()
            raise
        return cls(config, store, keys, clock)

    def close(self) -> None:
        self.store.close()

    @property
    def urls(self) -> ActorUrls:
        return ActorUrls(self.config.base_url, self.config.handle)

    def profile(self) -> StoredProfile | None:
        return self.store.profile(self.config.handle)

    def actor_document(self) -> dict[str, Any]:
        """The account's actor, named after its school profile when it has one."""
        actor = self.store.actor(self.config.handle)
        if actor is None:
            raise NodeError(f"the database has no account {self.config.handle!r}")
        profile = self.profile()
        return actor_document(
            self.urls,
            self.config.kind,
            name=display_name(profile.data) if profile else self.config.handle,
            summary=profile.data.get("description") if profile else None,
            rsa_public_pem=self.keys.rsa_public_pem,
            ed25519_public=self.keys.ed25519_public,
            published=actor["published"],
            has_profile=profile is not None,
        )

    def publish_profile(self, data: dict[str, Any]) -> StoredProfile:
        """Sign and store a validated profile as the new current version."""
        if self.config.kind != "school":
            raise NodeError(
                f"this node is a {self.config.kind}; school profiles belong on school nodes"
            )
        previous = self.profile()
        now = self.clock()
        updated = later_than(previous.updated if previous else None, now)
        published = previous.published if previous else updated
        urls = self.urls
        document = profile_document(
            data, profile_id=urls.profile, actor_id=urls.id, published=published, updated=updated
        )
        signed = sign_document(document, self.keys.ed25519_seed, urls.ed25519_key_id, updated)
        stored = StoredProfile(data=data, document=signed, published=published, updated=updated)
        self.store.save_profile(self.config.handle, stored)
        return stored


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
        store.add_actor(handle, kind, format_time(clock()))
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
