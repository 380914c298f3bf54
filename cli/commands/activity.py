"""Activity and sessions (issue 18): what was done on your account and projects, by which
token or session, from where; the devices logged in, revocable one by one."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer

from cli import config, output
from cli.app import JsonOpt, ProjectOpt, app, authed, run, state
from cli.client import EXIT_USAGE, Api, CliError, ConnectionLost

PANEL = "Account"
MAX_LINES = 200  # the API's page limit


def _who(a: dict[str, Any]) -> str:
    return a["tokenName"] or ("git push" if a["source"] == "git" else "-")


def _line(a: dict[str, Any]) -> str:
    when = (a["at"] or "")[:19].replace("T", " ")
    return f"{when}  {a['project'] or '-'}  {a['source']}  {_who(a)}  {a['summary']}"


def _emit(a: dict[str, Any], as_json: bool) -> None:
    sys.stdout.write((json.dumps(a) if as_json else _line(a)) + "\n")
    sys.stdout.flush()


async def _follow(api: Api, project: str | None, last_id: int, as_json: bool) -> None:
    """Live records after ``last_id``; reconnects when the connection drops."""
    delay = 0.5
    while True:
        try:
            async with api.subscribe("ActivityEvents", project=project) as events:
                delay = 0.5
                async for event in events:
                    record = event["activityEvents"]
                    if int(record["id"]) > last_id:  # the first event repeats the newest
                        last_id = int(record["id"])
                        _emit(record, as_json)
        except ConnectionLost as exc:
            output.note(f"{exc.message}; reconnecting in {delay:g} s…")
        await asyncio.sleep(delay)  # backoff before reconnecting, not a wait for an outcome
        delay = min(delay * 2, 5.0)


@app.command("activity", rich_help_panel=PANEL)
def activity(
    name_arg: Annotated[
        str | None,
        typer.Argument(
            metavar="[PROJECT]", help="Only this project's (default: all).", show_default=False
        ),
    ] = None,
    project: ProjectOpt = None,
    num: Annotated[
        int,
        typer.Option("--num", "-n", metavar="N", min=1, max=MAX_LINES, help="Recent records."),
    ] = 30,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new records (Ctrl-C to stop).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """What was done on your account and projects: deploys, config changes, add-ons, keys,
    tokens, logins; who did it (token or session) and from where (web, cli, git, api)."""
    if name_arg and project and name_arg != project:
        raise CliError(f"two projects given: {name_arg} and {project}", EXIT_USAGE)
    name = name_arg or project
    api = authed()
    records = run(api.execute("Activity", project=name, first=num))["activity"]
    records.reverse()  # oldest first, as a log reads
    if follow:
        for record in records:
            _emit(record, as_json)  # JSON Lines: a followed feed is not one document
        last = int(records[-1]["id"]) if records else 0
        run(_follow(api, name, last, as_json))
        return
    if as_json:
        output.print_json(records)
        return
    if not records:
        output.note("no activity yet")
        return
    output.table(
        ["when", "project", "source", "token", "what"],
        [
            [output.age(a["at"]), a["project"] or "-", a["source"], _who(a), a["summary"]]
            for a in records
        ],
    )


@app.command("sessions", rich_help_panel=PANEL)
def sessions(as_json: JsonOpt = False) -> None:
    """Your login sessions (web app and other logins): device, last use; * marks this one.
    The CLI itself logs in with a named API token (see `tokens`)."""
    rows = run(authed().execute("Sessions"))["sessions"]
    if as_json:
        output.print_json(rows)
        return
    if not rows:
        output.note("no login sessions")
        return
    output.table(
        ["id", "device", "last used", "created", "expires", "this"],
        [
            [
                s["id"],
                s["device"],
                output.age(s["lastUsedAt"]) if s["lastUsedAt"] else "never",
                output.age(s["createdAt"]),
                (s["expiresAt"] or "never")[:10],
                "*" if s["current"] else "",
            ]
            for s in rows
        ],
    )


@app.command("sessions:revoke", rich_help_panel=PANEL)
def sessions_revoke(
    session_id: Annotated[str, typer.Argument(metavar="ID", help="From `sessions`.")],
    as_json: JsonOpt = False,
) -> None:
    """Log one device out: its session stops working at once."""
    revoked = run(authed().execute("RevokeSession", id=session_id))["revokeSession"]
    stored = config.load(state.api_url)
    if stored and stored.token_id == revoked["id"]:
        config.forget(state.api_url)
        output.note("that was the session this CLI was logged in with: you are logged out")
    if as_json:
        output.print_json(revoked)
    else:
        output.say(f"Revoked session {revoked['id']} ({revoked['device']})")
