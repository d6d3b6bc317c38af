"""`amity match`: partner suggestions for this node's school, with their reasons."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import click

from ..node.errors import NodeError
from ..node.matching import Explanation, default_week, explain, parse_week, suggestions
from ..node.node import Node
from ..protocol.live_window import zone
from ..protocol.matching import Match, School
from .options import data_option, school_option, user_errors
from .remote import private_network_option
from .remote_matches import with_hub_suggestions

WINDOWS_SHOWN = 5  # windows listed per school in the text output; --json has them all


@click.command()
@data_option
@school_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document: a list, best first.")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option(
    "--week",
    metavar="YYYY-MM-DD",
    help="The Monday of the week whose live windows count (default: the coming week).",
)
@click.option(
    "--explain",
    "target",
    metavar="ACTOR",
    help="Why this school (URL or NAME@HOST in the directory) is or is not suggested.",
)
@click.option(
    "--via",
    metavar="HUB",
    help="Also ask this hub (NAME@HOST or URL) for suggestions from its directory.",
)
@private_network_option
@user_errors
def match(
    data_dir: Path,
    school: str | None,
    as_json: bool,
    limit: int,
    week: str | None,
    target: str | None,
    via: str | None,
    allow_private_network: bool,
) -> None:
    """Rank the schools in this node's directory (and its hubs') as partners for its school."""
    with Node.open(data_dir, school=school) as node:
        monday = default_week(node) if week is None else parse_week(week, default_week(node))
        if target is not None:
            if via is not None:
                raise NodeError("--explain looks at this node's directory only; leave out --via")
            me, explanation = explain(node, target, monday)
            _show_explanation(me, explanation, monday, as_json)
            return
        me, matches = suggestions(node, monday, limit, once=True)
        matches = with_hub_suggestions(node, me, matches, monday, limit, via, allow_private_network)
    if as_json:
        click.echo(json.dumps([m.to_json() for m in matches], indent=2, ensure_ascii=False))
        return
    if not matches:
        click.echo(
            f"No partner suggestions for {me.name} in the week of {monday}. Follow a hub to "
            "see more schools (amity follow NAME@HOST); amity match --explain ACTOR says why "
            "a school is left out."
        )
        return
    click.echo(f"Partner suggestions for {me.name}, week of Monday {monday} (best first):")
    for number, item in enumerate(matches, 1):
        click.echo("")
        _show_match(number, item)


def _show_explanation(me: School, explanation: Explanation, week: date, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(explanation.to_json(), indent=2, ensure_ascii=False))
        return
    if explanation.match is None:
        click.echo(
            f"{explanation.name} is not suggested to {me.name} for the week of {week}, because:"
        )
        for sentence in explanation.exclusions:
            click.echo(f"  - {sentence}")
        click.echo(f"  {explanation.actor}")
        return
    click.echo(f"{explanation.name} is a candidate for {me.name} in the week of {week}:")
    _show_match(None, explanation.match)


def _show_match(number: int | None, item: Match) -> None:
    other = item.other
    prefix = f"{number}. " if number is not None else ""
    live = "live calls possible" if item.live_possible else "asynchronous exchange"
    click.echo(f"{prefix}{other.name}  [{other.country}]  score {item.score:g}  ({live})")
    for reason in item.reasons:
        click.echo(f"    - {reason}")
    for start, end in item.windows[:WINDOWS_SHOWN]:
        click.echo(
            f"    window: {_local(start, end, item.me.timezone)} your time = "
            f"{_local(start, end, other.timezone)} theirs ({other.timezone})"
        )
    if len(item.windows) > WINDOWS_SHOWN:
        click.echo(f"    ... and {len(item.windows) - WINDOWS_SHOWN} more windows (--json)")
    click.echo(f"    {other.actor}")


def _local(start: datetime, end: datetime, timezone: str) -> str:
    """`Mon 07 Dec 08:00-11:15` in `timezone` (the end's day too when it differs)."""
    tz = zone(timezone)
    begins, ends = start.astimezone(tz), end.astimezone(tz)
    tail = ends.strftime("%H:%M" if ends.date() == begins.date() else "%a %d %b %H:%M")
    return f"{begins.strftime('%a %d %b %H:%M')}-{tail}"
