"""Heroku's command names, as hidden aliases of PaaSTech's (listed by `paastech help aliases`).

One table: the alias registration, the help listing, completion and the README's table all come
from ALIASES.
"""

from __future__ import annotations

import copy

import typer

# Heroku name -> PaaSTech command.
ALIASES: dict[str, str] = {
    "apps": "projects",
    "apps:create": "projects:create",
    "create": "projects:create",
    "apps:destroy": "projects:delete",
    "destroy": "projects:delete",
    "apps:info": "projects:info",
    "info": "projects:info",
    "apps:open": "open",
    "config": "env",
    "config:get": "env:get",
    "config:set": "env:set",
    "config:unset": "env:unset",
    "ps:scale": "scale",
    "ps:restart": "restart",
    "releases:rollback": "rollback",
    "auth:login": "login",
    "auth:logout": "logout",
    "auth:whoami": "whoami",
    "authorizations": "tokens",
    "authorizations:create": "tokens:create",
    "authorizations:revoke": "tokens:revoke",
    "accounts:destroy": "account:delete",
}


def register(app: typer.Typer) -> None:
    """Register every alias as a hidden copy of its command (same callback, same options)."""
    by_name = {info.name: info for info in app.registered_commands}
    for alias, target in ALIASES.items():
        info = copy.copy(by_name[target])
        info.name = alias
        info.hidden = True
        app.registered_commands.append(info)
