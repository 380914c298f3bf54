"""`paastech nodes*` (issue 16): the operator's node commands, against a real API that has an
operator token (no Pomegranate here: the Swarm side is tested on a real cluster in
tests/integration/test_swarm_runtime.py). A Client's login never opens them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, new_cli
from tests.support.servers import api_server

OPERATOR_TOKEN = secrets.token_urlsafe(32)
COMMANDS = [
    ("nodes",),
    ("nodes:add",),
    ("nodes:drain", "worker-1"),
    ("nodes:activate", "worker-1"),
    ("nodes:remove", "worker-1"),
]


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("cli-nodes-api")
    with api_server(
        data_dir, login_max_failures_per_address=100_000, operator_token=OPERATOR_TOKEN
    ) as url:
        yield url


@pytest.fixture
def operator(api_url: str, tmp_path: Path) -> Cli:
    c = new_cli(api_url, tmp_path)
    c.env_extra["PAASTECH_OPERATOR_TOKEN"] = OPERATOR_TOKEN
    return c


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_a_logged_in_client_without_the_operator_token_is_refused(user: Cli, args) -> None:
    refused = user.fails(3, *args)
    assert "set PAASTECH_OPERATOR_TOKEN" in refused.err
    assert refused.out == ""


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_a_wrong_operator_token_is_forbidden(user: Cli, args) -> None:
    user.env_extra["PAASTECH_OPERATOR_TOKEN"] = OPERATOR_TOKEN[:-1] + "x"
    refused = user.fails(3, *args)
    assert "this is the operator's API: send the operator token" in refused.err


def test_a_bad_node_name_is_refused_before_anything_happens(operator: Cli) -> None:
    refused = operator.fails(1, "nodes:drain", "../../etc;rm")
    assert "give a node's id or hostname" in refused.err


def test_the_operator_without_a_swarm_is_told_what_is_missing(operator: Cli) -> None:
    # This API runs without a deployment manager: nothing to ask for nodes.
    refused = operator.fails(1, "nodes")
    assert "deploy" in refused.err and "error:" in refused.err
