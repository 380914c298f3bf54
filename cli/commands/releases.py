"""Releases and processes: releases, deploy, rollback, restart, ps, scale, resources, stop/start."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from cli import follow, output
from cli.app import JsonOpt, NoWaitOpt, ProjectOpt, app, authed, run
from cli.client import Api
from cli.gitremote import resolve_project

PANEL = "Releases and processes"
RELEASE_RE = re.compile(r"^[vV]?(?P<n>[1-9][0-9]{0,8})$")
SCALE_RE = re.compile(r"^(?P<type>[A-Za-z0-9_-]+)=(?P<n>\d+)$")
# Heroku's ps:restart argument: a process type (web) or one replica of it (web.2).
PROCESS_RE = re.compile(r"^(?P<type>[A-Za-z0-9_-]+)(?:\.(?P<n>[0-9]{1,4}))?$")
# `restart web` answers once every replica is back, one after the other (each up to its stop
# grace and health check): far longer than an ordinary call may take.
RESTART_PROCESSES_TIMEOUT = 900.0
MEMORY_RE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[mMgG]?)(?:[bB]|[iI][bB])?$")


def parse_release(value: str) -> int:
    """A release number as tables show it (`v3`) or bare (`3`)."""
    match = RELEASE_RE.match(str(value).strip())
    if not match:
        raise typer.BadParameter(f"{value!r} is not a release number like v3 or 3")
    return int(match["n"])


ReleaseArg = Annotated[
    int | None,
    typer.Argument(
        parser=parse_release,
        metavar="vN",
        help="The release to go back to (v3 or 3); default the one before the live one.",
        show_default=False,
    ),
]


def _release_rows(apps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "number": a["number"],
            "status": a["status"],
            "cause": a["cause"],
            "commit": a["commitSha"],
            "createdAt": a["createdAt"],
            "finishedAt": a["finishedAt"],
            "failureReason": a["failureReason"],
        }
        for a in apps
    ]


@app.command("releases", rich_help_panel=PANEL)
def releases(
    project: ProjectOpt = None,
    num: Annotated[
        int, typer.Option("--num", "-n", metavar="N", min=1, max=100, help="How many.")
    ] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The release history, newest first: number, status, cause, commit, age."""
    name = resolve_project(project)
    data = run(authed().execute("Releases", project=name, first=num))["project"]
    rows = _release_rows(data["applications"])
    if as_json:
        output.print_json(rows)
        return
    if not rows:
        output.note(f"no releases of {name} yet: git push paastech main")
        return
    output.table(
        ["release", "status", "cause", "commit", "age"],
        [
            [
                f"v{r['number']}",
                output.status_text(r["status"]),
                r["cause"] + (f" ({r['failureReason']})" if r["failureReason"] else ""),
                output.short_sha(r["commit"]),
                output.age(r["createdAt"]),
            ]
            for r in rows
        ],
    )


def _release_command(
    mutation: str, project: str | None, no_wait: bool, as_json: bool, **variables: Any
) -> None:
    name = resolve_project(project)
    api = authed()

    async def go() -> None:
        data = await api.execute(mutation, project=name, **variables)
        app_data = next(iter(data.values()))
        release = await follow.after_release(api, name, app_data, no_wait)
        if as_json:
            output.print_json(release)

    run(go())


@app.command("deploy", rich_help_panel=PANEL)
def deploy(
    project: ProjectOpt = None, no_wait: NoWaitOpt = False, as_json: JsonOpt = False
) -> None:
    """Build and release the last pushed source again."""
    _release_command("Deploy", project, no_wait, as_json)


@app.command("rollback", rich_help_panel=PANEL)
def rollback(
    number: ReleaseArg = None,
    project: ProjectOpt = None,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Release an earlier release's image and env vars again, as a new release."""
    _release_command("Rollback", project, no_wait, as_json, number=number)


def parse_process(value: str) -> tuple[str, int | None]:
    """`web` -> ("web", None): every replica; `web.2` -> ("web", 2): that one replica."""
    match = PROCESS_RE.match(value.strip())
    if not match:
        raise typer.BadParameter(
            f"{value!r} is not PROCESS or PROCESS.N (e.g. web or web.2)", param_hint="'PROCESS'"
        )
    if match["n"] is None:
        return match["type"], None
    replica = int(match["n"])
    if replica < 1:
        raise typer.BadParameter(
            f"{value!r}: replicas are numbered from 1 ({match['type']}.1 is the first)",
            param_hint="'PROCESS'",
        )
    return match["type"], replica


@app.command("restart", rich_help_panel=PANEL)
def restart(
    process: Annotated[
        str | None,
        typer.Argument(
            metavar="PROCESS[.N]",
            help="web: every web replica; web.2: that one; none: the whole app (a new release).",
            show_default=False,
        ),
    ] = None,
    project: ProjectOpt = None,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Restart the app: without PROCESS, replace every container (a new release); with web or
    web.2, restart those containers in place, one at a time (no new release)."""
    if process is None:
        _release_command("Restart", project, no_wait, as_json)
        return
    process_type, replica = parse_process(process)
    name = resolve_project(project)
    api = authed()
    api.timeout = RESTART_PROCESSES_TIMEOUT
    restarted = run(
        api.execute("RestartProcesses", project=name, processType=process_type, replica=replica)
    )["restartProcesses"]
    rows = _process_rows(restarted)
    if as_json:
        output.print_json(rows)
        return
    releases = sorted({f"v{r['release']}" for r in rows})
    output.say(f"Restarted {', '.join(r['process'] for r in rows)} of {', '.join(releases)}")


@app.command("start", rich_help_panel=PANEL)
def start(project: ProjectOpt = None, no_wait: NoWaitOpt = False, as_json: JsonOpt = False) -> None:
    """Start the last stopped release again (a new release)."""
    _release_command("Start", project, no_wait, as_json)


@app.command("stop", rich_help_panel=PANEL)
def stop(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Stop every container of the project; `start` brings it back.

    Refused while a release is in progress (queued, building or deploying): it would go live
    after the stop. Wait for it (`paastech releases`), then stop."""
    name = resolve_project(project)
    stopped = run(authed().execute("Stop", project=name))["stop"]
    if as_json:
        output.print_json({"project": name, **stopped})
    else:
        output.say(f"Stopped {name} (v{stopped['number']} {stopped['status'].lower()})")


def _process_rows(processes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "process": f"{p['processType']}.{p['replica']}",
            "processType": p["processType"],
            "replica": p["replica"],
            "state": p["state"],
            "running": p["running"],
            "release": p["application"],
            "restarts": p["restartCount"],
            "exitCode": p["exitCode"],
            "oomKilled": p["oomKilled"],
            "startedAt": p["startedAt"],
            "hostPort": p["hostPort"],
        }
        for p in sorted(
            processes, key=lambda p: (p["processType"] != "web", p["processType"], p["replica"])
        )
    ]


@app.command("ps", rich_help_panel=PANEL)
def ps(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """The project's processes: type.replica, state, release."""
    name = resolve_project(project)
    found = run(authed().execute("Processes", project=name))["project"]
    rows = _process_rows(found["processes"])
    if as_json:
        output.print_json(rows)
        return
    if found["state"] == "IDLE":  # live, but nothing answers at its URL (issue 18)
        output.say(
            f"{name} is idle (0 web): nothing serves {found['url']} (paastech scale web=1)",
            style="yellow",
        )
    if not rows:
        output.note(f"no processes of {name} are running")
        return

    def state(r: dict[str, Any]) -> output.Text:
        text = r["state"] + (" (out of memory)" if r["oomKilled"] else "")
        if r["exitCode"] not in (None, 0) and not r["running"]:
            text += f" (exit {r['exitCode']})"
        return output.Text(text, style="green" if r["running"] else "red")

    output.table(
        ["process", "state", "release", "restarts", "started"],
        [
            [r["process"], state(r), f"v{r['release']}", r["restarts"], output.age(r["startedAt"])]
            for r in rows
        ],
    )


def parse_scale(pairs: list[str]) -> list[tuple[str, int]]:
    parsed: dict[str, int] = {}
    for pair in pairs:
        match = SCALE_RE.match(pair.strip())
        if not match:
            raise typer.BadParameter(
                f"{pair!r} is not TYPE=N (e.g. web=2 worker=1)", param_hint="'TYPE=N'"
            )
        parsed[match["type"]] = int(match["n"])
    return list(parsed.items())


def _show_scale(api: Api, name: str, as_json: bool) -> None:
    s = run(api.execute("Resources", project=name))["project"]["settings"]
    formation = {r["processType"]: r["replicas"] for r in s["replicas"]}
    if as_json:
        output.print_json(formation)
    elif not formation:
        output.note(f"no process types yet: deploy {name} first")
    else:
        output.say(" ".join(f"{t}={n}" for t, n in formation.items()))


@app.command("scale", rich_help_panel=PANEL)
def scale(
    pairs: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TYPE=N",
            help="e.g. web=2 worker=1; none: show the current scale.",
            show_default=False,
        ),
    ] = None,
    project: ProjectOpt = None,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the scale, or set the replicas of process types, several at once: scale web=2
    worker=1 (no release when nothing changes)."""
    wanted = parse_scale(pairs or [])
    name = resolve_project(project)
    api = authed()
    if not wanted:
        _show_scale(api, name, as_json)
        return

    async def go() -> None:
        change: dict[str, Any] = {}
        made = None  # the last release made: it replaces any earlier one still queued
        for process_type, replicas in wanted:
            change = (
                await api.execute(
                    "Scale", project=name, processType=process_type, replicas=replicas
                )
            )["scale"]
            made = change["application"] or made
        scales = " ".join(
            f"{s['processType']}={s['replicas']}" for s in change["project"]["settings"]["replicas"]
        )
        output.say(f"Scale of {name}: {scales}")
        release = await follow.after_config_change(
            api, name, {**change, "application": made}, no_wait
        )
        if as_json:
            output.print_json(follow.changed_json(change["project"], release))

    run(go())


def parse_memory(value: str) -> int:
    """'256', '256m', '256MB', '1g', '1.5G', '512MiB' -> MB."""
    match = MEMORY_RE.match(value.strip())
    if not match:
        raise typer.BadParameter(
            f"{value!r} is not a size like 256m or 1g", param_hint="'--memory'"
        )
    number = float(match["n"])
    mb = number * 1024 if match["unit"].lower() == "g" else number
    if mb != int(mb):
        raise typer.BadParameter(f"{value!r} is not a whole number of MB", param_hint="'--memory'")
    return int(mb)


@app.command("resources", rich_help_panel=PANEL)
def resources(
    memory: Annotated[
        str | None, typer.Option("--memory", "-m", help="Memory limit per container: 256m, 1g.")
    ] = None,
    cpu: Annotated[
        float | None, typer.Option("--cpu", "-c", help="CPUs per container: 0.5, 1, 2.")
    ] = None,
    project: ProjectOpt = None,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show, or set with --memory/--cpu, the resource limits of every container."""
    memory_mb = parse_memory(memory) if memory is not None else None
    name = resolve_project(project)
    api = authed()
    if memory_mb is None and cpu is None:
        s = run(api.execute("Resources", project=name))["project"]["settings"]
        info = {"memoryMb": s["memoryMb"], "cpu": s["cpu"]}
        if as_json:
            output.print_json(info)
        else:
            output.fields([("memory", f"{info['memoryMb']} MB"), ("cpu", info["cpu"])])
        return

    async def go() -> None:
        change = (await api.execute("SetResources", project=name, memoryMb=memory_mb, cpu=cpu))[
            "setResources"
        ]
        s = change["project"]["settings"]
        output.say(f"Resources of {name}: memory {s['memoryMb']} MB, cpu {s['cpu']}")
        release = await follow.after_config_change(api, name, change, no_wait)
        if as_json:
            output.print_json(follow.changed_json(change["project"], release))

    run(go())
