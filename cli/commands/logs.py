"""Logs: recent runtime output, `-f` to follow it live, `--build [N]` for a release's build log."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer

from cli import output
from cli.app import ProjectOpt, app, authed, run
from cli.client import Api, CliError, ConnectionLost
from cli.commands.releases import parse_release
from cli.gitremote import resolve_project

PANEL = "Logs"
_END = object()


class _Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.colour = output.colour_wanted(sys.stdout)
        self.console = output.out() if self.colour else None
        self.styles: dict[str, str] = {}

    def style(self, process_type: str) -> str:
        if process_type not in self.styles:
            colours = output.PROCESS_COLOURS
            self.styles[process_type] = colours[len(self.styles) % len(colours)]
        return self.styles[process_type]

    def __call__(self, log: dict[str, Any]) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps(log, ensure_ascii=False) + "\n")
        elif self.console is not None:
            prefix = f"{log['processType']}.{log['replica']} | "
            self.console.print(
                output.Text.assemble((prefix, self.style(log["processType"])), log["line"]),
                soft_wrap=True,
            )
        else:
            sys.stdout.write(f"{log['processType']}.{log['replica']} | {log['line']}\n")
        sys.stdout.flush()


async def _pump(api: Api, project: str, tail: int, queue: asyncio.Queue[Any]) -> None:
    """Subscription -> queue: 'connected', each line, then _END or the exception."""
    try:
        async with api.subscribe("RuntimeLogs", project=project, tail=tail, follow=True) as events:
            await queue.put("connected")
            async for event in events:
                await queue.put(event["runtimeLogs"])
        await queue.put(_END)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await queue.put(exc)


async def _recent(api: Api, project: str, tail: int, emit: _Printer) -> None:
    """The last `tail` lines of each running process: the API completes the stream after them
    (runtimeLogs with follow: false)."""
    async with api.subscribe("RuntimeLogs", project=project, tail=tail, follow=False) as events:
        async for event in events:
            emit(event["runtimeLogs"])


async def _follow(api: Api, project: str, tail: int, emit: _Printer) -> None:
    delay = 0.5
    while True:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        task = asyncio.create_task(_pump(api, project, tail, queue))
        try:
            while True:
                item = await queue.get()
                if item == "connected":
                    delay = 0.5
                elif item is _END:
                    output.note("log stream ended; reconnecting…")
                    break
                elif isinstance(item, ConnectionLost):
                    output.note(f"{item.message}; reconnecting in {delay:g} s…")
                    break
                elif isinstance(item, Exception):
                    raise item
                else:
                    emit(item)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
        tail = 0  # what came before the drop was printed already


async def _build_log(api: Api, project: str, number: int | None) -> None:
    if number is None:
        data = (await api.execute("LatestRelease", project=project))["project"]
        if not data["applications"]:
            raise CliError(f"{project} has no releases yet: git push paastech main")
        number = data["applications"][0]["number"]
    async with api.subscribe("BuildLogs", project=project, number=number) as events:
        async for event in events:
            sys.stdout.write(event["buildLogs"]["line"] + "\n")
            sys.stdout.flush()


@app.command("logs", rich_help_panel=PANEL)
def logs(
    release: Annotated[
        int | None,
        typer.Argument(
            parser=parse_release,
            metavar="vN",
            help="With --build: the release, v3 or 3 (default the latest).",
            show_default=False,
        ),
    ] = None,
    project: ProjectOpt = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--tail",
            "-t",
            "--follow",
            "-f",
            help="Keep streaming new lines, as Heroku's --tail (Ctrl-C to stop).",
        ),
    ] = False,
    num: Annotated[
        int,
        typer.Option(
            "--num", "-n", metavar="N", min=0, max=10_000, help="Recent lines per process."
        ),
    ] = 100,
    build: Annotated[bool, typer.Option("--build", "-b", help="A release's build log.")] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object per line (JSON Lines: logs stream, so they are not one "
            "document).",
        ),
    ] = False,
) -> None:
    """Recent runtime output of every process; -t/--tail follows it; --build [vN] shows a
    build log."""
    tail = num
    if release is not None and not build:
        raise typer.BadParameter("a release number goes with --build", param_hint="'N'")
    name = resolve_project(project)
    api = authed()
    if build:
        run(_build_log(api, name, release))
    elif follow:
        run(_follow(api, name, tail, _Printer(as_json)))
    else:
        run(_recent(api, name, tail, _Printer(as_json)))
