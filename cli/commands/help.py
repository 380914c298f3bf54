"""`paastech help [COMMAND]` and `paastech help aliases`."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperGroup

from cli import output
from cli.aliases import ALIASES
from cli.app import JsonOpt, app
from cli.client import EXIT_USAGE, CliError


@app.command("help", rich_help_panel="Other")
def help_command(
    ctx: typer.Context,
    command: Annotated[
        str | None,
        typer.Argument(metavar="COMMAND", help="A command, or `aliases`.", show_default=False),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Help on a command (as COMMAND --help); `help aliases` lists Heroku's names."""
    group = ctx.parent.command if ctx.parent else None
    assert isinstance(group, TyperGroup) and ctx.parent is not None
    if command is None:
        typer.echo(group.get_help(ctx.parent))
        return
    if command == "aliases":
        if as_json:
            output.print_json(ALIASES)
            return
        output.say("Heroku's command names work as aliases of PaaSTech's:")
        output.table(["heroku", "paastech"], sorted(ALIASES.items()))
        output.say("-a/--app works wherever -p/--project does.")
        return
    cmd = group.get_command(ctx.parent, command)
    if cmd is None:
        raise CliError(f"no command {command!r}: see `paastech --help`", EXIT_USAGE, "USAGE")
    # Parsing `--help` prints the help and exits 0 (click's eager help option).
    cmd.make_context(command, ["--help"], parent=ctx.parent)
