"""`amity school import FILE`: many hosted schools at once from a CSV or JSONL file."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..node.key_pool import KeyPool
from ..node.node import Node
from ..node.school_import import ImportPlan, add_schools, plan_import
from ..protocol.school_row_checks import describe
from ..protocol.school_rows import ImportRefused
from .options import data_option, user_errors
from .school_commands import school

PROGRESS_EVERY = 500


@school.command("import")
@data_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-invalid", is_flag=True, help="Add the good rows; report and skip the rest.")
@click.option("--dry-run", is_flag=True, help="Check every row and report; add nothing.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes making keys (default: one per core, at most 8).",
)
@user_errors
def school_import(
    data_dir: Path, file: Path, skip_invalid: bool, dry_run: bool, workers: int | None
) -> None:
    """Host every school of FILE.csv or FILE.jsonl (one school a row; see README)."""
    with Node.open(data_dir) as node:
        try:
            plan = plan_import(node, file)
        except ImportRefused as exc:
            for line, message in exc.problems:
                where = f" line {line}" if line else ""
                click.echo(f"error: {file.name}{where}: {message}", err=True)
            click.echo(f"error: nothing was added from {file.name}", err=True)
            sys.exit(1)
        # Refused: a row with problems, or one on the node already unless it is skipped.
        refused = bool(plan.bad or (plan.already and not skip_invalid))
        _report_rows(plan, skip_invalid)
        if dry_run:
            _summarize_dry_run(plan)
        elif refused and not skip_invalid:
            _refuse(plan)
        else:
            _add(node, plan, workers)
    if refused:
        sys.exit(1)


def _report_rows(plan: ImportPlan, skip_invalid: bool) -> None:
    for row in plan.rows:
        label = "error"
        if skip_invalid:
            label = "already" if row.already else "skipped"
        for name, message in row.problems:
            click.echo(f"{label}: {describe(row, name, message)}", err=True)


def _rows(count: int) -> str:
    return f"{count:,} row" + ("" if count == 1 else "s")


def _have(count: int) -> str:
    return "has" if count == 1 else "have"


def _are(count: int) -> str:
    return "is" if count == 1 else "are"


def _schools(count: int) -> str:
    return f"{count:,} school" + ("" if count == 1 else "s")


def _summarize_dry_run(plan: ImportPlan) -> None:
    total, good = len(plan.rows), len(plan.good)
    click.echo(f"Dry run of {plan.source.name}: {good:,} of {_rows(total)} can be added.")
    if plan.bad:
        click.echo(f"{_rows(len(plan.bad))} with problems (listed above on stderr).")
    if plan.already:
        click.echo(f"{_schools(len(plan.already))} on this node already, with the same profile.")
    click.echo("Nothing was added (--dry-run).")


def _refuse(plan: ImportPlan) -> None:
    total, good = len(plan.rows), len(plan.good)
    lines = []
    if plan.bad:
        count = len(plan.bad)
        lines.append(f"{_rows(count)} of {total:,} {_have(count)} problems (listed above)")
    if plan.already:
        count = len(plan.already)
        lines.append(
            f"{_schools(count)} of this file {_are(count)} on this node already (an earlier "
            "run of this file, interrupted? --skip-invalid leaves them as they are)"
        )
    for line in lines:
        click.echo(f"error: {plan.source.name}: {line}", err=True)
    click.echo(
        f"error: nothing was added; fix the rows and run this again, or add --skip-invalid "
        f"to add the {_schools(good)} that {_are(good)} good and leave the others out",
        err=True,
    )
    sys.exit(1)


def _add(node: Node, plan: ImportPlan, workers: int | None) -> None:
    started = time.monotonic()
    shown = [0]
    done = [0]

    def progress(added: int, total: int) -> None:
        done[0] = added
        if added == total or added // PROGRESS_EVERY > shown[0] // PROGRESS_EVERY:
            shown[0] = added
            seconds = time.monotonic() - started
            left = seconds / added * (total - added)
            eta = f", about {_duration(left)} left" if added < total else ""
            click.echo(f"added {added:,} of {_schools(total)} ({seconds:.0f} s{eta})", err=True)

    added = 0
    if plan.good:
        with KeyPool(workers) as pool:
            processes = f"{pool.workers} process" + ("" if pool.workers == 1 else "es")
            click.echo(f"adding {_schools(len(plan.good))}, keys made by {processes}", err=True)
            try:
                added = add_schools(node, plan.good, pool, progress)
            except KeyboardInterrupt:
                click.echo(
                    f"error: interrupted after adding {_schools(done[0])} (each one whole); "
                    "run the same command again with --skip-invalid to add the rest",
                    err=True,
                )
                sys.exit(130)
    _summarize(plan, added, time.monotonic() - started)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _summarize(plan: ImportPlan, added: int, seconds: float) -> None:
    parts = [f"Added {_schools(added)} from {plan.source.name} in {seconds:.0f} s"]
    if plan.bad:
        parts.append(f"skipped {_rows(len(plan.bad))} with problems (listed above on stderr)")
    if plan.already:
        count = len(plan.already)
        was = "was" if count == 1 else "were"
        parts.append(f"left {_schools(count)} that {was} on this node already")
    click.echo("; ".join(parts) + ".")
    if added:
        click.echo("They are served and listed while the node serves: amity school list")
