"""Follow a new release live (applicationStatus subscription) until it runs or fails."""

from __future__ import annotations

import asyncio
from typing import Any

from cli import output
from cli.client import Api, CliError, ConnectionLost

DONE_OK = {"RUNNING", "SUPERSEDED", "STOPPED"}
DONE_BAD = {"FAILED", "CRASHED"}
DONE = DONE_OK | DONE_BAD


def _describe(number: int, status: str, message: str | None) -> str:
    text = f"v{number} {status.lower()}"
    if message and status not in DONE:  # a failure's reason ends the command, once
        text += f": {message.splitlines()[0]}"
    return text + ("" if status in DONE else "…")


async def _poll(api: Api, project: str, number: int) -> tuple[str, str | None]:
    data = (await api.execute("Release", project=project, number=number))["application"]
    return data["status"], data.get("failureReason")


async def _watch(
    api: Api, project: str, number: int, spinner: output.Spinner
) -> tuple[str, str | None]:
    """The release's final status: live events, falling back to polling if they stop."""
    try:
        async with api.subscribe("ApplicationStatus", project=project) as events:
            first = True
            async for event in events:
                e = event["applicationStatus"]
                if first:
                    first = False
                    if e["number"] != number:
                        # A newer release already exists: ask for ours once, then listen.
                        status, message = await _poll(api, project, number)
                        spinner.update(_describe(number, status, message))
                        if status in DONE:
                            return status, message
                        continue
                if e["number"] != number:
                    continue
                spinner.update(_describe(number, e["status"], e.get("message")))
                if e["status"] in DONE:
                    return e["status"], e.get("message")
    except ConnectionLost:
        spinner.update("live status connection lost; polling…")
    while True:
        status, message = await _poll(api, project, number)
        spinner.update(_describe(number, status, message))
        if status in DONE:
            return status, message
        await asyncio.sleep(1)


async def follow_release(api: Api, project: str, app: dict[str, Any], url: str | None) -> None:
    """Follow release `app` ({number, status, cause}) to its end; CliError if it fails."""
    number = app["number"]
    cause = app.get("cause")
    spinner = output.Spinner()
    start = f"v{number} of {project}" + (f" ({cause})" if cause else "") + ": queued…"
    with spinner.running(start):
        status, message = await _watch(api, project, number, spinner)
    if status in DONE_BAD:
        reason = message
        if not reason:
            reason = (await _poll(api, project, number))[1]
        first, *details = (reason or "no reason given").splitlines() or [""]
        for line in details:  # the last lines of the app's output, when it did not start
            output.note(f"  {line}", style=None)
        output.note(f"build and deploy log: paastech logs --build {number} -p {project}")
        raise CliError(f"v{number} of {project} {status.lower()}: {first}")
    if status == "RUNNING":
        output.say(f"v{number} of {project} is live: {url}" if url else f"v{number} is live")
    elif status == "SUPERSEDED":
        output.say(f"v{number} of {project} was released, then superseded by a newer release")
    else:
        output.say(f"v{number} of {project} is {status.lower()}")


def latest(project_data: dict[str, Any]) -> dict[str, Any] | None:
    apps = project_data.get("applications") or []
    return apps[0] if apps else None


async def latest_number(api: Api, project: str) -> tuple[int | None, str]:
    data = (await api.execute("LatestRelease", project=project))["project"]
    app = latest(data)
    return (app["number"] if app else None), data["url"]


async def after_config_change(
    api: Api, project: str, before: int | None, changed: dict[str, Any], no_wait: bool
) -> None:
    """After a mutation that returns the Project: follow the release it made, if it made one."""
    app = latest(changed)
    if app is None or app["number"] == before:
        output.note("nothing is running yet: the change applies to the next deploy")
        return
    if no_wait:
        output.say(f"v{app['number']} of {project} {app['status'].lower()}")
        return
    await follow_release(api, project, app, changed.get("url"))


async def after_release(
    api: Api, project: str, app: dict[str, Any], no_wait: bool, url: str | None = None
) -> None:
    """After a mutation that returns the new Application."""
    if no_wait:
        output.say(f"v{app['number']} of {project} {app['status'].lower()} ({app['cause']})")
        return
    if url is None:
        url = (await api.execute("ProjectGitUrl", project=project))["project"]["url"]
    await follow_release(api, project, app, url)
