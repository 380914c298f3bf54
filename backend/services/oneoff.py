"""One-off commands (issue 14): `paastech run -p NAME -- CMD...` (the API's /run websocket) and
`ssh git@HOST run NAME -- CMD...` (gitd, through the internal Deployments.Run RPC).

Both come here: the Client's own project, its live release, a non-empty command and the
per-Client cap are checked before anything starts; then Pomegranate runs the command in a fresh
container of the live release's image with its env and limits (Pomegranate.Run) and this module
only relays the streams. Closing the returned iterator cancels the call: Pomegranate removes the
container.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from backend.db.models import Client, Project
from backend.errors import Unavailable, ValidationFailed
from backend.rpc import pomegranate_types as pt
from backend.services import quotas
from backend.services.applications.deployer import get_deployer
from backend.services.projects import get_owned, live_application
from backend.settings import get_settings

MAX_ARGS = 1000
MAX_COMMAND_BYTES = 64 * 1024
MAX_TERMINAL = 10_000  # rows or columns
NOTHING_RUNNING = "nothing is running: push first"
CAP_NAME = "run_max_per_client"


@dataclass(frozen=True, slots=True)
class RunRequest:
    project: str
    command: list[str]
    tty: bool = False
    detach: bool = False
    rows: int = 0
    cols: int = 0
    # Issue 15 (pg:psql, redis:cli): the add-on whose client tool runs, in a one-off container
    # of the add-on's image on the project's network; ``command`` is then the tool's arguments.
    addon: str = ""


def check_command(command: object) -> list[str]:
    """The argv to run; ValidationFailed when it is empty or not a list of plain strings."""
    if not isinstance(command, list) or not command:
        raise ValidationFailed("no command: put it after --, e.g. run -- ls", field="command")
    if not all(isinstance(arg, str) for arg in command):
        raise ValidationFailed("the command must be a list of strings", field="command")
    if not command[0].strip():
        raise ValidationFailed("no command: put it after --, e.g. run -- ls", field="command")
    if len(command) > MAX_ARGS or sum(len(a.encode()) for a in command) > MAX_COMMAND_BYTES:
        raise ValidationFailed(
            f"the command is too long (at most {MAX_ARGS} arguments, "
            f"{MAX_COMMAND_BYTES // 1024} KiB)",
            field="command",
        )
    if any("\x00" in arg for arg in command):
        raise ValidationFailed("the command must not contain NUL characters", field="command")
    return list(command)


def terminal_size(rows: int, cols: int) -> pt.TerminalSize | None:
    if 0 < rows <= MAX_TERMINAL and 0 < cols <= MAX_TERMINAL:
        return pt.TerminalSize(rows=rows, cols=cols)
    return None


# One start at a time per Client in this process, so two starts cannot both pass the cap.
_locks: dict[int, asyncio.Lock] = {}


async def running_oneoffs(client_id: int) -> int:
    """One-off containers of all the Client's projects, as the engine sees them."""
    deployer = get_deployer()
    count = 0
    for name in await Project.filter(owner_id=client_id).values_list("name", flat=True):
        count += sum(1 for c in await deployer.pomegranate.list_processes(str(name)) if c.one_off)
    return count


async def run(
    client: Client, request: RunRequest, inputs: AsyncIterator[pt.RunInput]
) -> AsyncGenerator[pt.RunOutput]:
    """Check, start, then relay: ``started`` (the container's name), output, ``exit``.

    Raises NotFound (another Client's project or none), ValidationFailed (empty command, nothing
    running, the cap reached) or Unavailable before anything starts."""
    command = check_command(request.command)
    project = await get_owned(client, request.project)
    live = await live_application(project)
    if live is None or not live.image:
        raise ValidationFailed(NOTHING_RUNNING, field="project")
    deployer = get_deployer()
    settings = get_settings()
    spec = deployer.release_spec(live, project)
    addon = ""
    if request.addon:
        from backend.services import addons

        spec, command = await addons.client_tool(client, project, request.addon, spec, command)
        addon = request.addon  # checked: the Client's, attached to the project
    start = pt.RunStart(
        spec=spec,
        command=command,
        tty=request.tty,
        detach=request.detach,
        timeout_seconds=settings.run_timeout_seconds,
        size=terminal_size(request.rows, request.cols),
        addon=addon,
    )
    events = deployer.pomegranate.run(start, inputs)
    async with contextlib.aclosing(events):
        lock = _locks.setdefault(client.id, asyncio.Lock())
        async with lock:
            limit = settings.run_max_per_client
            used = await running_oneoffs(client.id)
            if used >= limit:
                raise ValidationFailed(
                    quotas.refusal_message(CAP_NAME, limit, used)
                    + ": wait for a one-off command to end",
                    field="command",
                )
            # Held until the container exists, so the next start counts it.
            first = await anext(events, None)
        if first is None:
            raise Unavailable("the deployment manager ended the command before it started")
        yield first
        async for event in events:
            yield event
