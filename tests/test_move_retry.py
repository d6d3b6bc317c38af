"""A Move whose new node is down when it arrives is not lost: the receiver answers 429
(it cannot check the target just now), the sender's queue sends it again, and once the
new node is back the follower follows the new actor. Real nodes, as subprocesses."""

from __future__ import annotations

from pathlib import Path

from .helpers import ServedNode, amity, free_port, make_school, query, wait_until

PRIVATE = "--allow-private-network"


def _move_delivery(data: Path) -> list[tuple[str, int, str | None]]:
    return query(
        data,
        "SELECT d.state, d.attempts, d.last_error FROM deliveries d "
        "JOIN outbox o ON o.id = d.activity_id WHERE o.type = 'Move'",
    )


def test_a_move_waits_for_a_new_node_that_is_down(tmp_path: Path) -> None:
    port, follower_port, new_port = free_port(), free_port(), free_port()
    old_data = make_school(tmp_path, "oaxaca", port)  # retries from 1 s
    follower_data = make_school(tmp_path, "tilleuls", follower_port)
    old_actor = f"http://127.0.0.1:{port}/actors/oaxaca"
    new_url = f"http://127.0.0.1:{new_port}"
    new_actor = f"{new_url}/actors/oaxaca"
    export = tmp_path / "export"
    amity("school", "export", "oaxaca", str(export), data=old_data)
    new_data = tmp_path / "own"
    amity("init", "--from", str(export), "--base-url", new_url, data=new_data)

    old = ServedNode(old_data, port, PRIVATE)
    follower = ServedNode(follower_data, follower_port, PRIVATE)
    new = ServedNode(new_data, new_port, PRIVATE)
    try:
        old.start()
        follower.start()
        amity("follow", old_actor, PRIVATE, data=follower_data)
        wait_until(lambda: query(follower_data, "SELECT state FROM following") == [("accepted",)])
        # The move is made while the new node serves (the command checks it), and sent
        # once it has stopped: the follower cannot check the target when the Move comes.
        old.stop()
        new.start()
        amity("school", "move", "oaxaca", new_actor, PRIVATE, data=old_data)
        new.stop()
        old.start()

        def refused_for_now() -> bool:
            rows = _move_delivery(old_data)
            return bool(rows) and rows[0][1] >= 2

        wait_until(refused_for_now, timeout=30)
        [(state, _, error)] = _move_delivery(old_data)
        assert state == "pending" and "HTTP 429" in (error or ""), error
        assert "just now" in (error or "")
        assert query(follower_data, "SELECT actor FROM following") == [(old_actor,)]

        new.start()  # back: the next retry of the Move gets through
        wait_until(
            lambda: (
                query(follower_data, "SELECT actor, state FROM following")
                == [(new_actor, "accepted")]
            ),
            timeout=60,
        )
        assert _move_delivery(old_data) == []  # delivered, gone from the queue
        assert query(new_data, "SELECT actor FROM followers") == [
            (f"http://127.0.0.1:{follower_port}/actors/tilleuls",)
        ]
    finally:
        for node in (old, follower, new):
            node.stop()
