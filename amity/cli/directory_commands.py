"""`amity directory`: the federated listings this node knows, with what matching uses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..federation import directory
from ..node.listings import directory_listings
from ..node.node import Node
from ..protocol.suggest import Reading, read_country, read_language, read_mode, read_subject
from ..protocol.vocabulary import MODES, SUBJECTS, WEEKDAYS
from .options import data_option, school_option, user_errors


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


@click.command("directory")
@data_option
@school_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document: a list of listings.")
@click.option("--country", callback=read_filter(read_country), help="ISO country code, e.g. KE.")
@click.option(
    "--language", callback=read_filter(read_language), help="Taught in or being learned, e.g. fr."
)
@click.option("--teaches", callback=read_filter(read_language), help="Taught in, e.g. fr.")
@click.option("--learns", callback=read_filter(read_language), help="Being learned, e.g. fr.")
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
    school: str | None,
    as_json: bool,
    country: str | None,
    language: str | None,
    teaches: str | None,
    learns: str | None,
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
        teaches=teaches,
        learns=learns,
        age=age,
        subject=subject,
        mode=mode,
        text=text,
        endorsed_by=endorsed_by,
        verified=verified,
    )
    with Node.open(data_dir, school=school) as node:
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
        click.echo(f"    {_timetable(item)}")
        for authority in item["endorsed_by"]:
            click.echo(f"    endorsed by {authority}")
        click.echo(f"    {item['actor']}")


def _timetable(item: dict[str, Any]) -> str:
    """`mon-fri 08:00-14:00; terms 2026-08-24..2026-12-18; 2 places`."""
    days = item["school_days"]
    runs = _day_runs(days)
    hours = "-".join(item["school_hours"] or [])
    terms = ", ".join(f"{t['start']}..{t['end']}" for t in item["terms"]) or "none listed"
    places = item["capacity"]
    return (
        f"school days {runs} {hours}; terms {terms}; "
        f"{places} partnership place{'s' if places != 1 else ''}"
    )


def _day_runs(days: list[str]) -> str:
    """Day codes with runs of three or more consecutive days joined (`mon-fri, sun`)."""
    order = [WEEKDAYS.index(day) for day in days if day in WEEKDAYS]
    runs: list[list[int]] = []
    for index in order:
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    parts = [
        f"{WEEKDAYS[run[0]]}-{WEEKDAYS[run[-1]]}"
        if len(run) >= 3
        else ", ".join(WEEKDAYS[i] for i in run)
        for run in runs
    ]
    return ", ".join(parts) or "none"
