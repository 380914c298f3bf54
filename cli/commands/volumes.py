"""Persistent volumes (issue 15): `volumes`, `volumes:add PATH`, `volumes:remove NAME`, as Dokku's
storage mounts. Adding or removing one releases a running project, followed live."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from backend import validation
from backend.errors import ValidationFailed
from cli import follow, output
from cli.app import JsonOpt, NoWaitOpt, ProjectOpt, app, authed, run
from cli.client import CliError
from cli.gitremote import resolve_project
from cli.prompts import ask

PANEL = "Config"


def size_text(size: float) -> str:
    if size < 0:
        return "unknown"
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _process_types(value: str | None) -> list[str] | None:
    if value is None:
        return None
    types = [t.strip() for t in value.split(",") if t.strip()]
    if not types:
        raise typer.BadParameter(
            "give process types: --process web,worker", param_hint="'--process'"
        )
    return types


def _check(rule: Callable[[str], str], value: str, hint: str) -> str:
    try:
        return rule(value)
    except ValidationFailed as exc:
        raise typer.BadParameter(exc.message, param_hint=hint) from None


@app.command("volumes", rich_help_panel=PANEL)
def volumes(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List the project's persistent volumes, with the space each uses."""
    name = resolve_project(project)
    found = run(authed().execute("Volumes", project=name))["project"]["volumes"]
    if as_json:
        output.print_json(found)
        return
    if not found:
        output.note(f"no volumes on {name}: paastech volumes:add /data")
        return
    output.table(
        ["name", "path", "processes", "size"],
        [
            [v["name"], v["mountPath"], ",".join(v["processTypes"]), size_text(v["sizeBytes"])]
            for v in found
        ],
    )


@app.command("volumes:add", rich_help_panel=PANEL)
def volumes_add(
    path: Annotated[
        str,
        typer.Argument(metavar="PATH", help="Absolute path inside the containers, e.g. /data."),
    ],
    process: Annotated[
        str | None,
        typer.Option(
            "--process", metavar="TYPES", help="Process types to mount it into (default: web)."
        ),
    ] = None,
    volume_name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="Its name (default: from the path)."),
    ] = None,
    project: ProjectOpt = None,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a persistent volume at PATH, shared by every replica of the process types (a new
    release if the project runs)."""
    path = _check(validation.mount_path, path, "'PATH'")
    if volume_name is not None:
        _check(validation.volume_name, volume_name, "'--name'")
    types = _process_types(process)
    name = resolve_project(project)
    api = authed()

    async def go() -> None:
        change = (
            await api.execute(
                "AddVolume", project=name, mountPath=path, processTypes=types, name=volume_name
            )
        )["addVolume"]
        added = next(v for v in change["project"]["volumes"] if v["mountPath"] == path)
        output.say(
            f"Added volume {added['name']} at {path} on {name} ({', '.join(added['processTypes'])})"
        )
        release = await follow.after_config_change(api, name, change, no_wait)
        if as_json:
            output.print_json(follow.changed_json(change["project"], release))

    run(go())


@app.command("volumes:remove", rich_help_panel=PANEL)
def volumes_remove(
    volume: Annotated[str, typer.Argument(metavar="NAME", help="A volume from `volumes`.")],
    project: ProjectOpt = None,
    confirm: Annotated[
        str | None,
        typer.Option(
            "--confirm", metavar="PROJECT", help="The project's name, to remove without a question."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a volume AND ITS DATA (a new release without it if the project runs). Asks for the
    project's name."""
    name = resolve_project(project)
    if confirm is None:
        output.note(f"This deletes volume {volume} of {name} and every file in it.")
        confirm = ask(f"Type {name} to confirm")
    if confirm.strip() != name:
        raise CliError(f"confirmation '{confirm.strip()}' does not match {name}: nothing removed")
    api = authed()

    async def go() -> None:
        change = (await api.execute("RemoveVolume", project=name, name=volume, confirm=name))[
            "removeVolume"
        ]
        removed = change["volume"]
        if not as_json:
            output.say(f"Removed volume {removed['name']} ({removed['mountPath']}) from {name}")
        # No --wait here: the release it made is named, not followed.
        release = await follow.after_config_change(api, name, change, no_wait=True)
        if as_json:
            output.print_json({**removed, "release": release})

    run(go())
