"""Follow a new release live (applicationStatus subscription) until it runs or fails."""

from __future__ import annotations

import asyncio
from typing import Any

from cli import output
from cli.client import Api, CliError, ConnectionLost

# The release being followed, for the Ctrl-C message: (project, number).
_following: tuple[str, int] | None = None


def interrupted() -> None:
    """Ctrl-C: if a release was being followed, say that it goes on without us."""
    if _following is not None:
        project, number = _following
        output.note(
            f"stopped following v{number} of {project}: the deploy goes on on the server "
            f"(paastech releases -p {project}; paastech logs --build {number} -p {project})",
            style=None,
        )


def _describe(number: int, state: dict[str, Any]) -> str:
    """One status ({status, finished, failed, message}: the API says which statuses are
    finished or failed, the CLI keeps no copy of the groups)."""
    text = f"v{number} {state['status'].lower()}"
    message = state.get("message")
    if message and not state["finished"]:  # a failure's reason ends the command, once
        text += f": {message.splitlines()[0]}"
    return text + ("" if state["finished"] else "…")


async def _poll(api: Api, project: str, number: int) -> dict[str, Any]:
    data = (await api.execute("Release", project=project, number=number))["application"]
    return {**data, "message": data.get("failureReason")}


async def _watch(api: Api, project: str, number: int, spinner: output.Spinner) -> dict[str, Any]:
    """The release's final state: live events, falling back to polling if they stop."""
    try:
        async with api.subscribe("ApplicationStatus", project=project) as events:
            first = True
            async for event in events:
                e: dict[str, Any] = event["applicationStatus"]
                if first:
                    first = False
                    if e["number"] != number:
                        # A newer release already exists: ask for ours once, then listen.
                        state = await _poll(api, project, number)
                        spinner.update(_describe(number, state))
                        if state["finished"]:
                            return state
                        continue
                if e["number"] != number:
                    continue
                spinner.update(_describe(number, e))
                if e["finished"]:
                    return e
    except ConnectionLost:
        spinner.update("live status connection lost; polling…")
    while True:
        state = await _poll(api, project, number)
        spinner.update(_describe(number, state))
        if state["finished"]:
            return state
        await asyncio.sleep(1)


async def follow_release(api: Api, project: str, app: dict[str, Any], url: str | None) -> str:
    """Follow release `app` ({number, status, cause}) to its end, its final status; CliError if
    it fails."""
    global _following
    number = app["number"]
    cause = app.get("cause")
    spinner = output.Spinner()
    start = f"v{number} of {project}" + (f" ({cause})" if cause else "") + ": queued…"
    _following = (project, number)
    with spinner.running(start):
        state = await _watch(api, project, number, spinner)
    _following = None
    status: str = state["status"]
    if state["failed"]:
        reason = state.get("message")
        if not reason:
            reason = (await _poll(api, project, number))["message"]
        first, *details = (reason or "no reason given").splitlines() or [""]
        for line in details:  # the last lines of the app's output, when it did not start
            output.note(f"  {line}", style=None)
        output.note(f"build and deploy log: paastech logs --build {number} -p {project}")
        raise CliError(f"v{number} of {project} {status.lower()}: {first}")
    # A rollback says so: "v7 of shop (rollback to v5) is live".
    what = f"v{number} of {project}" + (
        f" ({cause})" if cause and cause.startswith("rollback") else ""
    )
    if status == "RUNNING":
        output.say(f"{what} is live: {url}" if url else f"{what} is live")
    elif status == "SUPERSEDED":
        output.say(f"v{number} of {project} was released, then superseded by a newer release")
    else:
        output.say(f"v{number} of {project} is {status.lower()}")
    return status


async def after_config_change(
    api: Api, project: str, change: dict[str, Any], no_wait: bool
) -> dict[str, Any] | None:
    """After a config mutation ({project, application}: the release it made, or null): follow
    that release; it ({number, status}) or None when the change made none."""
    app = change.get("application")
    if app is None:
        if change["project"].get("liveApplication"):
            output.note("nothing changed: no new release")
        else:
            output.note("nothing is running yet: the change applies to the next deploy")
        return None
    if no_wait:
        output.say(f"v{app['number']} of {project} {app['status'].lower()}")
        return {"number": app["number"], "status": app["status"]}
    status = await follow_release(api, project, app, change["project"].get("url"))
    return {"number": app["number"], "status": status}


def changed_json(project_data: dict[str, Any], release: dict[str, Any] | None) -> dict[str, Any]:
    """What --json prints after a config change: the project as changed, and the release it made
    (null when none)."""
    data = {k: v for k, v in project_data.items() if k != "liveApplication"}
    return {**data, "release": release}


async def after_release(
    api: Api, project: str, app: dict[str, Any], no_wait: bool, url: str | None = None
) -> dict[str, Any]:
    """After a mutation that returns the new Application: the release with its final status
    (its status now with no_wait)."""
    if no_wait:
        output.say(f"v{app['number']} of {project} {app['status'].lower()} ({app['cause']})")
        return {"project": project, **app}
    if url is None:
        url = (await api.execute("ProjectGitUrl", project=project))["project"]["url"]
    status = await follow_release(api, project, app, url)
    return {"project": project, **app, "status": status}
