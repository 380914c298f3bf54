"""HTTPS for a pushed app through the whole platform (issue 21): Pomegranate, the API and
`python -m backend ingress` as subprocesses with TLS on, certificates from a real Pebble that
validates the HTTP-01 challenge on the ingress's HTTP port; the API shows each domain's
certificate status. tests/integration/test_ingress_https.py covers renewal, restart, failures and
the order cap in process.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.cli.conftest import new_cli
from tests.conftest import PASSWORD
from tests.integration.test_deployments import User
from tests.integration.test_ingress_https import ZONE, https_get
from tests.support.dns import DnsZone, dns_server
from tests.support.gqlclient import SIGNUP, Api
from tests.support.pebble import Pebble, pebble
from tests.support.platform import Platform, cleanup_project, fixture, platform, push, tar_dir
from tests.support.polling import within
from tests.support.servers import free_port

pytestmark = pytest.mark.docker

ELSEWHERE = "www.elsewhere.example"  # a custom domain whose DNS points at another box

DOMAINS = (
    "query($p: String!) { project(name: $p) { url domains { hostname url verified "
    "verification { record value } certificate { status issuer notAfter lastError } } } }"
)


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsZone]:
    with dns_server(ZONE, **{ELSEWHERE: "203.0.113.7"}) as zone:
        yield zone


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, dns: DnsZone
) -> Iterator[tuple[Platform, Pebble, int]]:
    http_port, https_port = free_port(), free_port()
    with (
        pebble(tmp_path_factory.mktemp("pebble"), dns, http_port=http_port) as acme,
        platform(
            tmp_path_factory.mktemp("https-platform"),
            health_check_timeout_seconds=20,
            base_domain=ZONE,
            tls=True,
            ingress_port=http_port,
            ingress_https_port=https_port,
            public_port=https_port,
            acme_directory_url=acme.directory_url,
            acme_ca_bundle=acme.ca_bundle,
            acme_resolver=dns.address,
            dns_resolver=dns.address,
            acme_public_addresses="127.0.0.1",
            acme_check_interval_seconds=0.5,
            acme_email="ops@example.com",
        ) as plat,
    ):
        try:
            yield plat, acme, https_port
        finally:
            for project in plat.projects:
                cleanup_project(project)


async def certificates(user: User, project: str) -> dict[str, dict]:
    domains = (await user.api(DOMAINS, p=project))["project"]["domains"]
    return {d["hostname"]: d for d in domains}


async def until_certificate(user: User, project: str, host: str, status: str) -> dict:
    domain = None
    async with within(60, lambda: f"{host} {status}, last {domain}"):
        while True:
            domain = (await certificates(user, project)).get(host)
            cert = domain and domain["certificate"]
            if cert and cert["status"] == status:
                return domain
            await asyncio.sleep(0.3)


async def test_pushed_app_gets_a_certificate_served_over_https(stack, dns, tmp_path):
    plat, acme, https_port = stack
    name = f"u{secrets.token_hex(4)}"
    data = await Api(plat.api_url)(
        SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
    )
    user = User(Api(plat.api_url, data["signup"]["token"]), data["signup"]["client"]["id"])
    project = await user.project(plat)
    outcome = await push(plat, user.id, project, tar_dir(fixture("python")))
    assert outcome.ok, outcome
    host = f"{project}.{ZONE}"
    assert outcome.url == f"https://{host}:{https_port}"

    domain = await until_certificate(user, project, host, "VALID")
    cert = domain["certificate"]
    assert "Pebble" in cert["issuer"] and cert["notAfter"] and cert["lastError"] is None
    assert domain["url"] == f"https://{host}:{https_port}"

    # A real TLS client, trusting only Pebble's root, reaches the app by SNI.
    answer = await https_get(acme.client_context(), https_port, host)
    assert answer.status == 200
    body = json.loads(answer.body)
    assert (body["app"], body["env"]["PAASTECH_APP"]) == ("python", project)

    async with httpx.AsyncClient(timeout=10) as http:
        redirect = await http.get(
            f"http://127.0.0.1:{plat.ingress_port}/x?y=1", headers={"Host": host}
        )
    assert redirect.status_code == 308
    assert redirect.headers["location"] == f"https://{host}:{https_port}/x?y=1"

    # A custom domain whose DNS points elsewhere: no order, the reason in the API, HTTP serves.
    await user.api(
        "mutation($p: String!, $h: String!) { addDomain(project: $p, hostname: $h) { name } }",
        p=project,
        h=ELSEWHERE,
    )
    # Unverified (issue 12): not routed, so no certificate is ever ordered for it.
    unverified = (await certificates(user, project))[ELSEWHERE]
    assert unverified["verified"] is False and unverified["certificate"] is None
    dns.set(unverified["verification"]["record"], unverified["verification"]["value"])
    await user.api(
        "mutation($p: String!, $h: String!) { verifyDomain(project: $p, hostname: $h) { name } }",
        p=project,
        h=ELSEWHERE,
    )  # routing only (issue 19): no release, the certificate manager sees the new hostname
    domain = await until_certificate(user, project, ELSEWHERE, "DNS_MISMATCH")
    assert "203.0.113.7" in domain["certificate"]["lastError"]
    assert domain["certificate"]["issuer"] is None
    async with httpx.AsyncClient(timeout=10) as http:
        plain = await http.get(
            f"http://127.0.0.1:{plat.ingress_port}/", headers={"Host": ELSEWHERE}
        )
    assert plain.status_code == 200 and plain.json()["app"] == "python"
    # The default hostname keeps its certificate.
    assert (await https_get(acme.client_context(), https_port, host)).status == 200

    # HSTS, per project: off by default, on after the setting (a new release with the label).
    assert "strict-transport-security" not in answer.headers
    settings = await user.api(
        "mutation($p: String!) { updateProjectSettings(project: $p, hsts: true) "
        "{ project { settings { hsts } } application { number } } }",
        p=project,
    )
    assert settings["updateProjectSettings"]["project"]["settings"]["hsts"] is True
    assert settings["updateProjectSettings"]["application"]["number"] == 2  # the release made
    await user.wait_status(project, 2, {"running"})
    async with within(30, "Strict-Transport-Security on the app's answers"):
        while True:
            answer = await https_get(acme.client_context(), https_port, host)
            if "strict-transport-security" in answer.headers:
                break
            await asyncio.sleep(0.2)
    assert answer.headers["strict-transport-security"] == "max-age=31536000"

    # `paastech domains` shows both: the certificate's expiry, and why the other has none.
    cli = new_cli(plat.api_url, tmp_path)
    cli.env_extra["PAASTECH_TOKEN"] = data["signup"]["token"]
    result = await asyncio.to_thread(cli.ok, "domains", "-p", project)
    rows = {line.split()[0]: line for line in result.out.splitlines() if line.strip()}
    assert f"valid until {cert['notAfter'][:10]}" in rows[host]
    assert "dns mismatch" in rows[ELSEWHERE] and "203.0.113.7" in result.out
    listed = (await asyncio.to_thread(cli.ok, "domains", "-p", project, "--json")).json()
    assert {r["hostname"]: r["certificate"]["status"] for r in listed} == {
        host: "VALID",
        ELSEWHERE: "DNS_MISMATCH",
    }
