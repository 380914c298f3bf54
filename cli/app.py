"""The typer application, the global options and what every command shares."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from difflib import get_close_matches
from importlib.metadata import version
from typing import Annotated, Any, TypeVar

import typer
import typer.core

try:  # recent typer vendors click (typer._click): its exceptions are those, not click's
    from typer._click import Context as ClickContext
    from typer._click.exceptions import ClickException, UsageError
    from typer.exceptions import Abort
except ImportError:  # pragma: no cover - older typer raises click's own
    from click import Context as ClickContext  # type: ignore[assignment]  # the same API, older typer
    from click.exceptions import Abort, ClickException, UsageError  # type: ignore[assignment]  # idem

from cli import config, output
from cli.client import EXIT_USAGE, Api, CliError, NotLoggedIn, asyncio_only

T = TypeVar("T")

HELP = (
    "PaaSTech: git push to deploy.\n\n"
    "Sign up or log in, register your SSH key (keys:add), create a project inside your git "
    "repository (projects:create adds the `paastech` remote), then `git push paastech main`. "
    "Commands that act on a project take -p/--project (or -a/--app), or find it from the "
    "`paastech` git remote of the current directory. Heroku's command names work too: "
    "`paastech help aliases`.\n\n"
    "Exit codes: 0 ok, 1 failure, 2 usage, 3 not logged in or bad token, 4 not found."
)

# Commands never proposed as "did you mean" for an unknown command: a typo must not lead to
# deleting something.
DESTRUCTIVE = frozenset(
    {
        "projects:delete",
        "apps:destroy",
        "destroy",
        "account:delete",
        "keys:remove",
        "tokens:revoke",
        "domains:remove",
        "volumes:remove",
        "env:unset",
        "config:unset",
        "stop",
        "ps:stop",
        "logout",
        "rollback",
        "releases:rollback",
        "addons:destroy",
        "addons:detach",
        "pg:backups:restore",
    }
)
# Heroku commands PaaSTech has no counterpart for: say so instead of guessing.
NOT_OFFERED = {
    "pipelines": "PaaSTech has no pipelines",
}


def json_wanted() -> bool:
    """--json anywhere on the command line: errors go to stderr as JSON too."""
    return "--json" in sys.argv[1:]


def json_error(message: str, code: str, exit_code: int) -> None:
    sys.stderr.write(
        json.dumps({"error": {"message": message, "code": code, "exitCode": exit_code}}) + "\n"
    )
    sys.stderr.flush()


class Group(typer.core.TyperGroup):
    """Suggestions for unknown commands that never propose a destructive one."""

    def resolve_command(
        self, ctx: ClickContext, args: list[str]
    ) -> tuple[str | None, Any | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            typo = args[0] if args else ""
            if typo in NOT_OFFERED:
                exc.message = f"no command {typo!r}: {NOT_OFFERED[typo]}"
                raise
            names = [n for n in self.commands if n not in DESTRUCTIVE and n != "__complete"]
            matches = get_close_matches(typo, names, n=3, cutoff=0.7)
            exc.message = f"no command {typo!r}" + (
                f"; did you mean {', '.join(matches)}?" if matches else "; see `paastech --help`"
            )
            raise


class App(typer.Typer):
    """A Typer app whose CliErrors end as one `error: ...` line on stderr (a JSON object under
    --json) and an exit code."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        asyncio_only()
        if sys.argv[1:2] == ["__complete"]:
            from cli import completion  # before click: the words are data, not options

            sys.exit(completion.main(sys.argv[2:]))
        output.json_mode = json_wanted()
        try:
            rv = super().__call__(*args, standalone_mode=False, **kwargs)
        except CliError as exc:
            if json_wanted():
                json_error(exc.message, exc.code or "FAILED", exc.exit_code)
            else:
                output.error(exc.message)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            if json_wanted():
                json_error(exc.format_message(), "USAGE", exc.exit_code)
            else:
                exc.show()
            sys.exit(exc.exit_code)
        except Abort:
            sys.stderr.write("\naborted\n")
            sys.exit(130)
        except BrokenPipeError:
            quiet_stdout()
            sys.exit(0)
        sys.exit(rv if isinstance(rv, int) else 0)


def quiet_stdout() -> None:
    """The reader went away (`paastech logs | head`): that is the end, not an error. Point
    stdout at /dev/null so the interpreter's final flush does not complain."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _friendly_type(self: Any, ctx: ClickContext) -> str | None:
    """Help shows TEXT / N / NUMBER / PATH instead of typer's <str>, <int range>, <list[str]>;
    flags show nothing."""
    if self.metavar is not None:
        return str(self.metavar)
    if getattr(self, "is_flag", False):
        return None
    bare: str = self.bare_type()
    names = {"str": "TEXT", "int": "N", "float": "NUMBER", "Path": "PATH"}
    if bare.startswith("list["):
        return names.get(bare[5:-1], "TEXT") + "..."
    return names.get(bare, bare.upper())


# typer has no hook for the type names help shows: replace its method on both parameter kinds.
typer.core.TyperOption.display_type_rich = _friendly_type  # type: ignore[method-assign]  # see above
typer.core.TyperArgument.display_type_rich = _friendly_type  # type: ignore[method-assign]  # see above

app = App(
    cls=Group,
    help=HELP,
    no_args_is_help=True,
    add_completion=False,  # `paastech completion SHELL` (cli/completion.py) handles colons
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class State:
    api_url: str = config.DEFAULT_API_URL
    api_given: bool = False  # --api or PAASTECH_API_URL: a wrong one is worth pointing at
    aliases: dict[str, str] = field(default_factory=dict)


state = State()


def _show_version(value: bool) -> None:
    if value:
        print(f"paastech {version('paastech')}")
        raise typer.Exit()


@app.callback()
def main(
    api: Annotated[
        str,
        typer.Option(
            "--api",
            envvar=config.API_URL_ENV,
            metavar="URL",
            help="The GraphQL endpoint of the PaaSTech API.",
            show_default=True,
        ),
    ] = config.DEFAULT_API_URL,
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-v",
            callback=_show_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    api = api.strip()
    if not api.startswith(("http://", "https://")):
        raise CliError(
            f"--api {api!r} is not a URL like http://127.0.0.1:8000/graphql", EXIT_USAGE, "USAGE"
        )
    state.api_url = api
    state.api_given = api != config.DEFAULT_API_URL


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except BrokenPipeError:
        quiet_stdout()
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        from cli import follow

        follow.interrupted()
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
        others = [url for url in config.logged_in_urls() if url != state.api_url]
        if others:
            raise CliError(
                f"not logged in to {state.api_url} (you are logged in to {', '.join(others)}): "
                "check --api / PAASTECH_API_URL, or run `paastech login`",
                3,
                "UNAUTHENTICATED",
            )
        raise NotLoggedIn()
    return Api(state.api_url, found)


# Options shared by many commands.
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print JSON for scripts (one document) instead of text."),
]
ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project",
        "-p",
        "--app",
        "-a",
        metavar="NAME",
        help="The project (-a/--app as on Heroku); default: the `paastech` git remote of the "
        "current directory.",
        show_default=False,
    ),
]
NoWaitOpt = Annotated[
    bool,
    typer.Option("--no-wait", help="Do not follow the new release; return at once."),
]


def fail(message: str, exit_code: int = 1) -> CliError:
    return CliError(message, exit_code)
