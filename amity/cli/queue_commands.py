"""`amity queue` and its `retry` and `drop`: the deliveries waiting or dead."""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.core import ParameterSource

from ..federation import delivery_queue
from ..federation.delivery_queue import STATES, describe_state
from ..node.node import Node
from .options import data_option, fail, user_errors
from .remote import ANSWER_WAIT, format_epoch, wait_while_serving


@click.group(invoke_without_command=True)
@data_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option(
    "--wait",
    is_flag=True,
    help=f"First wait (up to {ANSWER_WAIT:g} s) until the serving node tried every pending one.",
)
@click.pass_context
@user_errors
def queue(ctx: click.Context, data_dir: Path, as_json: bool, wait: bool) -> None:
    """Deliveries waiting, retrying or dead; `retry` and `drop` act on them."""
    if ctx.invoked_subcommand is not None:
        return
    with Node.open(data_dir) as node:
        if wait:
            db = node.store.db
            outcome = wait_while_serving(
                data_dir,
                lambda: all(describe_state(r) != "pending" for r in delivery_queue.queue_rows(db)),
            )
            if outcome == "not serving":
                click.echo(f"This node is not serving: amity serve --data {data_dir}", err=True)
        rows = delivery_queue.queue_rows(node.store.db)
    for row in rows:
        row["state"] = describe_state(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    counts = {state: sum(1 for r in rows if r["state"] == state) for state in STATES}
    click.echo(", ".join(f"{count} {state}" for state, count in counts.items()))
    for row in rows:
        when = (
            "" if row["state"] == "dead" else f", next try {format_epoch(row['next_attempt_at'])}"
        )
        error = f", last error: {row['last_error']}" if row["last_error"] else ""
        click.echo(
            f"  #{row['id']} [{row['state']}] {row['inbox']} after {row['attempts']} "
            f"attempts{when}{error}"
        )
    if counts["dead"] or counts["retrying"] or counts["held"]:
        click.echo("Try again now: amity queue retry ID|--all; remove one: amity queue drop ID")


def _queue_data(ctx: click.Context, data_dir: Path) -> Path:
    """`amity queue --data DIR retry ...` means DIR too, unless the subcommand names one."""
    parent = ctx.parent
    if ctx.get_parameter_source("data_dir") is ParameterSource.DEFAULT and parent is not None:
        return Path(parent.params["data_dir"])
    return data_dir


@queue.command("retry")
@data_option
@click.argument("delivery_id", metavar="ID", type=int, required=False)
@click.option("--all", "retry_all", is_flag=True, help="Every dead, retrying or held delivery.")
@click.pass_context
@user_errors
def queue_retry(
    ctx: click.Context, data_dir: Path, delivery_id: int | None, retry_all: bool
) -> None:
    """Make delivery ID (or --all) due now, with a full retry schedule."""
    if (delivery_id is None) == (not retry_all):
        fail(["give a delivery ID (from `amity queue`) or --all, not both"])
    with Node.open(_queue_data(ctx, data_dir)) as node:
        ids = None if retry_all else [delivery_id or 0]
        changed = delivery_queue.retry_deliveries(node.store.db, ids, node.clock().timestamp())
    if not retry_all and not changed:
        fail([f"no delivery #{delivery_id} in the queue (see: amity queue)"])
    count = f"{len(changed)} delivery" if len(changed) == 1 else f"{len(changed)} deliveries"
    click.echo(f"{count} due now; a serving node sends them within seconds.")


@queue.command("drop")
@data_option
@click.argument("delivery_id", metavar="ID", type=int)
@click.pass_context
@user_errors
def queue_drop(ctx: click.Context, data_dir: Path, delivery_id: int) -> None:
    """Remove delivery ID from the queue: it is never sent."""
    with Node.open(_queue_data(ctx, data_dir)) as node:
        if not delivery_queue.drop_delivery(node.store.db, delivery_id):
            fail([f"no delivery #{delivery_id} in the queue (see: amity queue)"])
    click.echo(f"Delivery #{delivery_id} removed from the queue.")
