"""`amity school ...`: the schools a node hosts (add, list, remove).

Other modules attach their subcommands to the same `school` group (import, export, move).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

import click

from ..node.node import Node
from ..node.school_accounts import listed_schools
from ..protocol.profile import display_name
from .options import data_option, user_errors
from .profile_file import read_profile


@click.group()
def school() -> None:
    """The schools this node hosts (a ministry, district or NGO hosts many)."""


@school.command("add")
@data_option
@click.argument("handle")
@click.option(
    "--profile", "profile_file", type=click.File("rb"), required=True, help="School profile JSON."
)
@user_errors
def school_add(data_dir: Path, handle: str, profile_file: IO[bytes]) -> None:
    """Host a new school HANDLE with its own keys and the profile in FILE.json."""
    data = read_profile(profile_file)
    with Node.open(data_dir) as node:
        added = node.add_school(handle, data)
        click.echo(f"Added school '{display_name(data)}' as @{handle}@{node.config.host}")
        click.echo(f"  actor:  {added.urls.id}")
    click.echo(f"Act for it with --school {handle} (e.g. amity profile show --school {handle}).")


@school.command("list")
@data_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@user_errors
def school_list(data_dir: Path, as_json: bool) -> None:
    """Every school this node hosts, with its actor and listing name."""
    with Node.open(data_dir) as node:
        rows = listed_schools(node.store.db, node.config)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("No schools hosted yet: amity school add HANDLE --profile FILE.json")
    for row in rows:
        first = "  (first account)" if row["first_account"] else ""
        click.echo(f"{row['handle']:<24} {row['name'] or '(no profile)'}{first}")


@school.command("remove")
@data_option
@click.argument("handle")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@user_errors
def school_remove(data_dir: Path, handle: str, yes: bool) -> None:
    """Withdraw school HANDLE's profile everywhere and stop hosting it (keys kept aside)."""
    if not yes:
        click.confirm(f"Withdraw school {handle!r} from every directory and remove it?", abort=True)
    with Node.open(data_dir) as node:
        node.remove_school(handle)
        kept = node.config.keys_dir / "removed"
    click.echo(f"School {handle!r} removed; its profile is withdrawn while the node serves.")
    click.echo(f"  its keys: {kept}")


def register(group: click.Group) -> None:
    """Add `amity school` to the command group."""
    group.add_command(school)
