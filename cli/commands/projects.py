"""Projects: list, create (with the git remote), info, delete, git:remote."""

from __future__ import annotations

import contextlib
import os
import sys
import webbrowser
from typing import Annotated, Any

import typer

from backend import validation
from backend.errors import ValidationFailed
from cli import gitremote, output
from cli.app import JsonOpt, ProjectOpt, app, authed, run
from cli.client import EXIT_USAGE, CliError
from cli.prompts import ask

PANEL = "Projects"


def _remote_after(project: dict[str, Any]) -> None:
    verb = gitremote.set_remote(project["gitUrl"])
    if verb != "unchanged":
        output.say(f"git remote {gitremote.REMOTE} {verb}: {project['gitUrl']}")


@app.command("projects", rich_help_panel=PANEL)
def projects(as_json: JsonOpt = False) -> None:
    """List your projects."""
    rows = [
        {
            "name": p["name"],
            "url": p["url"],
            "release": (p["liveApplication"] or {}).get("number"),
            "status": (p["liveApplication"] or {}).get("status"),
            "state": p["state"],
            "createdAt": p["createdAt"],
        }
        for p in run(authed().execute("Projects"))["projects"]
    ]
    if as_json:
        output.print_json(rows)
        return
    if not rows:
        output.note("no projects yet: paastech projects:create NAME")
        return
    output.table(
        ["name", "url", "release", "state", "created"],
        [
            [
                r["name"],
                r["url"],
                f"v{r['release']}" if r["release"] else "-",
                output.state_text(r["state"]),
                output.age(r["createdAt"]),
            ]
            for r in rows
        ],
    )


@app.command("projects:create", rich_help_panel=PANEL)
def projects_create(
    name: Annotated[str, typer.Argument(help="A DNS label: a-z, 0-9 and '-', 2-40 characters.")],
    remote: Annotated[
        bool,
        typer.Option(help="Add the `paastech` git remote when run inside a git repository."),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Create a project; inside a git repository, also add the `paastech` remote."""
    try:
        name = validation.project_name(name)
    except ValidationFailed as exc:
        raise CliError(exc.message) from None
    project = run(authed().execute("CreateProject", name=name))["createProject"]
    if as_json:
        output.print_json({k: project[k] for k in ("name", "url", "gitUrl", "createdAt")})
    else:
        output.say(f"Created {project['name']}: {project['url']}")
        output.say(f"git URL: {project['gitUrl']}")
    if remote and gitremote.in_work_tree():
        _remote_after(project)
        if not as_json:
            output.note(f"deploy with: git push {gitremote.REMOTE} main")
    elif not as_json:
        output.note(f"then: git remote add {gitremote.REMOTE} {project['gitUrl']}")


def _one_name(positional: str | None, option: str | None) -> str | None:
    """`projects:delete NAME` and `projects:delete -p NAME` both work (as projects:create NAME)."""
    if positional and option and positional != option:
        raise CliError(f"two projects given: {positional} and {option}", EXIT_USAGE)
    return positional or option


@app.command("projects:info", rich_help_panel=PANEL)
def projects_info(
    name_arg: Annotated[
        str | None,
        typer.Argument(metavar="NAME", help="The project (as -p NAME).", show_default=False),
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a project: URL, git URL, live release, domains, scale, resources."""
    name = gitremote.resolve_project(_one_name(name_arg, project))
    p = run(authed().execute("ProjectInfo", project=name))["project"]
    live = p["liveApplication"] or {}
    s = p["settings"]
    info = {
        "name": p["name"],
        "url": p["url"],
        "gitUrl": p["gitUrl"],
        "release": live.get("number"),
        "status": live.get("status"),
        "state": p["state"],
        "commit": live.get("commitSha"),
        "releases": p["applicationCount"],
        "domains": [d["hostname"] for d in p["domains"]],
        "scale": {r["processType"]: r["replicas"] for r in s["replicas"]},
        "memoryMb": s["memoryMb"],
        "cpu": s["cpu"],
        "port": s["port"],
        "healthCheckPath": s["healthCheckPath"],
        "deployBranch": s["deployBranch"],
        "envVars": len(p["envVars"]),
        "createdAt": p["createdAt"],
    }
    if as_json:
        output.print_json(info)
        return
    output.fields(
        [
            ("name", info["name"]),
            ("url", info["url"]),
            ("git url", info["gitUrl"]),
            ("state", output.state_words(info["state"])),
            (
                "release",
                f"v{info['release']} {info['status'].lower()} ({output.short_sha(info['commit'])})"
                if info["release"]
                else "none live",
            ),
            ("releases", info["releases"]),
            ("domains", ", ".join(info["domains"])),
            ("scale", " ".join(f"{k}={v}" for k, v in info["scale"].items()) or "-"),
            ("memory", f"{info['memoryMb']} MB"),
            ("cpu", info["cpu"]),
            ("port", info["port"] or "$PORT (default)"),
            ("health check", info["healthCheckPath"] or "TCP"),
            ("deploy branch", info["deployBranch"]),
            ("env vars", info["envVars"]),
            ("created", output.age(info["createdAt"])),
        ]
    )


@app.command("projects:delete", rich_help_panel=PANEL)
def projects_delete(
    name_arg: Annotated[
        str | None,
        typer.Argument(metavar="NAME", help="The project (as -p NAME).", show_default=False),
    ] = None,
    project: ProjectOpt = None,
    confirm: Annotated[
        str | None,
        typer.Option(
            "--confirm", metavar="NAME", help="The project's name, to delete without a question."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a project: its releases, containers, images, repository. Asks for its name."""
    name = gitremote.resolve_project(_one_name(name_arg, project))
    if confirm is None:
        output.note(f"This deletes {name}: releases, containers, images and the git repository.")
        confirm = ask(f"Type {name} to confirm")
    if confirm.strip() != name:
        raise CliError(f"confirmation '{confirm.strip()}' does not match {name}: nothing deleted")
    deleted = run(authed().execute("DeleteProject", name=name))["deleteProject"]
    if as_json:
        output.print_json(deleted)
    else:
        output.say(f"Deleted {deleted['name']}")
    if gitremote.in_work_tree() and gitremote.remove_remote_if(deleted["name"]):
        output.note(f"git remote {gitremote.REMOTE} removed")


@app.command("git:remote", rich_help_panel=PANEL)
def git_remote(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Add (or fix) the `paastech` git remote of the current repository: -p NAME is required."""
    if not project:
        # Guessing from the remote this command is about to set would point it at itself.
        raise CliError("give the project: paastech git:remote -p NAME", EXIT_USAGE, "USAGE")
    if not gitremote.in_work_tree():
        raise CliError("not inside a git repository (git init first)")
    name = gitremote.resolve_project(project)
    p = run(authed().execute("ProjectGitUrl", project=name))["project"]
    verb = gitremote.set_remote(p["gitUrl"])
    if as_json:
        output.print_json({"remote": gitremote.REMOTE, "url": p["gitUrl"], "change": verb})
    else:
        output.say(f"git remote {gitremote.REMOTE} {verb}: {p['gitUrl']}")


def _graphical_browser() -> bool:
    """A browser that opens a window; never a text browser that would take over the terminal."""
    return sys.platform == "darwin" or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


@app.command("open", rich_help_panel=PANEL)
def open_app(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Open the project's URL in a browser (printed when there is none)."""
    name = gitremote.resolve_project(project)
    url = run(authed().execute("ProjectGitUrl", project=name))["project"]["url"]
    if as_json:
        output.print_json({"name": name, "url": url})
        return
    opened = False
    if _graphical_browser():
        with contextlib.suppress(webbrowser.Error):
            opened = webbrowser.open(url)
    output.say(f"Opening {url}" if opened else url)
