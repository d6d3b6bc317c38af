"""The `amity` command: a thin layer over node/ (the operator contract in DESIGN.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import click
from babel import Locale
from click.core import ParameterSource

from .. import __version__
from ..federation import delivery_queue, directory, endorsement_store, relations
from ..federation.delivery_queue import STATES, describe_state
from ..node import endorsement_actions, follow_requests
from ..node.backup import backup_node
from ..node.clock import format_time
from ..node.errors import NodeError
from ..node.listings import directory_listings
from ..node.node import Node, init_node
from ..node.pages import profile_facts
from ..node.serve_lock import is_serving
from ..protocol.activities import host_of
from ..protocol.errors import ValidationFailed
from ..protocol.profile import display_name, parse_profile_json
from ..protocol.suggest import Reading, read_country, read_language, read_mode, read_subject
from ..protocol.text import clean_text
from ..protocol.vocabulary import MODES, NODE_KINDS, SUBJECTS
from .options import OneLineErrorGroup, data_option, fail, user_errors

MAX_PROFILE_BYTES = 64 * 1024
ANSWER_WAIT = 30.0  # seconds `--wait` waits for the serving node to get an answer
LISTEN_WAIT = 10.0  # seconds a node on a private address gets to start listening
POLL = 0.25


@click.group(cls=OneLineErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="amity")
def cli() -> None:
    """Amity: find partner schools abroad, on a network nobody owns."""


def read_profile(source: IO[bytes]) -> dict[str, object]:
    """A validated profile from a file; ValidationFailed names the file's problems."""
    raw = source.read(MAX_PROFILE_BYTES + 1)
    if len(raw) > MAX_PROFILE_BYTES:
        raise ValidationFailed([("profile", f"file is over {MAX_PROFILE_BYTES // 1024} KiB")])
    return parse_profile_json(raw)


@cli.command()
@data_option
@click.option("--name", "handle", required=True, help="Short account name, as in @NAME@host.")
@click.option("--base-url", required=True, help="Public address, e.g. https://school.example.")
@click.option("--kind", type=click.Choice(NODE_KINDS), default="school", show_default=True)
@click.option("--profile", "profile_file", type=click.File("rb"), help="School profile JSON.")
@user_errors
def init(
    data_dir: Path, handle: str, base_url: str, kind: str, profile_file: IO[bytes] | None
) -> None:
    """Create a node: config, database and keys in the data directory."""
    profile = read_profile(profile_file) if profile_file else None
    with init_node(data_dir, handle=handle, base_url=base_url, kind=kind, profile=profile) as node:
        click.echo(f"Created {kind} node '{handle}' in {data_dir}")
        click.echo(f"  actor:  {node.urls.id}")
        click.echo(f"  handle: @{handle}@{node.config.host}")
    if kind == "school" and profile is None:
        click.echo(f"Next: amity profile import FILE.json --data {data_dir}")
    click.echo(f"Start it with: amity serve --data {data_dir}")


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
@click.option("--json", "as_json", is_flag=True, help="The profile in its import format.")
@click.option("--signed", is_flag=True, help="The published object with its proof.")
@user_errors
def profile_show(data_dir: Path, as_json: bool, signed: bool) -> None:
    """Print the current profile."""
    with Node.open(data_dir) as node:
        stored = node.profile()
        if stored is None:
            fail([f"no profile yet; import one with: amity profile import FILE --data {data_dir}"])
            return
        if signed or as_json:
            document = stored.document if signed else stored.data
            click.echo(json.dumps(document, ensure_ascii=False, indent=2))
            return
        click.echo(f"{display_name(stored.data)}  (@{node.config.handle}@{node.config.host})")
        for label, value in profile_facts(stored.data, Locale("en")):
            click.echo(f"  {label + ':':<19}{value}")
        if "description" in stored.data:
            click.echo(f"  {'About:':<19}{stored.data['description']}")
        click.echo(f"  {'Updated:':<19}{stored.updated}")
        click.echo(f"  {'Published at:':<19}{node.urls.profile}")


@profile.command("import")
@data_option
@click.argument("file", type=click.File("rb"))
@user_errors
def profile_import(data_dir: Path, file: IO[bytes]) -> None:
    """Replace the profile with FILE (JSON; - for stdin), signed anew."""
    data = read_profile(file)
    with Node.open(data_dir) as node:
        stored = node.publish_profile(data)
        click.echo(f"Profile of '{display_name(data)}' published, updated {stored.updated}")


@profile.command("pause")
@data_option
@user_errors
def profile_pause(data_dir: Path) -> None:
    """Hide this school's listing everywhere (on holiday, full) without deleting it."""
    with Node.open(data_dir) as node:
        node.set_paused(True)
    click.echo("Listing paused; `amity profile resume` lists the school again.")


@profile.command("resume")
@data_option
@user_errors
def profile_resume(data_dir: Path) -> None:
    """List this school again after `amity profile pause`."""
    with Node.open(data_dir) as node:
        node.set_paused(False)
    click.echo("Listing resumed.")


@profile.command("delete")
@data_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@user_errors
def profile_delete(data_dir: Path, yes: bool) -> None:
    """Withdraw the profile everywhere (a signed Delete that hubs relay)."""
    if not yes:
        click.confirm("Withdraw this school's profile from every directory?", abort=True)
    with Node.open(data_dir) as node:
        when = node.withdraw_profile()
    click.echo(f"Profile withdrawn at {when}; `amity profile import` publishes a new one.")


private_network_option = click.option(
    "--allow-private-network",
    is_flag=True,
    help="Let the node talk to loopback and private addresses (tests, a school LAN).",
)


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
@click.argument("target")
@private_network_option
@click.option(
    "--wait",
    is_flag=True,
    help=f"Wait (up to {ANSWER_WAIT:g} s) for TARGET to accept; this node must be serving.",
)
@user_errors
def follow(data_dir: Path, target: str, allow_private_network: bool, wait: bool) -> None:
    """Follow a school, hub or authority: NAME@HOST or an actor URL."""
    with Node.open(data_dir) as node:
        actor = asyncio.run(fetch_remote_actor(node, target, allow_private_network))
        node.follow(actor)
        name = shown_name(actor)
        click.echo(f"Follow of {name} ({actor['id']}) queued.")
        if not wait:
            click.echo(
                "It is delivered while the node serves; `amity queue` shows what is pending."
            )
            return
        db, handle = node.store.db, node.config.handle
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
        click.echo(f"{name} accepted: this node follows it.")
    elif state == "rejected":
        fail([f"{name} rejected the follow"])
    elif problem:
        fail([f"the Follow was not delivered: {problem} (amity queue --data {data_dir})"])
    elif outcome == "not serving":
        fail([f"this node is not serving, so nothing is sent: amity serve --data {data_dir}"])
    else:
        fail([f"no answer from {name} within {ANSWER_WAIT:g} s; `amity following` shows it later"])


@cli.command()
@data_option
@click.option("--pending", is_flag=True, help="The follow requests waiting for approval.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@user_errors
def followers(data_dir: Path, pending: bool, as_json: bool) -> None:
    """The actors that follow this node, or (--pending) those asking to."""
    if pending:
        _show_follow_requests(data_dir, as_json)
        return
    _show_relations(data_dir, "followers", as_json, "no followers yet")
    if not as_json:
        with Node.open(data_dir) as node:
            waiting = len(follow_requests.pending(node))
        if waiting:
            click.echo(f"{waiting} follow request(s) waiting: amity followers --pending")


def _show_follow_requests(data_dir: Path, as_json: bool) -> None:
    with Node.open(data_dir) as node:
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


@cli.command()
@data_option
@click.argument("actor")
@user_errors
def approve(data_dir: Path, actor: str) -> None:
    """Accept a pending follow request: ACTOR (URL or NAME@HOST) becomes a follower."""
    with Node.open(data_dir) as node:
        request = follow_requests.approve(node, actor)
    click.echo(f"Approved {request.address} ({request.actor}): it follows this node now.")
    click.echo("The Accept is delivered while the node serves.")


@cli.command()
@data_option
@click.argument("actor")
@user_errors
def reject(data_dir: Path, actor: str) -> None:
    """Refuse a pending follow request of ACTOR (URL or NAME@HOST)."""
    with Node.open(data_dir) as node:
        request = follow_requests.reject(node, actor)
    click.echo(f"Rejected the follow request of {request.address} ({request.actor}).")
    click.echo("The Reject is delivered while the node serves.")


@cli.command()
@data_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@user_errors
def following(data_dir: Path, as_json: bool) -> None:
    """The actors this node follows, whether each accepted, and why a Follow is stuck."""
    _show_relations(data_dir, "following", as_json, "not following anyone yet")


def _show_relations(data_dir: Path, table: str, as_json: bool, empty: str) -> None:
    with Node.open(data_dir) as node:
        rows = relations.relations(node.store.db, table, node.config.handle)
        if table == "following":  # a pending follow says why its Follow is not delivered
            problems = relations.follow_problems(node.store.db, node.config.handle)
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


@cli.group(invoke_without_command=True)
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


def read_filter(reader: Callable[[str], Reading]) -> Callable[..., str | None]:
    """A click callback reading a filter as a profile field is read: the code, or an error
    naming what was meant (`--country Kenya`: did you mean KE (Kenya)?)."""

    def callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        reading = reader(value)
        if reading.problem is not None:
            raise click.BadParameter(reading.problem)
        return reading.value

    return callback


@cli.command("directory")
@data_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document: a list of listings.")
@click.option("--country", callback=read_filter(read_country), help="ISO country code, e.g. KE.")
@click.option(
    "--language", callback=read_filter(read_language), help="Taught in or being learned, e.g. fr."
)
@click.option("--age", type=click.IntRange(3, 19), help="Pupils of this age.")
@click.option(
    "--subject",
    callback=read_filter(read_subject),
    help=f"A subject code: {', '.join(sorted(SUBJECTS))}.",
)
@click.option("--mode", callback=read_filter(lambda m: read_mode(m, MODES)), help="async or live.")
@click.option("--query", "text", help="Words in the name, place or description.")
@click.option("--endorsed-by", metavar="AUTHORITY", help="Endorsed by this authority (actor URL).")
@click.option("--verified", is_flag=True, help="Only schools endorsed by an authority you trust.")
@click.option("--all", "show_all", is_flag=True, help="Also stale and paused listings.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@user_errors
def directory_command(
    data_dir: Path,
    as_json: bool,
    country: str | None,
    language: str | None,
    age: int | None,
    subject: str | None,
    mode: str | None,
    text: str | None,
    endorsed_by: str | None,
    verified: bool,
    show_all: bool,
    limit: int,
    page: int,
) -> None:
    """The schools this node knows, from the hubs and nodes it follows."""
    filters = directory.Filters(
        country=country,
        language=language,
        age=age,
        subject=subject,
        mode=mode,
        text=text,
        endorsed_by=endorsed_by,
        verified=verified,
    )
    with Node.open(data_dir) as node:
        listings = directory_listings(node, filters, show_all, limit, (page - 1) * limit)
    if as_json:
        click.echo(json.dumps(listings, indent=2, ensure_ascii=False))
        return
    if not listings:
        click.echo("No schools found. Follow a hub to see the network: amity follow NAME@HOST")
    for item in listings:
        languages = "/".join(item["languages"]["instruction"])
        learning = "/".join(item["languages"]["learning"]) or "-"
        stale = "  (stale)" if item["stale"] else ""
        stale += "  (paused)" if item["paused"] else ""
        mark = "  ✓ verified" if item["verified"] else ""
        mark += "" if item["key_confirmed"] else "  (key not yet confirmed with the school)"
        click.echo(f"{item['name']}  [{item['country']}]{mark}{stale}")
        click.echo(
            f"    teaches in {languages}, learning {learning}; ages {item['ages'][0]}-"
            f"{item['ages'][1]}; {', '.join(item['modes'])}; {item['timezone']}"
        )
        for authority in item["endorsed_by"]:
            click.echo(f"    endorsed by {authority}")
        click.echo(f"    {item['actor']}")


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
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@user_errors
def endorsements(data_dir: Path, as_json: bool) -> None:
    """The endorsements this authority issued, or this school holds."""
    with Node.open(data_dir) as node:
        if node.config.kind == "authority":
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
@user_errors
def keys_rotate(data_dir: Path) -> None:
    """Make new keys, re-sign the profile, and tell followers (old signatures stop working)."""
    with Node.open(data_dir) as node:
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


def wait_while_serving(data_dir: Path, done: Callable[[], bool]) -> str:
    """Poll `done` until it holds ("done"), for at most ANSWER_WAIT seconds ("timeout"), or
    until the node has not been serving for a few seconds ("not serving"; a node started
    in the background a moment ago gets that long to take its lock)."""
    idle = 0
    for _ in range(int(ANSWER_WAIT / POLL)):
        if done():
            return "done"
        idle = 0 if is_serving(data_dir) else idle + 1
        if idle * POLL >= 5.0:
            return "not serving"
        time.sleep(POLL)
    return "done" if done() else "timeout"


def format_epoch(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def shown_name(actor: dict[str, Any]) -> str:
    """A remote actor's name as the terminal may show it (no bidi controls or escapes)."""
    for key in ("name", "preferredUsername"):
        if isinstance(actor.get(key), str) and clean_text(actor[key]).strip():
            return clean_text(actor[key]).strip()
    return str(actor["id"])


async def fetch_remote_actor(
    node: Node, target: str, allow_private_network: bool
) -> dict[str, Any]:
    """The actor document of a handle or URL, fetched with this node's signature."""
    # Imported here: the HTTP client costs a quarter of a second to load, and most
    # commands never talk to the network.
    from ..federation.actors import ACTOR_TYPES, check_actor
    from ..federation.client import FederationClient, wait_for_listener
    from ..federation.errors import AddressRefused, FetchFailed
    from ..federation.webfinger import resolve_actor_url

    address = private_address(target)
    if address is not None and not allow_private_network:
        raise NodeError(
            f"{address[0]} is a private, loopback or local address; add --allow-private-network "
            "to talk to a node there (a test, a school LAN)"
        )
    if address is not None and not await wait_for_listener(address[1], address[2], 1, 1.0):
        click.echo(f"waiting for {address[0]} to answer...", err=True)
        await wait_for_listener(address[1], address[2], int(LISTEN_WAIT / 0.5), 0.5)
    async with FederationClient(
        allow_private_network=allow_private_network, clock=node.clock
    ) as client:
        try:
            url = await resolve_actor_url(client, target)
            actor = check_actor(await client.get_json(url, node.signer()), url)
        except AddressRefused as exc:
            raise NodeError(
                f"{exc}; add --allow-private-network to talk to a node there (a test, a school LAN)"
            ) from exc
        if actor.get("type") not in ACTOR_TYPES:
            raise FetchFailed(f"{url} is not an actor")
        return actor


def private_address(target: str) -> tuple[str, str, list[int]] | None:
    """For a handle or URL on a loopback or private address: how to name it, its host and
    the ports it may answer on; None for anything else."""
    from ..federation.guard import ip_literal, is_public_address

    if "://" in target:
        parts = urlsplit(target)
        schemes = [parts.scheme]
    else:
        parts = urlsplit("//" + target.lstrip("@").rpartition("@")[2])
        schemes = ["https", "http"]  # WebFinger tries both on a private network
    host = parts.hostname or ""
    literal = ip_literal(host)
    if host != "localhost" and (literal is None or is_public_address(literal)):
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    ports = [port] if port else [443 if scheme == "https" else 80 for scheme in schemes]
    shown = f"http://{parts.netloc}" if len(schemes) > 1 else f"{schemes[0]}://{parts.netloc}"
    return shown, literal or host, ports


def main() -> None:
    cli()
