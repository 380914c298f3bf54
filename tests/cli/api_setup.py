"""Setup steps of CLI tests through the API, in-process (issue 13), for tests whose subject is
not the step: through `paastech` a signup or a new project is one more subprocess (the CLI's
start-up, about 0.4 s of CPU), here a few requests. The CLI's client and credentials store do
the work, so what the step leaves behind is what the command leaves.

The commands themselves stay tested as subprocesses: `signup`, `login` and `projects:create`
in tests/cli/test_commands.py and test_heroku.py (the `user` and `other` fixtures of every CLI
module sign up here).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Any
from unittest import mock

from cli import config
from cli.client import Api
from tests.cli.conftest import PASSWORD, Cli


def _stored(cli: Cli) -> config.Credentials | None:
    # The credentials file of `cli` (its own XDG_CONFIG_HOME), read by the CLI's own code.
    with mock.patch.dict(os.environ, {"XDG_CONFIG_HOME": str(cli.config_home)}):
        return config.load(cli.api_url)


def sign_up(cli: Cli) -> str:
    """Sign `cli` up and log it in as `paastech signup` does: a named API token stored in its
    credentials file, the login session given back. Its username."""
    username = f"u{secrets.token_hex(4)}"
    token_name = f"cli {username}"

    async def go() -> config.Credentials:
        api = Api(cli.api_url)
        signup = await api.execute(
            "Signup", email=f"{username}@example.com", username=username, password=PASSWORD
        )
        session = api.with_token(signup["signup"]["token"])
        created = (await session.execute("CreateApiToken", name=token_name))["createApiToken"]
        await session.execute("Logout")
        return config.Credentials(
            token=created["token"],
            username=username,
            token_id=created["apiToken"]["id"],
            token_name=token_name,
        )

    creds = asyncio.run(go())
    with mock.patch.dict(os.environ, {"XDG_CONFIG_HOME": str(cli.config_home)}):
        config.save(cli.api_url, creds)
    return username


def create_project(cli: Cli, name: str) -> dict[str, Any]:
    """`paastech projects:create NAME` outside a git repository: the new project."""
    creds = _stored(cli)
    assert creds is not None, "create_project needs a signed-up Cli"
    data = asyncio.run(Api(cli.api_url, creds.token).execute("CreateProject", name=name))
    project: dict[str, Any] = data["createProject"]
    assert project["name"] == name
    return project
