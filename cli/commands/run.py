"""`paastech run -p NAME -- CMD...`: a one-off command in a fresh container of the live release
(Heroku's `heroku run`), over the API's /run websocket (backend/api/run_ws.py has the protocol)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli import output
from cli.app import ProjectOpt, app, authed, run
from cli.client import EXIT_BY_CODE, EXIT_FAILURE, EXIT_USAGE, Api, CliError
from cli.gitremote import resolve_project

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

PANEL = "Releases and processes"
STDOUT, STDERR = 1, 2
CHUNK = 64 * 1024
USAGE = "put the command after --, e.g. paastech run -p NAME -- python manage.py migrate"


def run_url(api_url: str) -> str:
    """The /run websocket beside the GraphQL endpoint: http://h:p/graphql -> ws://h:p/run."""
    base = api_url.rstrip("/").rsplit("/", 1)[0]
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/run"
    return "ws://" + base.removeprefix("http://") + "/run"


def _size() -> tuple[int, int]:
    size = shutil.get_terminal_size(fallback=(0, 0))
    return size.lines, size.columns


def _stdin_reader(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None]) -> None:
    """stdin -> queue from a daemon thread (works for terminals, pipes and files alike; a
    daemon never holds the process open once the command is over)."""

    def read() -> None:
        fd = sys.stdin.fileno()
        while True:
            try:
                data = os.read(fd, CHUNK)
            except OSError:
                data = b""
            loop.call_soon_threadsafe(queue.put_nowait, data or None)
            if not data:
                return

    threading.Thread(target=read, name="stdin", daemon=True).start()


async def _send_stdin(ws: ClientConnection, queue: asyncio.Queue[bytes | None]) -> None:
    while (data := await queue.get()) is not None:
        await ws.send(data)
    await ws.send(json.dumps({"type": "stdin_closed"}))


async def _session(
    api: Api, project: str, command: list[str], tty: bool, detach: bool, addon: str | None = None
) -> int:
    """One /run session; with ``addon``: the add-on's client tool (pg:psql, redis:cli)."""
    # Imported here, not at the top: see cli/client.py (start-up time).
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

    rows, cols = _size() if tty else (0, 0)
    start: dict[str, Any] = {
        "project": project,
        "command": command,
        "tty": tty,
        "detach": detach,
        "rows": rows,
        "cols": cols,
    }
    if addon:
        start["addon"] = addon
    headers = {"Authorization": f"Bearer {api.token}"}
    try:
        ws = await connect(
            run_url(api.url), additional_headers=headers, max_size=None, open_timeout=20
        )
    except InvalidStatus as exc:
        raise CliError(
            f"the API at {api.url} refused the run connection (HTTP {exc.response.status_code})"
        ) from None
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise CliError(f"cannot reach the PaaSTech API at {api.url}: {exc}") from None
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[Any]] = []
    try:
        await ws.send(json.dumps(start))
        async for message in ws:
            if isinstance(message, bytes):
                stream = sys.stdout if message[:1] != bytes([STDERR]) else sys.stderr
                stream.buffer.write(message[1:])
                stream.buffer.flush()
                continue
            event = json.loads(message)
            kind = event.get("type")
            if kind == "error":
                code = str(event.get("code") or "FAILED")
                raise CliError(str(event.get("message")), EXIT_BY_CODE.get(code, 1), code)
            if kind == "started":
                if detach:
                    output.say(
                        f"Started {event['name']} in the background: its output is in "
                        f"`paastech logs -p {project}`; it is removed when it ends."
                    )
                    return 0
                queue: asyncio.Queue[bytes | None] = asyncio.Queue()
                _stdin_reader(loop, queue)
                tasks.append(asyncio.create_task(_send_stdin(ws, queue)))
                if tty:
                    tasks.append(asyncio.create_task(_resizes(ws)))
            elif kind == "exit":
                if event.get("reason"):
                    output.error(str(event["reason"]))
                return int(event.get("code", EXIT_FAILURE))
        raise CliError("the API closed the connection before the command ended")
    except ConnectionClosed:
        raise CliError("the connection to the API was lost; the command was stopped") from None
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await ws.close()


async def _resizes(ws: ClientConnection) -> None:
    """The local terminal's new size after each SIGWINCH."""
    changed = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGWINCH, changed.set)
    try:
        while True:
            await changed.wait()
            changed.clear()
            rows, cols = _size()
            await ws.send(json.dumps({"type": "resize", "rows": rows, "cols": cols}))
    finally:
        loop.remove_signal_handler(signal.SIGWINCH)


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Any:
    """The local terminal in raw mode while a TTY session runs: keys (Ctrl-C included) go to
    the remote command, which echoes them."""
    if not enabled:
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@app.command(
    "run",
    rich_help_panel=PANEL,
    # Everything after the first argument is the command's, options included.
    context_settings={"allow_interspersed_args": False},
)
def run_command(
    command: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="COMMAND", help="The command and its arguments.", show_default=False
        ),
    ] = None,
    project: ProjectOpt = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            "-d",
            help="Run in the background: prints the container's name; the output goes to "
            "`paastech logs`.",
        ),
    ] = False,
    tty: Annotated[
        bool | None,
        typer.Option(
            "--tty/--no-tty",
            help="Give the command a terminal (default: when stdin is a terminal).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a one-off command in a fresh container of the live release (its image, env and
    limits); exits with the command's exit code. As `heroku run`."""
    argv = sys.argv[1:]
    if "--" not in argv:
        raise CliError(f"no `--` before the command: {USAGE}", EXIT_USAGE, "USAGE")
    if not command:
        raise CliError(f"no command after --: {USAGE}", EXIT_USAGE, "USAGE")
    name = resolve_project(project)
    api = authed()
    use_tty = (sys.stdin.isatty() if tty is None else tty) and not detach
    if use_tty and not sys.stdin.isatty():
        raise CliError("--tty needs stdin to be a terminal", EXIT_USAGE, "USAGE")
    with _raw_terminal(use_tty):
        code = run(_session(api, name, list(command), use_tty, detach))
    raise typer.Exit(code)
