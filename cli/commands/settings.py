"""Config: env vars and domains. A change to a running project is a new release, followed live."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from backend import validation
from backend.errors import ValidationFailed
from cli import follow, output
from cli.app import JsonOpt, NoWaitOpt, ProjectOpt, app, authed, run
from cli.client import EXIT_NOT_FOUND, EXIT_USAGE, CliError
from cli.gitremote import resolve_project

PANEL = "Config"
P = ParamSpec("P")
T = TypeVar("T")
HIDDEN = "••••••••"


def _check(rule: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        return rule(*args, **kwargs)
    except ValidationFailed as exc:
        raise CliError(exc.message) from None


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE (value may hold '=', spaces, anything), KEY=@file (the file's text),
    KEY=@@text (a literal value starting with '@')."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="'KEY=VALUE'")
        try:
            validation.env_key(key)
        except ValidationFailed as exc:
            # A bad name is a usage error (exit 2), like a missing '='.
            raise typer.BadParameter(exc.message, param_hint="'KEY=VALUE'") from None
        if value.startswith("@@"):
            value = value[1:]
        elif value.startswith("@"):
            path = Path(value[1:]).expanduser()
            try:
                value = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CliError(f"cannot read {path} for {key}: {exc}", EXIT_USAGE) from None
        values[key] = _check(validation.env_value, key, value)
    return values


@app.command("env", rich_help_panel=PANEL)
def env(
    project: ProjectOpt = None,
    reveal: Annotated[bool, typer.Option("--reveal", "-r", help="Show the values.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the env vars (values hidden unless --reveal)."""
    name = resolve_project(project)
    variables = run(authed().execute("EnvVars", project=name))["project"]["envVars"]
    rows = [{"key": v["key"], "value": v["value"] if reveal else None} for v in variables]
    if as_json:
        output.print_json(rows)
        return
    if not rows:
        output.note(f"no env vars set on {name}: paastech env:set KEY=VALUE")
        return
    output.table(["key", "value"], [[r["key"], r["value"] if reveal else HIDDEN] for r in rows])


@app.command("env:get", rich_help_panel=PANEL)
def env_get(
    key: Annotated[str, typer.Argument(metavar="KEY", show_default=False)],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print one env var's value (for scripts: `$(paastech env:get DATABASE_URL)`)."""
    name = resolve_project(project)
    variables = run(authed().execute("EnvVars", project=name))["project"]["envVars"]
    found = next((v for v in variables if v["key"] == key), None)
    if found is None:
        raise CliError(f"{key} is not set on {name}", EXIT_NOT_FOUND, "NOT_FOUND")
    if as_json:
        output.print_json({"key": key, "value": found["value"]})
    else:
        print(found["value"])


@app.command("env:set", rich_help_panel=PANEL)
def env_set(
    pairs: Annotated[
        list[str],
        typer.Argument(
            metavar="KEY=VALUE",
            help="Values may hold '=', spaces, unicode; KEY=@path reads a file; KEY=@@x sets '@x'.",
            show_default=False,
        ),
    ],
    project: ProjectOpt = None,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Set env vars, all at once (one new release if the project runs and a value changed)."""
    values = parse_assignments(pairs)
    name = resolve_project(project)
    api = authed()

    async def go() -> None:
        change = (
            await api.execute(
                "SetEnvVars",
                project=name,
                vars=[{"key": k, "value": v} for k, v in values.items()],
            )
        )["setEnvVars"]
        output.say(f"Set {', '.join(values)} on {name}")
        release = await follow.after_config_change(api, name, change, no_wait)
        if as_json:
            output.print_json(follow.changed_json(change["project"], release))

    run(go())


@app.command("env:unset", rich_help_panel=PANEL)
def env_unset(
    keys: Annotated[list[str], typer.Argument(metavar="KEY", show_default=False)],
    project: ProjectOpt = None,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove env vars (one new release if the project runs)."""
    for key in keys:
        try:
            validation.env_key(key)
        except ValidationFailed as exc:
            raise typer.BadParameter(exc.message, param_hint="'KEY'") from None
    name = resolve_project(project)
    api = authed()

    async def go() -> None:
        change = (await api.execute("UnsetEnvVars", project=name, keys=list(dict.fromkeys(keys))))[
            "unsetEnvVars"
        ]
        output.say(f"Unset {', '.join(dict.fromkeys(keys))} on {name}")
        release = await follow.after_config_change(api, name, change, no_wait)
        if as_json:
            output.print_json(follow.changed_json(change["project"], release))

    run(go())


@app.command("domains", rich_help_panel=PANEL)
def domains(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List the project's hostnames, the default one first; custom ones route once verified."""
    name = resolve_project(project)
    rows = [
        {
            "hostname": d["hostname"],
            "url": d["url"],
            "default": d["default"],
            "certificate": d["certificate"],
            "verified": d["verified"],
            "verification": d["verification"],
        }
        for d in run(authed().execute("Domains", project=name))["project"]["domains"]
    ]
    if as_json:
        output.print_json(rows)
        return
    output.table(
        ["hostname", "url", "default", "status", "certificate"],
        [
            [
                r["hostname"],
                r["url"],
                "yes" if r["default"] else "",
                _status(r),
                _certificate(r["certificate"]),
            ]
            for r in rows
        ],
    )


def _status(domain: dict[str, Any]) -> str:
    """'verified', or the TXT record that proves control (issue 12)."""
    proof = domain.get("verification")
    if domain["verified"] or not proof:
        return "verified"
    return f"unverified: create TXT {proof['record']} = {proof['value']}"


def _certificate(cert: dict[str, Any] | None) -> str:
    """One cell: the HTTPS certificate's status, its expiry, or why there is none (issue 21)."""
    if not cert:
        return ""
    text: str = cert["status"].lower().replace("_", " ")
    if cert["notAfter"]:
        text += f" until {cert['notAfter'][:10]}"
    if cert["lastError"]:
        text += f" ({cert['lastError']})"
    return text


def _domain_change(mutation: str, hostname: str, project: str | None, as_json: bool) -> None:
    """A domain change is routing only: no release, nothing restarts (backend/routing.py)."""
    host = _check(validation.hostname, hostname)
    name = resolve_project(project)
    changed = next(iter(run(authed().execute(mutation, project=name, hostname=host)).values()))
    if as_json:
        output.print_json(follow.changed_json(changed, None))
        return
    if mutation == "AddDomain":
        output.say(f"Added {host} to {name}: it routes once verified (no restart)")
        output.note(
            f"create the TXT record `paastech domains -p {name}` shows, point the DNS at the "
            f"platform, then run `paastech domains:verify {host} -p {name}`"
        )
    elif mutation == "VerifyDomain":
        output.say(f"Verified {host}: it routes to {name}'s running app now (no restart)")
    else:
        output.say(f"Removed {host} from {name} (no restart)")


@app.command("domains:add", rich_help_panel=PANEL)
def domains_add(
    hostname: Annotated[str, typer.Argument(help="e.g. www.example.com")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Route a custom hostname to the project (point its DNS at the platform). No restart."""
    _domain_change("AddDomain", hostname, project, as_json)


@app.command("domains:verify", rich_help_panel=PANEL)
def domains_verify(
    hostname: Annotated[str, typer.Argument(help="A custom hostname from `domains`.")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a custom hostname's TXT record; once found it routes to the project. No restart."""
    _domain_change("VerifyDomain", hostname, project, as_json)


@app.command("domains:remove", rich_help_panel=PANEL)
def domains_remove(
    hostname: Annotated[str, typer.Argument(help="A custom hostname from `domains`.")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop routing a custom hostname to the project. No restart."""
    _domain_change("RemoveDomain", hostname, project, as_json)
