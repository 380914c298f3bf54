"""`paastech quotas` (issue 11) and a quota refusal as the CLI shows it, against a real API."""

from __future__ import annotations

import secrets

from backend.services import quotas
from tests.cli.conftest import Cli


def test_quotas_table_and_json(user: Cli, other: Cli) -> None:
    rows = user.ok("quotas", "--json").json()
    assert [r["name"] for r in rows] == list(quotas.NAMES)
    before = {r["name"]: r for r in rows}
    user.ok("projects:create", f"t-{secrets.token_hex(4)}")
    after = {r["name"]: r for r in user.ok("quotas", "--json").json()}
    assert after["projects"]["used"] == before["projects"]["used"] + 1
    assert after["projects"]["limit"] == 50
    table = user.ok("quotas").out
    for word in ("QUOTA", "LIMIT", "USED", "projects", "runtime_log_lines_per_second"):
        assert word in table
    # The second Client sees only its own usage.
    theirs = {r["name"]: r for r in other.ok("quotas", "--json").json()}
    assert theirs["projects"]["used"] == 0


def test_a_refused_scale_names_the_quota_limit_and_usage(user: Cli) -> None:
    project = f"t-{secrets.token_hex(4)}"
    user.ok("projects:create", project)
    # The default CPU quota is 16: one replica of 16 CPUs fits exactly, a second does not.
    user.ok("resources", "-p", project, "--cpu", "16")
    refused = user.fails(1, "scale", "-p", project, "web=2")
    assert "quota cpu exceeded: limit 16, in use 16, this would make 32" in refused.err
    info = user.ok("projects:info", "-p", project, "--json").json()
    assert info["scale"] == {"web": 1} and info["cpu"] == 16  # nothing changed
