"""Moves received: a followed or partnered actor moved to another node.

The inbox has checked the HTTP signature (the key is the old actor's own). The handler
checks the Move's shape, that the old actor concerns this node at all (a stranger's Move
is acknowledged and changes nothing), the quota and the chain of moves, then fetches the
target's actor from its own host and requires its alsoKnownAs to name the old actor. A
target that cannot be reached just now (no answer, a 5xx) gets a 429, so the sender's
queue sends the Move again later (a new node down for a day does not lose its followers);
a target that answers but is not the actor, or does not name the old one, is refused (400).
The effect, in the inbox's transaction: every local account that followed the old actor
follows the new one (a Follow queued) and drops the old, and the old actor is no longer
a follower (its new node follows anew); partnerships with the old actor address the new
one; the move is remembered (`remote_moves`), so the proofs the school made under its old
id still count for it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from sqlite_utils import Database

from ..protocol import activities
from ..protocol.activities import IncomingActivity, host_of
from ..protocol.errors import MalformedDocument
from ..protocol.move import MAX_MOVE_BYTES, MAX_MOVE_CHAIN, Move, check_target, read_move
from . import delivery_queue, limits, relations
from .actors import RemoteActors
from .errors import FetchFailed, is_transient
from .inbox_types import Rejected, Sender
from .runner import DbRunner

Effect = Callable[[Database], object]
MAX_MOVES_PER_HOST = 1000  # moves remembered of the actors of one remote host
MAX_MOVES = 100_000  # moves remembered in all


def m015_remote_moves(db: Database) -> None:
    # Moves of remote actors this node applied: `old` moved to `new` (epoch seconds);
    # `host` is old's, for the quota per host.
    db.table("remote_moves").create(
        {"old": str, "new": str, "host": str, "received_at": float}, pk="old"
    )
    db.table("remote_moves").create_index(["new"])
    db.table("remote_moves").create_index(["host"])
    # "Does a local school hold a partnership with this actor?", asked for every Move.
    db.table("partnerships").create_index(["partner"])


def former_ids(db: Database, actor: str) -> list[str]:
    """The ids `actor` had before it moved here, nearest first (at most MAX_MOVE_CHAIN)."""
    found: list[str] = []
    current = actor
    for _ in range(MAX_MOVE_CHAIN + 1):
        row = db.execute("SELECT old FROM remote_moves WHERE new = ? LIMIT 1", [current]).fetchone()
        if row is None or row[0] in found or row[0] == actor:
            break
        found.append(row[0])
        current = row[0]
    return found


def concerned(db: Database, actor: str) -> bool:
    """Whether a local account follows `actor`, is followed by it or holds a partnership
    with it."""
    for sql in (
        "SELECT 1 FROM following WHERE actor = ? LIMIT 1",
        "SELECT 1 FROM followers WHERE actor = ? LIMIT 1",
        "SELECT 1 FROM partnerships WHERE partner = ? OR proposer = ? LIMIT 1",
    ):
        args = [actor] * sql.count("?")
        if db.execute(sql, args).fetchone() is not None:
            return True
    return False


def move_refusal(db: Database, move: Move) -> tuple[int, str] | None:
    """Why `move` is refused here (status, reason); (200, ...) for a repeat of one applied."""
    row = db.execute("SELECT new FROM remote_moves WHERE old = ?", [move.old]).fetchone()
    if row is not None:
        if row[0] == move.new:
            return 200, "this move was applied before"
        return 409, f"{move.old} moved to {row[0]} already; an account moves once"
    earlier = former_ids(db, move.old)
    if move.new in earlier:
        return 409, f"{move.new} moved to {move.old} before: a move back would make a loop"
    if len(earlier) >= MAX_MOVE_CHAIN:
        return 409, f"{move.old} has moved {len(earlier)} times (at most {MAX_MOVE_CHAIN})"
    held = db.execute(
        "SELECT count(*) FROM remote_moves WHERE host = ?", [host_of(move.old)]
    ).fetchone()[0]
    if held >= MAX_MOVES_PER_HOST:
        return 429, f"this node keeps at most {MAX_MOVES_PER_HOST} moves of {host_of(move.old)}"
    if db.execute("SELECT count(*) FROM remote_moves").fetchone()[0] >= MAX_MOVES:
        return 429, f"this node keeps at most {MAX_MOVES} moves"
    return None


def apply_move(
    db: Database,
    move: Move,
    target: Mapping[str, Any],
    local_actors: Mapping[str, str],
    now: float,
    published: str,
) -> None:
    """Follow the new actor wherever the old one was followed, and address partnerships
    to it; remember the move (call inside a transaction)."""
    inbox = target.get("inbox")
    if not isinstance(inbox, str):
        raise MalformedDocument(f"{move.new} has no inbox")
    host_of(inbox)
    db.table("remote_moves").insert(
        {"old": move.old, "new": move.new, "host": host_of(move.old), "received_at": now},
        pk="old",
    )
    local_ids = {handle: actor for actor, handle in local_actors.items()}
    rows = db.execute("SELECT handle FROM following WHERE actor = ?", [move.old]).fetchall()
    for (handle,) in rows:
        local = local_ids.get(handle)
        if local is None:
            continue  # not an account this inbox serves
        db.execute("DELETE FROM following WHERE handle = ? AND actor = ?", [handle, move.old])
        if local == move.new or relations.following_state(db, handle, move.new):
            continue
        follow_id = f"{local}/activities/{uuid.uuid4()}"
        relations.set_following(db, handle, move.new, follow_id, "pending", published)
        follow = activities.follow(follow_id, local, move.new)
        delivery_queue.enqueue(db, handle, follow, [inbox], now, published)
    # The old actor's inbox is gone with it; its new node follows anew (init --from).
    relations.remove_follower(db, None, move.old)
    db.execute("UPDATE partnerships SET partner = ? WHERE partner = ?", [move.new, move.old])
    held = db.execute(
        "SELECT handle, id, inboxes FROM partnerships WHERE inboxes LIKE ?",
        ["%" + json.dumps(move.old)[1:-1].replace("%", "") + "%"],
    ).fetchall()
    for handle, partnership_id, text in held:
        inboxes = json.loads(text)
        if move.old not in inboxes:
            continue
        inboxes = {move.new if k == move.old else k: v for k, v in inboxes.items()}
        inboxes[move.new] = inbox
        db.execute(
            "UPDATE partnerships SET inboxes = ? WHERE handle = ? AND id = ?",
            [json.dumps(inboxes), handle, partnership_id],
        )


def _refused(refusal: tuple[int, str]) -> Rejected:
    status, reason = refusal
    return Rejected(status, reason, retry_after=limits.QUOTA_RETRY_AFTER if status == 429 else None)


class MoveInbox:
    """Applies the Moves of actors this node's accounts follow or partner with."""

    def __init__(
        self,
        db: DbRunner,
        actors: RemoteActors,
        *,
        local_actors: Mapping[str, str],
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.actors = actors
        self.local_actors = local_actors  # actor id -> handle
        self.clock = clock

    async def move(self, activity: IncomingActivity, sender: Sender) -> Effect | None:
        size = len(json.dumps(activity.document, ensure_ascii=False).encode())
        if size > MAX_MOVE_BYTES:
            raise Rejected(400, f"Move is {size} bytes; this node takes at most {MAX_MOVE_BYTES}")
        move = read_move(activity.document)
        if sender.owner != move.old:
            raise Rejected(401, "a Move must be signed by the actor that moves")
        refusal = await self.db(partial(move_refusal, move=move))
        if refusal is not None:
            if refusal[0] == 200:
                return None
            raise _refused(refusal)
        if not await self.db(partial(concerned, actor=move.old)):
            return None  # a stranger's Move: no local account knows it, nothing to change
        try:
            target = await self.actors.get(move.new, refresh=True)
        except FetchFailed as exc:
            if not is_transient(exc):
                raise  # the inbox answers 400: the target is not there, or not an actor
            # The new node is down for a while: the Move is fine, only its check must wait.
            # A 429 has the sender's queue (ours, Mastodon's) send it again later, where a
            # 4xx would be final; the sender keeps the Move, so nothing is held here.
            raise Rejected(
                429, f"cannot check the Move's target just now ({exc}); send it again later"
            ) from exc
        check_target(move, target)
        self.actors.forget(move.old)
        now = self.clock()
        stamp, published = now.timestamp(), now.strftime("%Y-%m-%dT%H:%M:%SZ")

        def effect(db: Database) -> None:
            again = move_refusal(db, move)
            if again is not None:
                if again[0] == 200:
                    return
                raise _refused(again)
            apply_move(db, move, target, self.local_actors, stamp, published)

        return effect
