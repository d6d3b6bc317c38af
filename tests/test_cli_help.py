"""Honest mistakes get an answer that says how to fix them: the flag to add, the reason a
peer refused, the command to run; and dead deliveries can be retried or dropped."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from amity.cli.main import cli
from amity.federation import delivery_queue
from amity.node.node import Node

from .helpers import ServedNode, amity, free_port, make_school, query, wait_until

PRIVATE = "--allow-private-network"
REFUSED = re.compile(r"^refused by the server \(HTTP 401: \S.*\)$")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_a_loopback_follow_without_the_flag_names_it(school: Node) -> None:
    data = str(school.config.data_dir)
    for target in ("alpha@127.0.0.1:8301", "http://127.0.0.1:8301/actors/alpha", "x@localhost"):
        result = run("follow", target, "--data", data)
        assert result.exit_code == 1
        assert len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("error: http://")
        assert (
            "is a private, loopback or local address; add --allow-private-network" in result.stderr
        )


def test_no_node_here_shows_a_complete_init(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    result = run("queue", "--data", str(empty))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no Amity node in {empty}; create one with: amity init --data {empty} "
        "--name myschool --base-url https://amity.myschool.example\n"
    )
    assert not empty.exists()


def test_a_follow_waits_for_a_node_that_is_starting(tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()
    a, b = make_school(tmp_path, "a", port_a), make_school(tmp_path, "b", port_b)
    late = ServedNode(a, port_a, PRIVATE)
    starter = threading.Timer(1.5, late.start)
    starter.start()
    try:
        result = amity("follow", f"a@127.0.0.1:{port_a}", PRIVATE, data=b)
        assert f"waiting for http://127.0.0.1:{port_a} to answer..." in result.stderr
        assert "Follow of" in result.stdout
    finally:
        starter.join()
        late.stop()


def test_a_node_that_never_answers_is_a_sentence(tmp_path: Path) -> None:
    port = free_port()
    b = make_school(tmp_path, "b", free_port())
    started = time.monotonic()
    result = amity("follow", f"http://127.0.0.1:{port}/actors/a", PRIVATE, data=b, check=False)
    assert 9 < time.monotonic() - started < 20  # it gave the node ten seconds to start
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"waiting for http://127.0.0.1:{port} to answer...",
        f"error: could not connect to 127.0.0.1:{port} (connection refused): is the node running?",
    ]


def test_a_peers_refusal_is_logged_queued_and_shown_with_its_reason(
    tmp_path: Path, served: Any
) -> None:
    # The usual mistake: `a` serves without --allow-private-network, so it cannot fetch the
    # key of `b` on 127.0.0.1 and refuses b's Follow with 401 and a reason.
    port_a, port_b = free_port(), free_port()
    a, b = make_school(tmp_path, "a", port_a), make_school(tmp_path, "b", port_b)
    served(a, port_a, "--no-lan-discovery")
    node_b = served(b, port_b, PRIVATE, "--no-lan-discovery")
    actor_a = f"http://127.0.0.1:{port_a}/actors/a"
    waited = amity("follow", actor_a, PRIVATE, "--wait", data=b, check=False)
    assert waited.returncode == 1
    message = waited.stderr.strip()
    assert message.startswith("error: the Follow was not delivered: refused by the server ")
    assert message.endswith(f"(amity queue --data {b})")
    error = query(b, "SELECT last_error FROM deliveries")[0][0]
    assert REFUSED.match(error), error
    assert error in message

    rows = json.loads(amity("queue", "--json", data=b).stdout)
    # A 401 is retried: the peer may fetch the key later (here, never).
    assert [(r["state"], r["last_error"]) for r in rows] == [("retrying", error)]
    shown = amity("queue", data=b).stdout
    assert shown.startswith("0 pending, 1 retrying, 0 dead, 0 held\n")
    assert f"#{rows[0]['id']} [retrying] {actor_a}/inbox" in shown
    assert f"last error: {error}" in shown
    assert "amity queue retry ID|--all" in shown
    following = amity("following", data=b).stdout
    assert f"{actor_a}  [pending]" in following
    assert f"(Follow not delivered: {error})" in following
    assert json.loads(amity("following", "--json", data=b).stdout)[0]["last_error"] == error

    # Retried, it gets a full schedule and is sent again (and refused again, for the same
    # reason); dropped, it is gone.
    retried = amity("queue", "retry", str(rows[0]["id"]), data=b)
    assert retried.stdout.startswith("1 delivery due now")
    wait_until(lambda: query(b, "SELECT state, attempts FROM deliveries") == [("pending", 1)])
    assert amity("queue", "drop", str(rows[0]["id"]), data=b).stdout == (
        f"Delivery #{rows[0]['id']} removed from the queue.\n"
    )
    assert json.loads(amity("queue", "--json", data=b).stdout) == []

    node_b.kill(signal.SIGTERM)
    assert node_b.process is not None and node_b.process.stdout is not None
    log = node_b.process.stdout.read()
    assert f"delivery to {actor_a}/inbox refused, retried in " in log
    assert f"s: {error}" in log


def _queued(school: Node, count: int) -> list[int]:
    """`count` Follows queued to hosts that do not exist, the first one dead."""
    for n in range(count):
        school.follow({"id": f"https://p{n}.example/actors/x", "inbox": f"https://p{n}.example/i"})
    db = school.store.db
    ids = [row["id"] for row in delivery_queue.queue_rows(db)]
    first = next(
        d for d in delivery_queue.due_deliveries(db, 1e12, set(), 10, 1.0) if d.id == ids[0]
    )
    delivery_queue.failed(db, first, "refused by the server (HTTP 410)", None, 0.0, 1.0)
    return ids


def test_queue_retry_and_drop(school: Node) -> None:
    data = str(school.config.data_dir)
    dead, pending = _queued(school, 2)
    states = {
        r["id"]: (r["state"], r["attempts"]) for r in delivery_queue.queue_rows(school.store.db)
    }
    assert states == {dead: ("dead", 1), pending: ("pending", 0)}

    for args, problem in [
        (["retry"], "give a delivery ID (from `amity queue`) or --all, not both"),
        (["retry", "7", "--all"], "give a delivery ID (from `amity queue`) or --all, not both"),
        (["retry", "999"], "no delivery #999 in the queue (see: amity queue)"),
        (["drop", "999"], "no delivery #999 in the queue (see: amity queue)"),
    ]:
        result = run("queue", "--data", data, *args)
        assert (result.exit_code, result.stderr) == (1, f"error: {problem}\n")
    assert run("queue", "drop", "x", "--data", data).exit_code == 2

    # --all takes the dead one only (the other was never tried); the group's --data counts.
    # Its host was marked unavailable: it is probed now rather than in twelve hours.
    delivery_queue.mark_unavailable(school.store.db, "p0.example", 0.0, 1e12)
    assert run("queue", "--data", data, "retry", "--all").stdout.startswith("1 delivery due")
    rows = {r["id"]: r for r in delivery_queue.queue_rows(school.store.db)}
    assert (rows[dead]["state"], rows[dead]["attempts"]) == ("pending", 0)
    probe = school.store.db.execute("SELECT next_probe_at FROM hosts").fetchone()[0]
    assert probe == rows[dead]["next_attempt_at"] < 1e12
    assert run("queue", "drop", str(pending), "--data", data).exit_code == 0
    assert [r["id"] for r in delivery_queue.queue_rows(school.store.db)] == [dead]
    assert run("queue", "--data", data).stdout.startswith("0 pending, 0 retrying, 0 dead, 1 held")


def test_queue_wait_says_when_the_node_is_not_serving(school: Node) -> None:
    _queued(school, 2)  # one of them pending
    started = time.monotonic()
    result = amity("queue", "--wait", data=school.config.data_dir)
    assert time.monotonic() - started < 15
    assert result.stdout.startswith("1 pending, 0 retrying, 1 dead")
    assert (
        result.stderr == f"This node is not serving: amity serve --data {school.config.data_dir}\n"
    )
