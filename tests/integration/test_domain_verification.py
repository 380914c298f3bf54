"""Custom domains are routed only once their control is proven by a TXT record (issue 12),
against a DNS server the test runs on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backend.services import config
from tests.conftest import PASSWORD, unique
from tests.support.databases import BACKENDS, database
from tests.support.dns import DnsZone, dns_server
from tests.support.gqlclient import SIGNUP, Api
from tests.support.servers import api_server

DOMAINS = """query($p: String!) { project(name: $p) {
  domains { hostname default verified verification { type record value } } } }"""
ADD = "mutation($p: String!, $h: String!) { addDomain(project: $p, hostname: $h) { name } }"
VERIFY = "mutation($p: String!, $h: String!) { verifyDomain(project: $p, hostname: $h) { name } }"


class Setup:
    def __init__(self, url: str, records: DnsZone) -> None:
        self.url, self.records = url, records

    async def client(self) -> Api:
        name = unique()
        data = await Api(self.url)(
            SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
        )
        return Api(self.url, data["signup"]["token"])

    async def project(self, api: Api) -> str:
        name = unique("dom")
        await api("mutation($p: String!) { createProject(name: $p) { name } }", p=name)
        return name


@pytest.fixture(scope="module", params=BACKENDS)
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    data_dir = tmp_path_factory.mktemp(f"domains-{request.param}")
    with (
        dns_server() as records,
        database(request.param, data_dir) as db_url,
        api_server(
            data_dir, db_url, dns_resolver=records.address, max_domains_per_project=3
        ) as url,
    ):
        yield Setup(url, records)


async def domains(api: Api, project: str) -> dict[str, dict]:
    found = (await api(DOMAINS, p=project))["project"]["domains"]
    return {d["hostname"]: d for d in found}


async def test_domain_is_verified_by_its_txt_record(setup: Setup) -> None:
    api = await setup.client()
    project = await setup.project(api)
    host = f"www.{project}.example.test"
    await api(ADD, p=project, h=host)
    pending = (await domains(api, project))[host]
    assert pending["verified"] is False
    challenge = pending["verification"]
    assert challenge["type"] == "TXT"
    assert challenge["record"] == f"_paastech-challenge.{host}"
    assert len(challenge["value"]) >= 24

    # No record yet, then a wrong one: refused, with the record to create in the message.
    err = await api.error(VERIFY, p=project, h=host)
    assert err.code == "NOT_VERIFIED"
    assert challenge["record"] in str(err) and challenge["value"] in str(err)
    setup.records.set(challenge["record"], "someone-elses-token")
    assert (await api.error(VERIFY, p=project, h=host)).code == "NOT_VERIFIED"
    assert (await domains(api, project))[host]["verified"] is False

    setup.records.set(challenge["record"], "unrelated", challenge["value"])
    await api(VERIFY, p=project, h=host)
    done = (await domains(api, project))[host]
    assert done["verified"] is True and done["verification"] is None
    # Verifying again is harmless.
    await api(VERIFY, p=project, h=host)


async def test_another_client_cannot_verify_or_see_it(setup: Setup) -> None:
    owner, other = await setup.client(), await setup.client()
    project = await setup.project(owner)
    host = f"shop.{project}.example.test"
    await owner(ADD, p=project, h=host)
    assert (await other.error(VERIFY, p=project, h=host)).code == "NOT_FOUND"
    assert (await other.error(DOMAINS, p=project)).code == "NOT_FOUND"
    # The same hostname cannot be claimed twice, verified or not.
    theirs = await setup.project(other)
    assert (await other.error(ADD, p=theirs, h=host)).code == "CONFLICT"
    assert (await domains(owner, project))[host]["verified"] is False


async def test_names_under_the_projects_own_hostname_need_no_proof(setup: Setup) -> None:
    api = await setup.client()
    project = await setup.project(api)
    own = f"api.{project}.localhost"
    await api(ADD, p=project, h=own)
    assert (await domains(api, project))[own]["verified"] is True


async def test_domains_per_project_are_capped(setup: Setup) -> None:
    api = await setup.client()
    project = await setup.project(api)
    for i in range(3):
        await api(ADD, p=project, h=f"d{i}.{project}.example.test")
    err = await api.error(ADD, p=project, h=f"d9.{project}.example.test")
    assert (err.code, err.field) == ("VALIDATION", "hostname")
    assert "at most 3" in str(err)
    assert len(await domains(api, project)) == 4  # the default one and three


async def test_verify_unknown_domain_is_not_found(setup: Setup) -> None:
    api = await setup.client()
    project = await setup.project(api)
    err = await api.error(VERIFY, p=project, h="nope.example.test")
    assert (err.code, err.field) == ("NOT_FOUND", "hostname")


async def test_only_verified_domains_are_routed(tmp_path: Path) -> None:
    """What releases route (Application.domains, Traefik labels, certificates) excludes
    unverified domains: hostnames_of on a real database."""
    from backend.db.config import close_db, init_db, migrate
    from backend.db.models import Client, Domain, Project
    from backend.settings import Settings

    settings = Settings(data_dir=tmp_path, secret_key="k" * 32)
    await migrate(settings)
    await init_db(settings)
    try:
        client = await Client.create(email="a@example.com", username="alice", password_hash="x")
        project = await Project.create(owner=client, name="shop")
        await Domain.create(project=project, hostname="pending.example.test")
        await Domain.create(
            project=project, hostname="proven.example.test", verified_at=datetime.now(UTC)
        )
        assert await config.hostnames_of(project) == [
            config.default_hostname(project),
            "proven.example.test",
        ]
    finally:
        await close_db()
