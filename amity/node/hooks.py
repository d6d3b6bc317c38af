"""What this node does when the inbox applies an activity (federation's InboxHooks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from ..federation import relations
from ..protocol import activities
from ..protocol.actor import ActorUrls
from ..protocol.endorsement import Endorsement, revoked_endorsement
from . import endorsement_actions, outbox, partnerships
from .node import Node
from .school_accounts import active_handles, local_handle


class NodeHooks:
    """Accepts follows; a school introduces itself to hubs and keeps its endorsements; a hub
    relays what is new."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # Set by the app once the directory sync exists: a hub's Accept starts a sync.
        self.wake_sync: Callable[[], None] = lambda: None
        # Set by the app: an endorsement given or revoked makes the school re-publish.
        self.wake_liveness: Callable[[], None] = lambda: None
        # Set by the app: a relay (queued from directory sync, say) wakes the delivery worker.
        self.queued: Callable[[], None] = lambda: None
        # Schools whose held endorsements changed: the liveness task re-publishes them.
        self.outdated: set[str] = set()

    def accept_follow(self, db: Database, handle: str, follow: dict[str, Any], inbox: str) -> None:
        outbox.answer_follow(
            db,
            ActorUrls(self.node.config.base_url, handle),
            follow,
            inbox,
            self.node.now(),
            self.node.clock().timestamp(),
            accept=True,
        )

    def follow_accepted(
        self, db: Database, actor: dict[str, Any] | None, handle: str | None = None
    ) -> None:
        """A hub took an account as a follower: send it that account's profile, then read
        its directory. The node's first account follows hubs for every school it hosts, so
        their profiles go to the hub too, each as its own school's Update."""
        if actor is None or actor.get("nodeKind") != "hub":
            return
        inbox = actor.get("inbox")
        if isinstance(inbox, str):
            handle = handle or self.node.config.handle
            handles = [handle]
            if handle == self.node.config.handle:
                handles += [h for h in active_handles(db) if h != handle]
            for each in handles:
                self._send_profile(db, each, inbox)
        self.wake_sync()

    def _send_profile(self, db: Database, handle: str, inbox: str) -> None:
        profile = self.node.store.profile(handle)
        if profile is None:
            return
        urls = ActorUrls(self.node.config.base_url, handle)
        update = activities.update(
            outbox.new_activity_id(urls), urls.id, profile.document, urls.followers, self.node.now()
        )
        outbox.send(db, handle, update, [inbox], self.node.now(), self.node.clock().timestamp())

    def profile_stored(self, db: Database, document: dict[str, Any], via: str | None) -> None:
        """On a hub, every new profile version goes on to its followers, except back to the
        node it came from and to its author, who both have it."""
        self._relay(db, document, [via, document.get("attributedTo")])

    def profile_removed(self, db: Database, delete: dict[str, Any], via: str | None) -> None:
        """On a hub, a school's signed Delete of its profile goes on like its profiles do."""
        self._relay(db, delete, [via, delete.get("actor")])

    def endorsement_received(self, db: Database, endorsement: Endorsement) -> None:
        """An authority endorsed one of this node's schools: carried from its next profile
        version on."""
        handle = local_handle(db, self.node.config, endorsement.school)
        if handle is None:
            return
        if endorsement_actions.receive(self.node.for_school(handle), endorsement):
            self.outdated.add(handle)
            self.wake_liveness()

    def endorsement_revoked(self, db: Database, delete: dict[str, Any], via: str) -> None:
        """A hub relays the revocation; a school holding the endorsement stops carrying it."""
        revoked = revoked_endorsement(delete)
        rows = db.execute("SELECT school FROM held_endorsements WHERE id = ?", [revoked]).fetchall()
        for (school,) in rows:
            handle = local_handle(db, self.node.config, school)
            if handle is not None:
                self.outdated.add(handle)
        if rows or self.node.config.kind == "school":
            self.wake_liveness()  # it re-publishes without it
        self._relay(db, delete, [via, delete.get("actor")])

    def school_profile(self, db: Database, handle: str) -> dict[str, Any] | None:
        """The local school's current profile (its import format)."""
        stored = self.node.store.profile(handle)
        return stored.data if stored is not None else None

    def partnership_overbooked(self, db: Database, handle: str, partnership_id: str) -> None:
        partnerships.end_overbooked(self.node, handle, partnership_id)

    def _relay(self, db: Database, obj: dict[str, Any], skip: list[Any]) -> None:
        """On a hub: an Announce of `obj` to every follower but the node it came from and
        the actor it is about."""
        if self.node.config.kind != "hub":
            return
        urls = self.node.urls
        announce = activities.announce(
            outbox.new_activity_id(urls), urls.id, obj, urls.followers, self.node.now()
        )
        exclude = [actor for actor in skip if isinstance(actor, str)]
        inboxes = relations.follower_inboxes(db, urls.handle, exclude=exclude)
        outbox.send(
            db, urls.handle, announce, inboxes, self.node.now(), self.node.clock().timestamp()
        )
        self.queued()
