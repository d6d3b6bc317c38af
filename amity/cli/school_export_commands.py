"""`amity school export` and `amity school move`: a school moving out to its own node."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ..node.moving_out import check_can_move, move_account
from ..node.node import Node
from ..node.school_export import export_school
from .options import data_option, user_errors
from .remote import fetch_remote_actor, private_network_option
from .school_commands import school


@school.command("export")
@data_option
@click.argument("handle")
@click.argument("directory", type=click.Path(path_type=Path))
@user_errors
def school_export(data_dir: Path, handle: str, directory: Path) -> None:
    """Write what school HANDLE needs to run its own node (keys included) into DIRECTORY."""
    with Node.open(data_dir) as node:
        files = export_school(node, handle, directory)
    click.echo(f"Exported {handle} to {directory} ({len(files)} files; the keys are secret).")
    click.echo(f"Start its own node with: amity init --from {directory} --base-url URL --data D")


@school.command("move")
@data_option
@click.argument("handle")
@click.argument("new_actor")
@private_network_option
@user_errors
def school_move(data_dir: Path, handle: str, new_actor: str, allow_private_network: bool) -> None:
    """Hand school HANDLE over to NEW_ACTOR (its own node, started with init --from)."""
    with Node.open(data_dir) as node:
        check_can_move(node, handle)  # before any network work
        target = asyncio.run(fetch_remote_actor(node, new_actor, allow_private_network))
        move_account(node, handle, target)
    click.echo(f"{handle} moved to {target['id']}; its followers and partners are told.")
    click.echo("The old actor keeps answering with movedTo, so late peers find the new one.")
