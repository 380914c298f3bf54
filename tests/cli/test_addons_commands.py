"""The add-on commands (issue 15) without a deployment manager: help, local refusals (nothing is
sent), and the API's refusals shown as clear errors with their exit codes."""

from __future__ import annotations

import secrets

import pytest

from tests.cli.conftest import Cli

COMMANDS = (
    "addons",
    "addons:create",
    "addons:info",
    "addons:logs",
    "addons:destroy",
    "addons:attach",
    "addons:detach",
    "addons:rotate",
    "pg:backups",
    "pg:backups:capture",
    "pg:backups:restore",
    "pg:backups:download",
    "pg:psql",
    "redis:cli",
)


def test_every_addon_command_has_help(cli: Cli) -> None:
    top = cli.ok("--help").out
    for command in COMMANDS:
        assert command in top
        assert "Usage: paastech " + command in cli.ok(command, "--help").out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("addons:create", "mysql", "-p", "x"), "unknown add-on kind 'mysql': use postgres or redis"),
        (("addons:destroy", "postgresql-amber-1"), "--confirm postgresql-amber-1"),
        (("addons:destroy", "postgresql-amber-1", "--confirm", "other"), "--confirm postgresql-amber-1"),
        (("pg:backups:restore", "1", "postgresql-amber-1"), "--confirm postgresql-amber-1"),
        (("pg:backups:download", "../x"), "backup ids are numbers"),
        (("addons:logs", "postgresql-amber-1", "-n", "-1"), "greater than or equal to 0"),
    ],
)  # fmt: skip
def test_local_refusals_exit_2_and_send_nothing(
    user: Cli, args: tuple[str, ...], message: str
) -> None:
    assert message in user.fails(2, *args).err
    assert user.ok("addons", "--json").json() == []


def test_api_refusals_are_clear_errors(user: Cli) -> None:
    project = f"adcmd-{secrets.token_hex(3)}"
    user.ok("projects:create", project)
    err = user.fails(4, "addons:info", "postgresql-amber-1").err
    assert "add-on 'postgresql-amber-1' not found" in err
    assert "backup '12345' not found" in user.fails(4, "pg:backups:download", "12345").err
    for follow in ((), ("-f",)):
        err = user.fails(4, "addons:logs", "postgresql-amber-1", *follow).err
        assert "add-on 'postgresql-amber-1' not found" in err
    err = user.fails(1, "addons:create", "redis", "-p", project, "--plan", "enormous").err
    assert "unknown plan 'enormous'" in err
    assert user.ok("addons", "--json").json() == []
