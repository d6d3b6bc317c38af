"""The `amity` command: a thin layer over node/ (the operator contract in DESIGN.md)."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import click
from babel import Locale

from .. import __version__
from ..federation import endorsement_store
from ..node import endorsement_actions
from ..node.backup import backup_node
from ..node.clock import format_time
from ..node.errors import NodeError
from ..node.node import Node, init_node
from ..node.pages import profile_facts
from ..protocol.activities import host_of
from ..protocol.profile import display_name
from ..protocol.vocabulary import NODE_KINDS
from . import (  # noqa: F401  (they register the subcommands of `amity school`)
    school_commands,
    school_export_commands,
    school_import_commands,
)
from .directory_commands import directory_command
from .follow_commands import approve, follow, followers, following, reject
from .match_commands import match
from .options import OneLineErrorGroup, data_option, fail, school_option, user_errors
from .pairing_commands import pairing_round
from .partnership_commands import COMMANDS as PARTNERSHIP_COMMANDS
from .profile_file import read_profile
from .queue_commands import queue
from .remote import fetch_remote_actor, private_network_option, shown_name


@click.group(cls=OneLineErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="amity")
def cli() -> None:
    """Amity: find partner schools abroad, on a network nobody owns."""


@cli.command()
@data_option
@click.option("--name", "handle", help="Short account name, as in @NAME@host.")
@click.option("--base-url", required=True, help="Public address, e.g. https://school.example.")
@click.option("--kind", type=click.Choice(NODE_KINDS), default="school", show_default=True)
@click.option("--profile", "profile_file", type=click.File("rb"), help="School profile JSON.")
@click.option(
    "--from",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Start a school's own node from its export (amity school export HANDLE DIR).",
)
@user_errors
def init(
    data_dir: Path,
    handle: str | None,
    base_url: str,
    kind: str,
    profile_file: IO[bytes] | None,
    export_dir: Path | None,
) -> None:
    """Create a node: config, database and keys in the data directory."""
    if export_dir is not None:
        if handle or profile_file:
            fail(["--from takes the name and profile from the export; leave out --name, --profile"])
        _init_from(data_dir, export_dir, base_url)
        return
    if not handle:
        fail(["--name is required: the account's short name, like --name benito"])
        return
    profile = read_profile(profile_file) if profile_file else None
    with init_node(data_dir, handle=handle, base_url=base_url, kind=kind, profile=profile) as node:
        click.echo(f"Created {kind} node '{handle}' in {data_dir}")
        click.echo(f"  actor:  {node.urls.id}")
        click.echo(f"  handle: @{handle}@{node.config.host}")
    if kind == "school" and profile is None:
        click.echo(f"Next: amity profile import FILE.json --data {data_dir}")
    click.echo(f"Start it with: amity serve --data {data_dir}")


def _init_from(data_dir: Path, export_dir: Path, base_url: str) -> None:
    from ..node.moving_in import init_from_export

    with init_from_export(data_dir, export_dir, base_url) as node:
        click.echo(f"Created school node '{node.config.handle}' in {data_dir} from {export_dir}")
        click.echo(
            f"  actor:  {node.urls.id} (also known as {node.actor_document()['alsoKnownAs'][0]})"
        )
    click.echo(f"Start it with: amity serve --data {data_dir}")
    click.echo(f"then, on the old node: amity school move {node.config.handle} {node.urls.id}")


@cli.command()
@data_option
@click.option("--bind", default=None, help="Address to listen on (default from config: 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: the base URL's, else 8080).")
@click.option(
    "--allow-private-network",
    is_flag=True,
    help="Let the node talk to loopback and private addresses (tests, a school LAN).",
)
@click.option(
    "--no-lan-discovery",
    is_flag=True,
    help="Do not advertise the node on the local network, nor look for others there.",
)
@user_errors
def serve(
    data_dir: Path,
    bind: str | None,
    port: int | None,
    allow_private_network: bool,
    no_lan_discovery: bool,
) -> None:
    """Serve the node until Ctrl-C or SIGTERM (one `serve` per data directory)."""
    from ..node.server import serve_data_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve_data_dir(data_dir, bind, port, allow_private_network, lan_discovery=not no_lan_discovery)


@cli.command()
@data_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@user_errors
def lan(data_dir: Path, as_json: bool) -> None:
    """Amity nodes found on the local network while this node serves."""
    from ..node.lan import peers

    with Node.open(data_dir) as node:
        rows = peers(node.store.db)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No other Amity node found on the local network (is this node serving?).")
        return
    for row in rows:
        click.echo(f"{row['kind']:<9} {row['actor']}  (at {row['url']})")
    click.echo("Follow one with: amity follow ACTOR-URL --allow-private-network")


@cli.group()
def profile() -> None:
    """Show or replace this school's profile."""


@profile.command("show")
@data_option
@school_option
@click.option("--json", "as_json", is_flag=True, help="The profile in its import format.")
@click.option("--signed", is_flag=True, help="The published object with its proof.")
@user_errors
def profile_show(data_dir: Path, school: str | None, as_json: bool, signed: bool) -> None:
    """Print the current profile."""
    with Node.open(data_dir, school=school) as node:
        stored = node.profile()
        if stored is None:
            fail([f"no profile yet; import one with: amity profile import FILE --data {data_dir}"])
            return
        if signed or as_json:
            document = stored.document if signed else stored.data
            click.echo(json.dumps(document, ensure_ascii=False, indent=2))
            return
        click.echo(f"{display_name(stored.data)}  (@{node.handle}@{node.config.host})")
        for label, value in profile_facts(stored.data, Locale("en")):
            click.echo(f"  {label + ':':<19}{value}")
        if "description" in stored.data:
            click.echo(f"  {'About:':<19}{stored.data['description']}")
        click.echo(f"  {'Updated:':<19}{stored.updated}")
        click.echo(f"  {'Published at:':<19}{node.urls.profile}")


@profile.command("import")
@data_option
@school_option
@click.argument("file", type=click.File("rb"))
@user_errors
def profile_import(data_dir: Path, school: str | None, file: IO[bytes]) -> None:
    """Replace the profile with FILE (JSON; - for stdin), signed anew."""
    data = read_profile(file)
    with Node.open(data_dir, school=school) as node:
        stored = node.publish_profile(data)
        click.echo(f"Profile of '{display_name(data)}' published, updated {stored.updated}")


@profile.command("pause")
@data_option
@school_option
@user_errors
def profile_pause(data_dir: Path, school: str | None) -> None:
    """Hide this school's listing everywhere (on holiday, full) without deleting it."""
    with Node.open(data_dir, school=school) as node:
        node.set_paused(True)
    click.echo("Listing paused; `amity profile resume` lists the school again.")


@profile.command("resume")
@data_option
@school_option
@user_errors
def profile_resume(data_dir: Path, school: str | None) -> None:
    """List this school again after `amity profile pause`."""
    with Node.open(data_dir, school=school) as node:
        node.set_paused(False)
    click.echo("Listing resumed.")


@profile.command("delete")
@data_option
@school_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@user_errors
def profile_delete(data_dir: Path, school: str | None, yes: bool) -> None:
    """Withdraw the profile everywhere (a signed Delete that hubs relay)."""
    if not yes:
        click.confirm("Withdraw this school's profile from every directory?", abort=True)
    with Node.open(data_dir, school=school) as node:
        when = node.withdraw_profile()
    click.echo(f"Profile withdrawn at {when}; `amity profile import` publishes a new one.")


@cli.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the demo's nodes in this new directory (default: a temporary one, removed).",
)
@user_errors
def demo(data_dir: Path | None) -> None:
    """Start a hub, an authority and eight schools on this computer, federated; Ctrl-C stops."""
    from ..node.demo import demo_directory, run_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        with demo_directory(data_dir) as data:
            asyncio.run(run_demo(data, click.echo))
    except FileExistsError as exc:
        fail([str(exc)])
    click.echo("Demo stopped.")


@cli.command()
@data_option
@click.argument("school")
@click.option(
    "--expires",
    metavar="DATE",
    help="When it stops counting: 2027-07-31 (start of that day, UTC) or 2027-07-31T12:00:00Z.",
)
@click.option("--revoke", is_flag=True, help="Revoke this authority's endorsements of SCHOOL.")
@private_network_option
@user_errors
def endorse(
    data_dir: Path, school: str, expires: str | None, revoke: bool, allow_private_network: bool
) -> None:
    """(Authorities) vouch for SCHOOL (NAME@HOST or actor URL), or revoke that with --revoke."""
    with Node.open(data_dir) as node:
        if node.config.kind != "authority":
            fail([f"this node is a {node.config.kind}; only authorities endorse schools"])
        if revoke:
            if expires:
                fail(["--expires and --revoke do not go together"])
            school_id = (
                _issued_school(node, school)
                or (asyncio.run(fetch_remote_actor(node, school, allow_private_network))["id"])
            )
            revoked = endorsement_actions.revoke(node, school_id)
            click.echo(f"Revoked {len(revoked)} endorsement(s) of {school_id}.")
            click.echo("The revocation is delivered while the node serves; hubs relay it.")
            return
        deadline = parse_expiry(expires) if expires else None
        actor = asyncio.run(fetch_remote_actor(node, school, allow_private_network))
        document = endorsement_actions.endorse(node, actor, deadline)
    until = f", until {deadline}" if deadline else ""
    click.echo(f"Endorsed {shown_name(actor)} ({actor['id']}){until}.")
    click.echo(f"  endorsement: {document['id']}")
    click.echo("It is delivered while the node serves; the school carries it in its profile.")


def parse_expiry(text: str) -> str:
    """An xsd:dateTime in UTC from a date (its first second) or a full UTC time."""
    for pattern in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return format_time(datetime.strptime(text, pattern).replace(tzinfo=UTC))
        except ValueError:
            continue
    raise NodeError(f"--expires {text!r}: give a date like 2027-07-31 or 2027-07-31T12:00:00Z")


def _issued_school(node: Node, target: str) -> str | None:
    """The school an earlier endorsement named by `target` (actor URL or NAME@HOST), found
    without asking the network, so a school whose node is down can still be revoked."""
    for row in endorsement_actions.issued(node):
        school = str(row["school"])
        if school == target or _handle_matches(school, target):
            return school
    return None


def _handle_matches(actor_id: str, handle: str) -> bool:
    name, _, host = handle.lstrip("@").partition("@")
    return bool(host) and host_of(actor_id) == host.lower() and actor_id.endswith(f"/{name}")


@cli.command()
@data_option
@school_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@user_errors
def endorsements(data_dir: Path, school: str | None, as_json: bool) -> None:
    """The endorsements this authority issued, or this school holds."""
    with Node.open(data_dir, school=school) as node:
        if node.kind == "authority":
            rows = endorsement_actions.issued(node)
        else:
            rows = [
                {"id": doc["id"], "authority": doc["attributedTo"], "expires": doc.get("expires")}
                for doc in node.held_endorsements()
            ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No endorsements yet.")
    for row in rows:
        if "school" in row:
            state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "in force"
            until = f", until {row['expires']}" if row["expires"] else ""
            click.echo(f"{row['school']}  issued {row['issued']}{until}  [{state}]")
        else:
            until = f" until {row['expires']}" if row["expires"] else ""
            click.echo(f"from {row['authority']}{until}")


@cli.command()
@data_option
@click.argument("authority", required=False)
@click.option("--remove", is_flag=True, help="Stop trusting AUTHORITY.")
@private_network_option
@user_errors
def trust(data_dir: Path, authority: str | None, remove: bool, allow_private_network: bool) -> None:
    """Count AUTHORITY's endorsements (schools show as verified); no argument lists them."""
    with Node.open(data_dir) as node:
        db = node.store.db
        if authority is None:
            rows = endorsement_store.trusted_rows(db)
            for row in rows:
                click.echo(f"{row['actor']}  since {row['since']}")
            if not rows:
                click.echo("No trusted authorities yet: amity trust NAME@HOST")
            return
        if remove:
            known = [
                row["actor"]
                for row in endorsement_store.trusted_rows(db)
                if row["actor"] == authority or _handle_matches(row["actor"], authority)
            ]
            if not known:
                fail([f"{authority} is not trusted here"])
            with db.atomic():
                endorsement_store.distrust(db, known[0])
            click.echo(f"No longer trusting {known[0]}.")
            return
        actor = asyncio.run(fetch_remote_actor(node, authority, allow_private_network))
        added = endorsement_actions.trust(node, actor)
    name = shown_name(actor)
    if not added:
        click.echo(f"{name} ({actor['id']}) was already trusted.")
        return
    click.echo(f"Trusting {name} ({actor['id']}): schools it endorses show as verified.")


@cli.command()
@data_option
@click.argument("target")
@user_errors
def block(data_dir: Path, target: str) -> None:
    """Block a domain (example.org) or an actor URL: their requests get 403, nothing is kept."""
    with Node.open(data_dir) as node:
        kind = node.block(target)
    click.echo(f"Blocked {kind} {target}")


@cli.command()
@data_option
@click.argument("target")
@user_errors
def unblock(data_dir: Path, target: str) -> None:
    """Lift a block made with `amity block`."""
    with Node.open(data_dir) as node:
        if not node.unblock(target):
            fail([f"{target} is not blocked"])
    click.echo(f"Unblocked {target}")


@cli.group()
def keys() -> None:
    """Manage this node's keys."""


@keys.command("rotate")
@data_option
@school_option
@user_errors
def keys_rotate(data_dir: Path, school: str | None) -> None:
    """Make new keys, re-sign the profile, and tell followers (old signatures stop working)."""
    with Node.open(data_dir, school=school) as node:
        node.rotate_keys()
    click.echo("New keys in place; followers get the updated actor while the node serves.")


@cli.command()
@data_option
@click.argument("destination", type=click.Path(path_type=Path))
@user_errors
def backup(data_dir: Path, destination: Path) -> None:
    """Copy the node (config, keys, a consistent database) to DESTINATION, even while serving."""
    backup_node(data_dir, destination)
    click.echo(
        f"Backed up {data_dir} to {destination}; restore by serving with --data {destination}"
    )


for command in (
    follow,
    followers,
    following,
    approve,
    reject,
    queue,
    match,
    directory_command,
    pairing_round,
    *PARTNERSHIP_COMMANDS,
):
    cli.add_command(command)


school_commands.register(cli)


def main() -> None:
    cli()
