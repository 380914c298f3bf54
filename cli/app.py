"""The typer application, the global options and what every command shares."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

from cli import config, output
from cli.client import Api, CliError, NotLoggedIn

T = TypeVar("T")

HELP = (
    "PaaSTech: git push to deploy.\n\n"
    "Sign up or log in, register your SSH key (keys:add), create a project inside your git "
    "repository (projects:create adds the `paastech` remote), then `git push paastech main`. "
    "Commands that act on a project take -p/--project, or find it from the `paastech` git "
    "remote of the current directory.\n\n"
    "Exit codes: 0 ok, 1 failure, 2 usage, 3 not logged in or bad token, 4 not found."
)


class App(typer.Typer):
    """A Typer app whose CliErrors end as one `error: ...` line on stderr and an exit code."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except CliError as exc:
            output.error(exc.message)
            sys.exit(exc.exit_code)


app = App(
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class State:
    api_url: str = config.DEFAULT_API_URL


state = State()


@app.callback()
def main(
    api: Annotated[
        str,
        typer.Option(
            "--api",
            envvar=config.API_URL_ENV,
            help="The GraphQL endpoint of the PaaSTech API.",
            show_default=True,
        ),
    ] = config.DEFAULT_API_URL,
) -> None:
    state.api_url = api.strip()


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def anonymous() -> Api:
    return Api(state.api_url)


def token() -> str | None:
    env = config.env_token()
    if env:
        return env
    creds = config.load(state.api_url)
    return creds.token if creds else None


def authed() -> Api:
    """The API with the caller's token; exit 3 when there is none."""
    found = token()
    if not found:
        raise NotLoggedIn()
    return Api(state.api_url, found)


# Options shared by many commands.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project",
        "-p",
        help="The project; default: the `paastech` git remote of the current directory.",
        show_default=False,
    ),
]
NoWaitOpt = Annotated[
    bool,
    typer.Option("--no-wait", help="Do not follow the new release; return at once."),
]


def fail(message: str, exit_code: int = 1) -> CliError:
    return CliError(message, exit_code)
