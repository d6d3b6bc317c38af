"""`amity pairing-round`: partners abroad for the opted-in schools (authorities and hubs)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from ..federation.errors import FederationError
from ..node.errors import NodeError
from ..node.matching import default_week, parse_week
from ..node.node import Node
from ..protocol.errors import ProtocolError
from ..protocol.suggest import read_country
from .options import data_option, user_errors
from .remote import fetch_remote_actor, private_network_option

FETCHES = 8  # actors fetched at once before sending
UNPAIRED_SHOWN = 20  # unpaired schools listed in the text report; --json has them all


def _countries(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    """Each --country read as a profile's country is (`Kenya`: did you mean KE (Kenya)?)."""
    found: list[str] = []
    for value in values:
        reading = read_country(value)
        if reading.problem is not None or reading.value is None:
            raise click.BadParameter(reading.problem or f"{value!r} is not a country code")
        if reading.value not in found:
            found.append(reading.value)
    return found


async def _fetch_actors(
    node: Node, wanted: list[str], allow_private_network: bool
) -> dict[str, dict[str, Any] | str]:
    """Each school's actor document, or why it could not be fetched, FETCHES at a time."""
    gate = asyncio.Semaphore(FETCHES)
    found: dict[str, dict[str, Any] | str] = {}

    async def one(actor: str) -> None:
        async with gate:
            try:
                found[actor] = await fetch_remote_actor(node, actor, allow_private_network)
            except (NodeError, FederationError, ProtocolError) as exc:
                found[actor] = f"actor not fetched: {exc}"

    await asyncio.gather(*(one(actor) for actor in wanted))
    if wanted:
        click.echo(f"actors: {len(wanted):,} fetched or tried", err=True)
    return found


def _progress(stage: str, done: int, total: int) -> None:
    unit = "" if stage == "matching pieces" else " schools"
    click.echo(f"{stage}: {done:,} of {total:,}{unit}", err=True)


@click.command("pairing-round")
@data_option
@click.option(
    "--country",
    "countries",
    multiple=True,
    callback=_countries,
    help="Only schools in this country (ISO code, e.g. KE); repeat for several.",
)
@click.option("--dry-run", is_flag=True, help="Compute and report the pairs; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: the report.")
@click.option(
    "--week",
    metavar="YYYY-MM-DD",
    help="The Monday of the week whose live windows count (default: the coming week).",
)
@private_network_option
@user_errors
def pairing_round(
    data_dir: Path,
    countries: list[str],
    dry_run: bool,
    as_json: bool,
    week: str | None,
    allow_private_network: bool,
) -> None:
    """(Authorities and hubs) pair the opted-in schools of the directory with partners
    abroad: as many schools as possible get one, then the best total score."""
    # Imported here: the round's solver (numpy, scipy) takes a second or more to import,
    # which every other command (serve included) would otherwise pay at start-up.
    from ..node.pairing import check_can_send, check_round_node, run_round, send_proposals
    from ..protocol.pairing import round_json

    with Node.open(data_dir) as node:
        check_round_node(node)
        monday = default_week(node) if week is None else parse_week(week, default_week(node))
        if not dry_run:
            check_can_send(node)
        given, report = run_round(node, countries, monday, _progress)
        sent: list[dict[str, Any]] = []
        if not dry_run:
            wanted = sorted({actor for pair in report.pairs for actor in (pair.a, pair.b)})
            actors = asyncio.run(_fetch_actors(node, wanted, allow_private_network))
            sent = send_proposals(node, given, report.pairs, actors)
    document = round_json(report, given.names, countries)
    document["dry_run"] = dry_run
    document["proposals"] = sent
    document["proposals_sent"] = sum(1 for item in sent if item["proposal"])
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    _show(document)


def _show(document: dict[str, Any]) -> None:
    bound = document["with_candidates"]
    share = document["share_paired"]
    where = ", ".join(document["countries"]) if document["countries"] else "all countries"
    click.echo(
        f"Pairing round for the week of {document['week']} ({where}): "
        f"{document['schools']} opted-in schools."
    )
    if not document["schools"]:
        click.echo(
            'A school takes part by setting "pairing_rounds": true in its profile '
            "(amity profile import); its listing reaches this node through the hubs and "
            "nodes it follows."
        )
    click.echo(
        f"Paired {document['paired']} of the {bound} schools that have at least one candidate"
        + (f" ({share:.1%})." if isinstance(share, float) else ".")
        + f" Total score {document['total_score']}."
    )
    for item in document["paired_schools"]:
        partners = "; ".join(
            f"{p['name']} [{p['country']}] (score {p['score']})" for p in item["partners"]
        )
        click.echo(f"  {item['name']} [{item['country']}]: {partners}")
    unpaired = document["unpaired"]
    if unpaired:
        click.echo(f"Unpaired ({len(unpaired)}):")
        for item in unpaired[:UNPAIRED_SHOWN]:
            click.echo(f"  {item['name']} [{item['country']}]: {item['reason']}")
        if len(unpaired) > UNPAIRED_SHOWN:
            click.echo(f"  ... and {len(unpaired) - UNPAIRED_SHOWN} more (--json lists all).")
    if document["dry_run"]:
        click.echo("Dry run: no proposals sent.")
        return
    click.echo(
        f"Sent {document['proposals_sent']} proposals, delivered while the node serves; "
        "each school accepts as usual."
    )
    for item in document["proposals"]:
        if item["error"]:
            click.echo(f"  not sent: {' + '.join(item['schools'])}: {item['error']}")
