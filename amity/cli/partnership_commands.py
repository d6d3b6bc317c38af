"""`amity propose`, `proposals`, `accept`, `decline`, `partnerships`, `leave`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from ..federation.partnership_store import Proposal
from ..node import partnerships
from ..node.node import Node
from ..protocol.partnership import STARTER_PROJECTS
from .options import data_option, school_option, user_errors
from .remote import fetch_remote_actor, private_network_option, shown_name


async def _partner(node: Node, target: str, allow_private_network: bool) -> tuple[Any, Any]:
    """The partner's actor and its profile, the profile's proof checked with its key: as
    its node serves them now, or (when it does not answer) as this node holds them."""
    from ..federation.client import FederationClient
    from ..federation.errors import AddressRefused, FetchFailed
    from ..federation.school_profiles import fetch_school_profile

    try:
        actor = await fetch_remote_actor(node, target, allow_private_network)
        async with FederationClient(
            allow_private_network=allow_private_network, clock=node.clock
        ) as client:
            profile = await fetch_school_profile(
                lambda url: client.get_json(url, node.signer()), actor
            )
    except FetchFailed as exc:
        held = None if isinstance(exc, AddressRefused) else partnerships.known_partner(node, target)
        if held is None:
            raise
        click.echo(
            f"note: {target} does not answer ({exc}); proposing from its profile in this "
            "node's directory. The Offer waits in the queue until its node is back.",
            err=True,
        )
        return held
    return actor, profile


@click.command()
@data_option
@school_option
@click.argument("actor")
@click.option("--message", default=None, help="A short message to the partner school.")
@click.option(
    "--project",
    default=None,
    help="A starter project: " + ", ".join(STARTER_PROJECTS) + ".",
)
@private_network_option
@user_errors
def propose(
    data_dir: Path,
    school: str | None,
    actor: str,
    message: str | None,
    project: str | None,
    allow_private_network: bool,
) -> None:
    """Propose a partnership to a school abroad: NAME@HOST or an actor URL."""
    with Node.open(data_dir, school=school) as node:
        partnerships.check_can_propose(node)
        partnerships.check_project(project)
        partner, profile = asyncio.run(_partner(node, actor, allow_private_network))
        proposal = partnerships.propose(node, partner, profile, message=message, project=project)
    click.echo(f"Proposed a partnership to {shown_name(partner)} (ID {proposal.short}).")
    click.echo("The Offer is delivered while the node serves; it expires in 14 days unanswered.")


def _line(proposal: Proposal, problem: str | None) -> str:
    shown = partnerships.describe(proposal, problem)
    arrow = {"outgoing": "to", "incoming": "from", "arranged": "arranged with"}[proposal.role]
    who = f"{proposal.partner_name} ({proposal.partner})"
    if proposal.role == "arranged":
        who = proposal.partner_name
    elif proposal.proposer != proposal.partner and proposal.role == "incoming":
        who += f", arranged by {proposal.proposer}"
    parts = [f"{shown['id']}  [{proposal.state}]  {arrow} {who}"]
    parts.append("languages " + ",".join(shown["working_languages"] or []))
    if shown["starter_project"]:
        parts.append(f"project {shown['starter_project']}")
    if proposal.state == "pending":
        parts.append(f"expires {shown['expires']}")
    if proposal.reason:
        parts.append(f"({proposal.reason})")
    if problem:
        parts.append(f"(Offer not delivered: {problem})")
    if shown["message"]:
        parts.append(f"message: {' '.join(shown['message'].split())}")
    return "  ".join(parts)


def _show(rows: list[Proposal], problems: dict[str, str], as_json: bool, empty: str) -> None:
    if as_json:
        shown = [partnerships.describe(p, problems.get(p.id)) for p in rows]
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(empty)
    for proposal in rows:
        click.echo(_line(proposal, problems.get(proposal.id)))


@click.command()
@data_option
@school_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@user_errors
def proposals(data_dir: Path, school: str | None, as_json: bool) -> None:
    """Partnership proposals, incoming and outgoing, with their state."""
    with Node.open(data_dir, school=school) as node:
        rows = partnerships.list_proposals(node)
        problems = partnerships.undelivered(node, rows)
    _show(rows, problems, as_json, "no proposals yet; amity propose ACTOR makes one")
    if not as_json and any(p.role == "incoming" and p.state == "pending" for p in rows):
        click.echo("Answer with: amity accept ID, or amity decline ID [--reason TEXT]")


@click.command()
@data_option
@school_option
@click.argument("proposal_id", metavar="ID")
@user_errors
def accept(data_dir: Path, school: str | None, proposal_id: str) -> None:
    """Accept the proposal ID (as `amity proposals` shows it): this school signs it too."""
    with Node.open(data_dir, school=school) as node:
        proposal = partnerships.accept(node, proposal_id)
    if proposal.state == "accepted":
        click.echo(
            f"Accepted {proposal.short}: the partnership with {proposal.partner_name} holds."
        )
    else:
        click.echo(f"Accepted {proposal.short}; it holds once {proposal.partner_name} accepts too.")
    click.echo("The Accept is delivered while the node serves.")


@click.command()
@data_option
@school_option
@click.argument("proposal_id", metavar="ID")
@click.option("--reason", default=None, help="Why, in a few words, for the other school.")
@user_errors
def decline(data_dir: Path, school: str | None, proposal_id: str, reason: str | None) -> None:
    """Decline the proposal ID."""
    with Node.open(data_dir, school=school) as node:
        proposal = partnerships.decline(node, proposal_id, reason)
    click.echo(f"Declined {proposal.short}; the Reject is delivered while the node serves.")


@click.command("partnerships")
@data_option
@school_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@user_errors
def partnerships_command(data_dir: Path, school: str | None, as_json: bool) -> None:
    """This school's partnerships: in force, and those that ended."""
    with Node.open(data_dir, school=school) as node:
        rows = partnerships.list_partnerships(node)
    _show(rows, {}, as_json, "no partnerships yet; amity proposals shows what is pending")


@click.command()
@data_option
@school_option
@click.argument("proposal_id", metavar="ID")
@user_errors
def leave(data_dir: Path, school: str | None, proposal_id: str) -> None:
    """Leave the partnership ID, or withdraw a proposal made here; the other school is told."""
    with Node.open(data_dir, school=school) as node:
        proposal = partnerships.leave(node, proposal_id)
    what = "Left the partnership" if proposal.state == "left" else "Withdrew the proposal"
    click.echo(f"{what} {proposal.short}; the Leave is delivered while the node serves.")


COMMANDS = (propose, proposals, accept, decline, partnerships_command, leave)
