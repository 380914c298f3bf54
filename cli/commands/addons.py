"""Add-ons (issue 15): managed PostgreSQL and Redis, their backups, psql and redis-cli.

pg:psql and redis:cli run the client tool in a one-off container of the add-on's image on the
project's network (the /run websocket of `paastech run`, with the add-on named): the add-on is
reachable from there exactly as from the app, nothing is exposed anywhere else.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import follow, output
from cli.app import JsonOpt, ProjectOpt, app, authed, run
from cli.client import EXIT_BY_CODE, EXIT_FAILURE, EXIT_USAGE, Api, CliError, tls_options
from cli.commands.run import _raw_terminal, _session
from cli.gitremote import resolve_project

PANEL = "Add-ons"
KINDS = ("postgres", "redis")
CREATE_TIMEOUT = 300.0  # seconds: the server's first start (EnsureAddon waits up to 90 s)

NameArg = Annotated[str, typer.Argument(metavar="ADDON", help="The add-on's name.")]


def _size(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _addon_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            a["name"],
            a["kind"].lower(),
            a["plan"],
            a["status"],
            ", ".join(f"{t['project']} ({t['configVar']})" for t in a["attachments"]) or "-",
        ]
        for a in rows
    ]


@app.command("addons", rich_help_panel=PANEL)
def addons(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List your add-ons (with -p: the project's)."""
    api = authed()
    if project:
        rows = run(api.execute("ProjectAddons", project=project))["project"]["addons"]
    else:
        rows = run(api.execute("Addons"))["addons"]
    if as_json:
        output.print_json(rows)
        return
    if not rows:
        output.note("no add-ons yet: paastech addons:create postgres -p NAME")
        return
    output.table(["ADDON", "KIND", "PLAN", "STATUS", "ATTACHED TO"], _addon_rows(rows))


@app.command("addons:create", rich_help_panel=PANEL)
def addons_create(
    kind: Annotated[str, typer.Argument(metavar="KIND", help="postgres or redis.")],
    project: ProjectOpt = None,
    plan: Annotated[
        str | None, typer.Option("--plan", metavar="PLAN", help="Default: the smallest.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a PostgreSQL or Redis add-on attached to the project (DATABASE_URL / REDIS_URL,
    a new release if it runs)."""
    if kind not in KINDS:
        raise CliError(f"unknown add-on kind {kind!r}: use postgres or redis", EXIT_USAGE, "USAGE")
    name = resolve_project(project)
    api = authed()
    # The API answers once the server runs: a first PostgreSQL start (initdb) on a busy host
    # can take longer than the usual 60 s.
    api = Api(api.url, api.token, timeout=CREATE_TIMEOUT)
    created = run(api.execute("CreateAddon", project=name, kind=kind, plan=plan))
    addon = created["createAddon"]
    if as_json:
        output.print_json(addon)
        return
    output.say(
        f"Created {addon['name']} ({addon['version']}, plan {addon['plan']}, "
        f"{addon['memoryMb']} MB) and set {addon['configVar']} on {name}"
    )


@app.command("addons:info", rich_help_panel=PANEL)
def addons_info(name: NameArg, as_json: JsonOpt = False) -> None:
    """Show an add-on: its plan, server state, attachments and backups."""
    addon = run(authed().execute("AddonInfo", name=name))["addon"]
    if as_json:
        output.print_json(addon)
        return
    server = addon["server"]
    state = "unknown (engine not reachable)"
    if server:
        state = server["state"] + (f", {server['health']}" if server["health"] else "")
    attached = ", ".join(f"{t['project']} as {t['configVar']}" for t in addon["attachments"])
    size = addon["dataSizeBytes"]  # counts in the volume_mb quota (paastech quotas)
    output.table(
        ["", ""],
        [
            ["Name", addon["name"]],
            ["Kind", addon["kind"].lower()],
            ["Version", addon["version"]],
            ["Plan", f"{addon['plan']} ({addon['memoryMb']} MB)"],
            ["Status", addon["status"]],
            ["Server", state],
            ["Attached to", attached or "-"],
            ["Data", "unknown" if size is None else _size(size)],
            ["Backups", str(len(addon["backups"]))],
            ["Created", output.age(addon["createdAt"])],
        ],
    )
    history = addon["statusHistory"]
    if history:
        output.say("")
        output.table(
            ["STATUS", "SINCE", "WHY"],
            [[h["status"], output.age(h["at"]), h["message"] or "-"] for h in history[::-1]],
        )


async def _addon_logs(name: str, tail: int, follow: bool) -> None:
    """Lines as they come; a follow ends when the server stops (say so: it may restart)."""
    async with authed().subscribe("AddonLogs", name=name, tail=tail, follow=follow) as events:
        async for event in events:
            sys.stdout.write(event["addonLogs"]["line"] + "\n")
            sys.stdout.flush()
    if follow:
        output.note(f"the output of {name} ended (its server stopped)")


@app.command("addons:logs", rich_help_panel=PANEL)
def addons_logs(
    name: NameArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", "--tail", "-t", help="Keep streaming new lines.")
    ] = False,
    num: Annotated[
        int, typer.Option("--num", "-n", metavar="N", min=0, max=10_000, help="Recent lines.")
    ] = 100,
) -> None:
    """Output of the add-on's server (PostgreSQL / Redis log); -f follows it."""
    run(_addon_logs(name, num, follow))


@app.command("addons:destroy", rich_help_panel=PANEL)
def addons_destroy(
    name: NameArg,
    confirm: Annotated[
        str | None, typer.Option("--confirm", metavar="ADDON", help="The add-on's name again.")
    ] = None,
) -> None:
    """Remove an add-on and its data (a final backup is kept: pg:backups)."""
    if confirm != name:
        raise CliError(
            f"removing {name} deletes its data: run again with --confirm {name}",
            EXIT_USAGE,
            "USAGE",
        )
    run(authed().execute("RemoveAddon", name=name, confirm=confirm))
    output.say(f"Removed {name}; its final backup is listed by `paastech pg:backups`")


@app.command("addons:attach", rich_help_panel=PANEL)
def addons_attach(name: NameArg, project: ProjectOpt = None) -> None:
    """Attach an add-on to another of your projects (its config var set: a new release)."""
    target = resolve_project(project)
    api = authed()

    async def go() -> None:
        change = (await api.execute("AttachAddon", name=name, project=target))["attachAddon"]
        output.say(f"Attached {name} to {target} as {change['addon']['configVar']}")
        await follow.after_config_change(api, target, change, no_wait=True)

    run(go())


@app.command("addons:detach", rich_help_panel=PANEL)
def addons_detach(name: NameArg, project: ProjectOpt = None) -> None:
    """Detach an add-on from a project (its config var unset: a new release)."""
    target = resolve_project(project)
    api = authed()

    async def go() -> None:
        change = (await api.execute("DetachAddon", name=name, project=target))["detachAddon"]
        output.say(f"Detached {name} from {target}")
        await follow.after_config_change(api, target, change, no_wait=True)

    run(go())


@app.command("addons:rotate", rich_help_panel=PANEL)
def addons_rotate(name: NameArg) -> None:
    """Give the add-on a new password (every attached project gets a release)."""
    run(authed().execute("RotateAddonCredentials", name=name))
    output.say(f"Rotated the credentials of {name}")


# -------------------------------------------------------------------------------- backups


@app.command("pg:backups", rich_help_panel=PANEL)
def pg_backups(
    name: Annotated[
        str | None, typer.Argument(metavar="[ADDON]", help="Only this add-on's backups.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List backups of your add-ons (final backups of removed ones included), newest first."""
    rows = run(authed().execute("AddonBackups"))["addonBackups"]
    if name:
        rows = [b for b in rows if b["addonName"] == name]
    if as_json:
        output.print_json(rows)
        return
    if not rows:
        output.note("no backups yet: paastech pg:backups:capture ADDON")
        return
    output.table(
        ["ID", "ADDON", "KIND", "SIZE", "TAKEN"],
        [
            [b["id"], b["addonName"], b["kind"], _size(b["sizeBytes"]), output.age(b["createdAt"])]
            for b in rows
        ],
    )


@app.command("pg:backups:capture", rich_help_panel=PANEL)
def pg_backups_capture(name: NameArg, as_json: JsonOpt = False) -> None:
    """Take a backup of an add-on now (PostgreSQL: pg_dump -Fc; Redis: an RDB file)."""
    backup = run(authed().execute("BackupAddon", name=name))["backupAddon"]
    if as_json:
        output.print_json(backup)
        return
    output.say(f"Backup {backup['id']} of {name} taken ({_size(backup['sizeBytes'])})")


@app.command("pg:backups:restore", rich_help_panel=PANEL)
def pg_backups_restore(
    backup_id: Annotated[str, typer.Argument(metavar="ID", help="The backup's id.")],
    name: NameArg,
    confirm: Annotated[
        str | None, typer.Option("--confirm", metavar="ADDON", help="The add-on's name again.")
    ] = None,
) -> None:
    """Replace an add-on's data with a backup's."""
    if confirm != name:
        raise CliError(
            f"restoring replaces the data of {name}: run again with --confirm {name}",
            EXIT_USAGE,
            "USAGE",
        )
    run(authed().execute("RestoreAddon", name=name, backupId=backup_id))
    output.say(f"Restored backup {backup_id} into {name}")


def backup_url(api_url: str, backup_id: str) -> str:
    """GET <api>/addon-backups/<id>, beside the GraphQL endpoint."""
    return api_url.rstrip("/").rsplit("/", 1)[0] + f"/addon-backups/{backup_id}"


@app.command("pg:backups:download", rich_help_panel=PANEL)
def pg_backups_download(
    backup_id: Annotated[str, typer.Argument(metavar="ID", help="The backup's id.")],
    out: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Default: the backup's file name."),
    ] = None,
) -> None:
    """Download a backup file (PostgreSQL: for pg_restore; Redis: an RDB file)."""
    if not backup_id.isdigit():
        raise CliError(f"backup ids are numbers, not {backup_id!r}", EXIT_USAGE, "USAGE")
    import httpx  # here, not at the top: see cli/client.py (start-up time)

    api = authed()
    url = backup_url(api.url, backup_id)
    try:
        with httpx.stream(
            "GET",
            url,
            headers={"Authorization": f"Bearer {api.token}"},
            timeout=60,
            **tls_options(url),
        ) as response:
            if response.status_code != 200:
                response.read()
                try:
                    error = response.json()["errors"][0]
                    code = error["extensions"]["code"]
                    message = error["message"]
                except (ValueError, KeyError, IndexError, TypeError):
                    code, message = "FAILED", f"HTTP {response.status_code}"
                raise CliError(message, EXIT_BY_CODE.get(code, EXIT_FAILURE), code)
            disposition = response.headers.get("content-disposition", "")
            default = disposition.rsplit("filename=", 1)[-1].strip('"') or f"backup-{backup_id}"
            target = out or Path(Path(default).name)
            written = 0
            with target.open("wb") as fh:
                for chunk in response.iter_bytes():
                    fh.write(chunk)
                    written += len(chunk)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the PaaSTech API at {api.url}: {exc}") from None
    output.say(f"Wrote {target} ({_size(written)})")


# -------------------------------------------------------------------------------- clients


def _tool(name: str, project: str | None, tool: str, args: list[str]) -> None:
    api = authed()
    target = project
    if not target:
        attachments = run(api.execute("AddonInfo", name=name))["addon"]["attachments"]
        if not attachments:
            raise CliError(f"{name} is attached to no project: addons:attach first", EXIT_USAGE)
        target = attachments[0]["project"]
    use_tty = sys.stdin.isatty()
    with _raw_terminal(use_tty):
        code = run(_session(api, target, [tool, *args], use_tty, False, addon=name))
    raise typer.Exit(code)


ToolArgs = Annotated[
    list[str] | None,
    typer.Argument(metavar="[-- ARGS]", help="Arguments for the tool.", show_default=False),
]


@app.command("pg:psql", rich_help_panel=PANEL)
def pg_psql(name: NameArg, args: ToolArgs = None, project: ProjectOpt = None) -> None:
    """psql connected to a PostgreSQL add-on, run on an attached project's network."""
    _tool(name, project, "psql", list(args or []))


@app.command("redis:cli", rich_help_panel=PANEL)
def redis_cli(name: NameArg, args: ToolArgs = None, project: ProjectOpt = None) -> None:
    """redis-cli connected to a Redis add-on, run on an attached project's network."""
    _tool(name, project, "redis-cli", list(args or []))
