"""`amity follow`, `followers`, `following`, `approve`, `reject`: who follows whom."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import click

from ..federation import relations
from ..node import follow_requests, wake
from ..node.clock import format_time
from ..node.node import Node
from .options import data_option, fail, school_option, user_errors
from .remote import (
    ANSWER_WAIT,
    fetch_remote_actor,
    private_network_option,
    shown_name,
    wait_while_serving,
)


@click.command()
@data_option
@school_option
@click.argument("target")
@private_network_option
@click.option(
    "--wait",
    is_flag=True,
    help=f"Wait (up to {ANSWER_WAIT:g} s) for TARGET to accept; this node must be serving.",
)
@user_errors
def follow(
    data_dir: Path, school: str | None, target: str, allow_private_network: bool, wait: bool
) -> None:
    """Follow a school, hub or authority: NAME@HOST or an actor URL."""
    with Node.open(data_dir, school=school) as node:
        actor = asyncio.run(fetch_remote_actor(node, target, allow_private_network))
        node.follow(actor)
        name = shown_name(actor)
        click.echo(f"Follow of {name} ({actor['id']}) queued.")
        if not wait:
            click.echo(
                "It is delivered while the node serves; `amity queue` shows what is pending."
            )
            return
        # The Follow is committed: the serving node sends it now, not at its next safety
        # poll (closing the node would tell it too, but only after the wait).
        wake.poke(data_dir)
        db, handle = node.store.db, node.handle
        who = "this node" if node.is_first_account else f"school {handle}"
        outcome = wait_while_serving(
            data_dir,
            lambda: (
                relations.following_state(db, handle, actor["id"]) != "pending"
                or actor["id"] in relations.follow_problems(db, handle)
            ),
        )
        state = relations.following_state(db, handle, actor["id"])
        problem = relations.follow_problems(db, handle).get(actor["id"])
    if state == "accepted":
        click.echo(f"{name} accepted: {who} follows it.")
    elif state == "rejected":
        fail([f"{name} rejected the follow"])
    elif problem:
        fail([f"the Follow was not delivered: {problem} (amity queue --data {data_dir})"])
    elif outcome == "not serving":
        fail([f"this node is not serving, so nothing is sent: amity serve --data {data_dir}"])
    else:
        fail([f"no answer from {name} within {ANSWER_WAIT:g} s; `amity following` shows it later"])


@click.command()
@data_option
@school_option
@click.option("--pending", is_flag=True, help="The follow requests waiting for approval.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@user_errors
def followers(data_dir: Path, school: str | None, pending: bool, as_json: bool) -> None:
    """The actors that follow this node, or (--pending) those asking to."""
    if pending:
        _show_follow_requests(data_dir, school, as_json)
        return
    _show_relations(data_dir, school, "followers", as_json, "no followers yet")
    if not as_json:
        with Node.open(data_dir, school=school) as node:
            waiting = len(follow_requests.pending(node))
        if waiting:
            click.echo(f"{waiting} follow request(s) waiting: amity followers --pending")


def _show_follow_requests(data_dir: Path, school: str | None, as_json: bool) -> None:
    with Node.open(data_dir, school=school) as node:
        requests = follow_requests.pending(node)
    rows = [
        {
            "actor": r.actor,
            "address": r.address,
            "since": format_time(datetime.fromtimestamp(r.received_at, UTC)),
        }
        for r in requests
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no follow requests waiting")
        return
    for row in rows:
        click.echo(f"{row['actor']}  ({row['address']})  asked {row['since']}")
    click.echo("Answer with: amity approve ACTOR, or amity reject ACTOR")


@click.command()
@data_option
@school_option
@click.argument("actor")
@user_errors
def approve(data_dir: Path, school: str | None, actor: str) -> None:
    """Accept a pending follow request: ACTOR (URL or NAME@HOST) becomes a follower."""
    with Node.open(data_dir, school=school) as node:
        request = follow_requests.approve(node, actor)
    click.echo(f"Approved {request.address} ({request.actor}): it follows this node now.")
    click.echo("The Accept is delivered while the node serves.")


@click.command()
@data_option
@school_option
@click.argument("actor")
@user_errors
def reject(data_dir: Path, school: str | None, actor: str) -> None:
    """Refuse a pending follow request of ACTOR (URL or NAME@HOST)."""
    with Node.open(data_dir, school=school) as node:
        request = follow_requests.reject(node, actor)
    click.echo(f"Rejected the follow request of {request.address} ({request.actor}).")
    click.echo("The Reject is delivered while the node serves.")


@click.command()
@data_option
@school_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@user_errors
def following(data_dir: Path, school: str | None, as_json: bool) -> None:
    """The actors this node follows, whether each accepted, and why a Follow is stuck."""
    _show_relations(data_dir, school, "following", as_json, "not following anyone yet")


def _show_relations(
    data_dir: Path, school: str | None, table: str, as_json: bool, empty: str
) -> None:
    with Node.open(data_dir, school=school) as node:
        rows = relations.relations(node.store.db, table, node.handle)
        if table == "following":  # a pending follow says why its Follow is not delivered
            problems = relations.follow_problems(node.store.db, node.handle)
            for row in rows:
                row["last_error"] = problems.get(row["actor"])
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo(empty)
    for row in [] if as_json else rows:
        state = f"  [{row['state']}]" if "state" in row else ""
        problem = f"  (Follow not delivered: {row['last_error']})" if row.get("last_error") else ""
        click.echo(f"{row['actor']}{state}  since {row['since']}{problem}")
