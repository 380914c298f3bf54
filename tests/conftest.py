"""Shared fixtures: a real API server per database backend, and signed-up clients."""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import scheduling
from tests.support.databases import BACKENDS, RawDb, database
from tests.support.gqlclient import SIGNUP, Api
from tests.support.registry import ensure_registry
from tests.support.servers import api_server

# The API's operator token (issue 16): the node API is on, and still closed to every Client.
OPERATOR_TOKEN = secrets.token_urlsafe(32)

PASSWORD = "correct-horse-7"

# In-process services hash with argon2id's cheapest parameters, as the test servers do
# (tests/support/servers.py); tests of hashing itself choose the production profile.
os.environ.setdefault("PAASTECH_PASSWORD_HASH_PROFILE", "cheapest")

# A shell without job control starts a backgrounded `make test` (`make test &`, nohup) with
# SIGINT ignored, and an ignored signal stays ignored across exec: the CLIs the tests interrupt
# with Ctrl-C would never see it. Handled here, it is back to the default in every child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config: pytest.Config) -> None:
    """The platform registry every build pushes to (issue 10), started before test modules
    are imported (they read Settings() at import time); cheap to start."""
    ensure_registry()
    scheduling.configure(config)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest modules first (tests/support/scheduling.py)."""
    items[:] = scheduling.longest_first(items, scheduling.known_durations())


@dataclass
class Server:
    backend: str
    url: str
    db: RawDb
    data_dir: Path


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The API on SQLite and on PostgreSQL: every test using it runs on both."""
    backend = request.param
    data_dir = tmp_path_factory.mktemp(f"api-{backend}")
    with (
        database(backend, data_dir) as url,
        api_server(
            data_dir,
            url,
            login_max_failures_per_address=100_000,
            operator_token=OPERATOR_TOKEN,
        ) as api_url,
    ):
        yield Server(backend, api_url, RawDb(data_dir, url), data_dir)


@pytest.fixture
def anon(server: Server) -> Api:
    return Api(server.url)


def unique(prefix: str = "u") -> str:
    return f"{prefix}{secrets.token_hex(4)}"


@dataclass
class Account:
    api: Api
    username: str
    email: str
    id: str
    token: str


SignUp = Callable[[], Awaitable[Account]]


async def sign_up(server: Server) -> Account:
    """A new Client on ``server``, signed up through the API."""
    username = unique()
    email = f"{username}@example.com"
    data = await Api(server.url)(SIGNUP, email=email, username=username, password=PASSWORD)
    token = data["signup"]["token"]
    return Account(Api(server.url, token), username, email, data["signup"]["client"]["id"], token)


@pytest.fixture
def signup(server: Server) -> SignUp:
    async def make() -> Account:
        return await sign_up(server)

    return make


@pytest.fixture
async def alice(signup: SignUp) -> Account:
    return await signup()


@pytest.fixture
async def bob(signup: SignUp) -> Account:
    return await signup()
