"""`amity init --from DIR`: a school's own node, started from its export.

The keys are the school's (so what it signed before still verifies), the actor is new and
names the old one in `alsoKnownAs`, the profile is signed again for the new actor, the
followers and partnerships carry over, and a Follow to every actor the school followed is
queued (they learn the new actor from it; the Move from the old node does the rest).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..federation import actor_cache, relations
from ..federation import partnership_store as store
from ..protocol import activities
from ..protocol.activities import host_of
from . import account_moves, outbox
from .clock import Clock, format_time, system_clock
from .config import (
    NodeConfig,
    check_base_url,
    config_exists,
    default_port,
    write_config,
)
from .errors import NodeError
from .keys import load_keys, save_keys
from .node import Node
from .school_export import SchoolExport, read_export
from .storage import Store, open_database


def init_from_export(
    data_dir: Path, export_dir: Path, base_url: str, clock: Clock = system_clock
) -> Node:
    """Create a node in `data_dir` for the school exported to `export_dir`, reached at
    `base_url`; all of it or nothing."""
    export = read_export(export_dir)
    new_base = check_base_url(base_url)
    if new_base == export.base_url:
        raise NodeError(
            f"--base-url {base_url} is the old node's address; the school's own node needs "
            "its own (like https://amity.myschool.example)"
        )
    if export.kind != "school":
        raise NodeError(f"{export_dir} holds a {export.kind}; only schools move with an export")
    config = NodeConfig(
        data_dir=data_dir,
        handle=export.handle,
        kind="school",
        base_url=new_base,
        bind="127.0.0.1",
        port=default_port(new_base),
    )
    if config_exists(data_dir) or config.database_path.exists() or config.keys_dir.exists():
        raise NodeError(f"{data_dir} already holds an Amity node; choose another --data")
    created_dir = not data_dir.exists()
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        save_keys(config.keys_dir, export.handle, export.keys)
        node_store = Store(open_database(config.database_path))
        node_store.add_actor(export.handle, "school", format_time(clock()))
        node = Node(config, node_store, load_keys(config.keys_dir, export.handle), clock)
        _carry_over(node, export)
        if export.profile is not None:
            node.publish_profile(export.profile)  # signed for the new actor id
        write_config(config)  # last: its presence marks a complete node
    except BaseException:
        if created_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{config.database_path}{suffix}").unlink(missing_ok=True)
            shutil.rmtree(config.keys_dir, ignore_errors=True)
        raise
    return node


def _carry_over(node: Node, export: SchoolExport) -> None:
    """Alias, followers, partnerships and re-follows, in one transaction."""
    db, handle, urls = node.store.db, export.handle, node.urls
    now, stamp = node.now(), node.clock().timestamp()
    with db.atomic():
        account_moves.add_alias(db, handle, export.actor)
        for row in export.followers:
            relations.add_follower(
                db, handle, row["actor"], row["inbox"], row["follow_id"], row["created"]
            )
        for row in export.partnerships:
            proposal = store.Proposal(**{**row, "handle": handle})
            store.insert(db, proposal, host_of(proposal.proposer))
        for row in export.following:
            document = row.get("document")
            inbox = document.get("inbox") if isinstance(document, dict) else None
            if not isinstance(document, dict) or not isinstance(inbox, str):
                continue  # never fetched: follow it again by hand (amity follow)
            actor_cache.cache_actor(db, document, stamp)
            follow_id = outbox.new_activity_id(urls)
            relations.set_following(db, handle, row["actor"], follow_id, "pending", now)
            follow = activities.follow(follow_id, urls.id, row["actor"])
            outbox.send(db, handle, follow, [inbox], now, stamp)
