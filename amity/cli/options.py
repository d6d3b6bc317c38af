"""Options every command shares, and the translation of errors into one-line messages."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from ..federation.errors import FederationError
from ..node.errors import NodeError
from ..protocol.errors import ProtocolError, ValidationFailed

F = TypeVar("F", bound=Callable[..., Any])

data_option = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="./amity-data",
    envvar="AMITY_DATA",
    show_default=True,
    help="The node's data directory (config, database, keys). Also AMITY_DATA.",
)

school_option = click.option(
    "--school",
    "school",
    default=None,
    envvar="AMITY_SCHOOL",
    metavar="HANDLE",
    help="Act for this hosted school (`amity school list`); default: the node's first "
    "account. Also AMITY_SCHOOL.",
)


def fail(lines: list[str]) -> None:
    """Print each line as an error on stderr and exit non-zero."""
    for line in lines:
        click.echo(f"error: {line}", err=True)
    sys.exit(1)


def user_errors(command: F) -> F:
    """Turn the errors an operator can act on into `error: ...` lines, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ValidationFailed as exc:
            fail([f"profile field {field!r}: {message}" for field, message in exc.problems])
        except (NodeError, ProtocolError, FederationError) as exc:
            fail([str(exc)])
        except OSError as exc:
            fail([f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")])

    return wrapper  # type: ignore[return-value]


_NO_ARGS_IS_HELP: type[click.ClickException] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("_Never", (click.ClickException,), {})
)


class OneLineErrorGroup(click.Group):
    """A command group whose usage errors, like every other error, are one `error:` line."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            super().main(args, prog_name, complete_var, False, **extra)
        except _NO_ARGS_IS_HELP as exc:  # a bare group: show its help, as click would
            click.echo(exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            message = exc.format_message()
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                message += f" (see: {exc.ctx.command_path} --help)"
            click.echo(f"error: {message}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(0)
