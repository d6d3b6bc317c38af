"""Options every command shares, and the translation of errors into one-line messages."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from ..federation.errors import FederationError
from ..node.errors import NodeError
from ..node.school_accounts import UnknownSchool
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


def _note_school_source(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """Remember a school named by AMITY_SCHOOL, so that refusing it can say where it came from."""
    if value is not None and ctx.get_parameter_source("school") == ParameterSource.ENVIRONMENT:
        ctx.meta["amity_school_env"] = value
    return value


school_option = click.option(
    "--school",
    "school",
    default=None,
    envvar="AMITY_SCHOOL",
    callback=_note_school_source,
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
        except UnknownSchool as exc:
            fail([str(exc) + _school_env_hint()])
        except (NodeError, ProtocolError, FederationError) as exc:
            fail([str(exc)])
        except BrokenPipeError:
            # The reader went away (`amity match | head`): nothing more to say to it.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except OSError as exc:
            fail([f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")])

    return wrapper  # type: ignore[return-value]


def _school_env_hint() -> str:
    ctx = click.get_current_context(silent=True)
    named = ctx.find_root().meta.get("amity_school_env") if ctx else None
    if named is None:
        return ""
    return (
        f" (the school came from AMITY_SCHOOL={named}: unset AMITY_SCHOOL, or give --school HANDLE)"
    )


# Commands that act for the node as a whole: each refuses --school with this reason.
_NODE_WIDE = "acts for the whole node, every school it hosts, and takes no --school"


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
            if isinstance(exc, click.NoSuchOption) and exc.option_name == "--school":
                path = exc.ctx.command_path if exc.ctx is not None else "this command"
                message = f"`{path}` {_NODE_WIDE}; leave --school out"
            elif isinstance(exc, click.UsageError) and exc.ctx is not None:
                message += f" (see: {exc.ctx.command_path} --help)"
            click.echo(f"error: {message}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(0)
