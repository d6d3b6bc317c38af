"""What this node does when the inbox applies an activity (federation's InboxHooks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from ..federation import relations
from ..protocol import activities
from ..protocol.endorsement import Endorsement
from . import endorsement_actions, outbox, partnerships
from .node import Node


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

    def accept_follow(self, db: Database, handle: str, follow: dict[str, Any], inbox: str) -> None:
        outbox.answer_follow(
            db,
            self.node.urls,
            follow,
            inbox,
            self.node.now(),
            self.node.clock().timestamp(),
            accept=True,
        )

    def follow_accepted(self, db: Database, actor: dict[str, Any] | None) -> None:
        """A hub took us as a follower: send it our profile, then read its directory."""
        if actor is None or actor.get("nodeKind") != "hub":
            return
        profile = self.node.profile()
        inbox = actor.get("inbox")
        if profile is not None and isinstance(inbox, str):
            urls = self.node.urls
            update = activities.update(
                outbox.new_activity_id(urls),
                urls.id,
                profile.document,
                urls.followers,
                self.node.now(),
            )
            outbox.send(
                db, urls.handle, update, [inbox], self.node.now(), self.node.clock().timestamp()
            )
        self.wake_sync()

    def profile_stored(self, db: Database, document: dict[str, Any], via: str | None) -> None:
        """On a hub, every new profile version goes on to its followers, except back to the
        node it came from and to its author, who both have it."""
        self._relay(db, document, [via, document.get("attributedTo")])

    def profile_removed(self, db: Database, delete: dict[str, Any], via: str | None) -> None:
        """On a hub, a school's signed Delete of its profile goes on like its profiles do."""
        self._relay(db, delete, [via, delete.get("actor")])

    def endorsement_received(self, db: Database, endorsement: Endorsement) -> None:
        """An authority endorsed this school: carried from the next profile version on."""
        if endorsement_actions.receive(self.node, endorsement):
            self.wake_liveness()

    def endorsement_revoked(self, db: Database, delete: dict[str, Any], via: str) -> None:
        """A hub relays the revocation; a school stops carrying the endorsement."""
        if self.node.config.kind == "school":
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
