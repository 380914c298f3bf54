"""HTTPS on the embedded ingress against a real ACME server (Pebble), in process (issue 21).

The ingress's own parts (CertificateManager, SniContexts, the PlainHttp front and the Proxy) serve
a local upstream that echoes its request headers; Pebble validates every HTTP-01 challenge for
real by connecting to the HTTP listener at the address the test DNS server gives it. TLS clients
verify against Pebble's root from its management endpoint and nothing else.

test_ingress_https_platform.py does the same for an app deployed through the whole platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from cryptography import x509

from backend import security
from backend.ingress import certstore as cs
from backend.ingress.certificates import CertificateManager, backoff_seconds, renewal_due
from backend.ingress.proxy import Proxy, make_session
from backend.ingress.routes import Container, RouteTable
from backend.ingress.server import PlainHttp, make_runner
from backend.ingress.tls import SniContexts
from backend.settings import Settings, get_settings
from tests.support.dns import DnsZone, dns_server
from tests.support.pebble import Pebble, pebble
from tests.support.polling import within as bounded
from tests.support.servers import free_port

ZONE = "pebble.test"
SECRET = "test-secret-key-0123456789"
UNREACHABLE = f"down.{ZONE}"  # resolves to 127.0.0.2, where nothing listens
ELSEWHERE = f"elsewhere.{ZONE}"  # resolves to another box


@pytest.fixture(scope="module", autouse=True)
def secret_key() -> Iterator[None]:
    """The certificates are encrypted with the platform's secret key, as in the ingress."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PAASTECH_SECRET_KEY", SECRET)
        get_settings.cache_clear()
        security._fernet.cache_clear()
        yield
    get_settings.cache_clear()
    security._fernet.cache_clear()


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsZone]:
    with dns_server(ZONE, **{UNREACHABLE: "127.0.0.2", ELSEWHERE: "203.0.113.7"}) as zone:
        yield zone


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory, dns: DnsZone) -> Iterator[Pebble]:
    with pebble(tmp_path_factory.mktemp("pebble"), dns, http_port=free_port()) as p:
        yield p


# ------------------------------------------------------------------------------------ harness


async def echo_app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path_qs, "headers": dict(request.headers)})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@contextlib.asynccontextmanager
async def upstream() -> AsyncIterator[int]:
    runner = web.AppRunner(await echo_app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


def routed(port: int, *hostnames: str, hsts_seconds: int = 0) -> RouteTable:
    table = RouteTable()
    container = Container(
        id="c1",
        name="c1",
        project="web",
        application=1,
        replica=1,
        hostnames=hostnames,
        container_port=5000,
        host_port=port,
        running=True,
        health=None,
        hsts_seconds=hsts_seconds,
    )
    table.sync([container], trust_running=True)
    return table


def settings_for(acme: Pebble, dns: DnsZone, data_dir: Path, **extra: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "secret_key": SECRET,
        "base_domain": ZONE,
        "tls": True,
        "acme_directory_url": acme.directory_url,
        "acme_ca_bundle": str(acme.ca_bundle),
        "acme_email": "ops@example.com",
        "acme_resolver": dns.address,
        "acme_public_addresses": "127.0.0.1,127.0.0.2",
        "acme_check_interval_seconds": 0.3,
        "acme_backoff_seconds": 3600,  # one attempt per test, unless a test says otherwise
        "acme_order_timeout_seconds": 30,
    }
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Edge:
    manager: CertificateManager
    store: cs.CertStore
    http_port: int
    https_port: int


@contextlib.asynccontextmanager
async def edge(settings: Settings, table: RouteTable, http_port: int) -> AsyncIterator[Edge]:
    """The ingress's HTTP and HTTPS listeners with certificate management, as server.serve()
    wires them."""
    session = make_session()
    proxy = Proxy(table, session)
    contexts = SniContexts()
    manager = CertificateManager(settings, lambda: table.hosts().keys(), contexts)
    manager.load()
    https_port = free_port()
    http = make_runner(PlainHttp(proxy, manager, https_port).handle)
    https = make_runner(proxy.handle)
    await http.setup()
    await https.setup()
    await web.TCPSite(http, "127.0.0.1", http_port).start()
    await web.TCPSite(https, "127.0.0.1", https_port, ssl_context=contexts.default).start()
    task = asyncio.create_task(manager.run())
    try:
        yield Edge(manager, manager.store, http_port, https_port)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await http.cleanup()
        await https.cleanup()
        await session.close()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    cert: x509.Certificate


def _https_get(ctx: ssl.SSLContext, port: int, host: str, path: str) -> Answer:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response = http.client.HTTPResponse(tls)  # type: ignore[arg-type]
        response.begin()
        body = response.read()
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return Answer(
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            body,
            x509.load_der_x509_certificate(der),
        )


async def https_get(ctx: ssl.SSLContext, port: int, host: str, path: str = "/") -> Answer:
    """A real TLS client: SNI ``host``, verifying the chain and the name with ``ctx``."""
    return await asyncio.to_thread(_https_get, ctx, port, host, path)


async def status_of(
    store: cs.CertStore, host: str, wanted: str, within: float = 60
) -> cs.CertStatus:
    status = None
    async with bounded(within, lambda: f"{host}: {status} (wanted {wanted})"):
        while True:
            status = store.read_status(host)
            if status is not None and status.status == wanted:
                return status
            await asyncio.sleep(0.2)


async def http_get(port: int, host: str, path: str = "/") -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host})


# ------------------------------------------------------------------------------------ tests


async def test_certificate_by_http01_served_by_sni_and_http_redirects(acme, dns, tmp_path):
    host = f"shop.{ZONE}"
    async with upstream() as up:
        table = routed(up, host)
        async with edge(settings_for(acme, dns, tmp_path), table, acme.http_port) as e:
            status = await status_of(e.store, host, cs.VALID)
            assert status.issuer and "Pebble" in status.issuer
            now = time.time()  # dates are checked against the clock, not durations
            assert status.not_after and status.not_after > now + 3600
            assert status.last_error is None

            answer = await https_get(acme.client_context(), e.https_port, host, "/a?b=1")
            assert answer.status == 200
            san = answer.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            assert san.value.get_values_for_type(x509.DNSName) == [host]
            echoed = json.loads(answer.body)
            assert echoed["path"] == "/a?b=1"
            assert echoed["headers"]["X-Forwarded-Proto"] == "https"

            # Plain HTTP now redirects, keeping path and query ...
            redirect = await http_get(e.http_port, host, "/a?b=1")
            assert redirect.status_code == 308
            assert redirect.headers["location"] == f"https://{host}:{e.https_port}/a?b=1"
            # ... except the ACME challenge path, which must keep working on HTTP.
            challenge = await http_get(e.http_port, host, "/.well-known/acme-challenge/unknown")
            assert challenge.status_code == 200
            assert json.loads(challenge.content)["headers"]["X-Forwarded-Proto"] == "http"

            # The key is stored encrypted: no PEM in the data dir.
            stored = (tmp_path / "certs" / f"{host}.cert").read_bytes()
            assert b"PRIVATE KEY" not in stored and b"CERTIFICATE" not in stored
            assert e.store.load_certificate(host) is not None

            # A client trusting only the system CAs refuses Pebble's certificate: the checks
            # above really verified against Pebble's root.
            with pytest.raises(ssl.SSLCertVerificationError):
                await https_get(ssl.create_default_context(), e.https_port, host)


async def test_hsts_per_project_on_https_answers_only(acme, dns, tmp_path):
    host = f"strict.{ZONE}"
    async with upstream() as up:
        table = routed(up, host, hsts_seconds=600)
        async with edge(settings_for(acme, dns, tmp_path), table, acme.http_port) as e:
            await status_of(e.store, host, cs.VALID)
            answer = await https_get(acme.client_context(), e.https_port, host)
            assert answer.headers["strict-transport-security"] == "max-age=600"
            plain = await http_get(e.http_port, host, "/.well-known/acme-challenge/x")
            assert plain.status_code == 200
            assert "strict-transport-security" not in plain.headers  # never over HTTP
        table = routed(up, host)  # the project turned it off: the next release's labels
        async with edge(settings_for(acme, dns, tmp_path), table, acme.http_port) as e:
            answer = await https_get(acme.client_context(), e.https_port, host)
            assert answer.status == 200 and "strict-transport-security" not in answer.headers


async def test_restart_reuses_the_stored_certificate(acme, dns, tmp_path):
    host = f"again.{ZONE}"
    async with upstream() as up:
        table = routed(up, host)
        settings = settings_for(acme, dns, tmp_path)
        async with edge(settings, table, acme.http_port) as e:
            await status_of(e.store, host, cs.VALID)
            first = (await https_get(acme.client_context(), e.https_port, host)).cert
            orders = len(e.store.recent_orders(time.time()))
        assert orders == 1

        async with edge(settings, table, acme.http_port) as e:
            # Served at once, before any certificate round could have ordered one.
            answer = await https_get(acme.client_context(), e.https_port, host)
            assert answer.status == 200
            assert answer.cert.serial_number == first.serial_number
            assert (await http_get(e.http_port, host)).status_code == 308
            await asyncio.sleep(settings.acme_check_interval_seconds * 5)
            now = time.time()  # dates are checked against the clock, not durations
            assert len(e.store.recent_orders(now)) == orders
            assert e.store.read_status(host).status == cs.VALID  # type: ignore[union-attr]


async def test_unreachable_challenge_fails_with_the_reason_and_http_keeps_serving(
    acme, dns, tmp_path
):
    async with upstream() as up:
        table = routed(up, UNREACHABLE)
        async with edge(settings_for(acme, dns, tmp_path), table, acme.http_port) as e:
            status = await status_of(e.store, UNREACHABLE, cs.FAILED)
            assert status.last_error and "challenge failed" in status.last_error
            assert "127.0.0.2" in status.last_error  # Pebble's own words: where it connected
            now = time.time()  # dates are checked against the clock, not durations
            assert status.failures == 1 and status.next_attempt > now + 3000
            assert e.store.load_certificate(UNREACHABLE) is None
            response = await http_get(e.http_port, UNREACHABLE, "/still")
            assert response.status_code == 200  # no redirect to a certificate that isn't there
            assert json.loads(response.content)["path"] == "/still"
            # The backoff holds: no second order in the next rounds.
            await asyncio.sleep(e.manager.settings.acme_check_interval_seconds * 5)
            now = time.time()  # dates are checked against the clock, not durations
            assert len(e.store.recent_orders(now)) == 1


async def test_hostname_not_pointing_here_gets_no_order(acme, dns, tmp_path):
    async with upstream() as up:
        table = routed(up, ELSEWHERE, "localhost")
        async with edge(settings_for(acme, dns, tmp_path), table, acme.http_port) as e:
            status = await status_of(e.store, ELSEWHERE, cs.DNS_MISMATCH)
            assert status.last_error and "203.0.113.7" in status.last_error
            assert "not to this server" in status.last_error
            # Looked at again within 15 minutes (backoff 1 h here): DNS checks cost the CA nothing.
            now = time.time()  # dates are checked against the clock, not durations
            assert now + 600 < status.next_attempt <= now + 900
            await asyncio.sleep(e.manager.settings.acme_check_interval_seconds * 3)
            now = time.time()  # dates are checked against the clock, not durations
            assert e.store.recent_orders(now) == []
            assert e.store.read_status("localhost") is None  # never certifiable: not even tried
            assert (await http_get(e.http_port, ELSEWHERE)).status_code == 200


async def test_global_cap_on_orders_per_hour(acme, dns, tmp_path):
    hosts = [f"one.{ZONE}", f"two.{ZONE}"]
    async with upstream() as up:
        table = routed(up, *hosts)
        settings = settings_for(acme, dns, tmp_path, acme_orders_per_hour=1)
        async with edge(settings, table, acme.http_port) as e:
            issued = await status_of(e.store, hosts[0], cs.VALID)
            waiting = await status_of(e.store, hosts[1], cs.RATE_LIMITED)
            assert issued.issuer
            assert waiting.last_error and "1 certificate orders per hour" in waiting.last_error
            assert waiting.failures == 0  # not the hostname's fault: no backoff
            now = time.time()  # dates are checked against the clock, not durations
            assert len(e.store.recent_orders(now)) == 1


async def test_renewal_before_expiry_with_short_validity(dns, tmp_path):
    """A Pebble issuing 12-second certificates: each is replaced once less than a third of its
    lifetime is left, and the new one is served without a gap."""
    host = f"renew.{ZONE}"
    with pebble(tmp_path / "pebble", dns, http_port=free_port(), validity_seconds=12) as short:
        async with upstream() as up:
            table = routed(up, host)
            settings = settings_for(short, dns, tmp_path / "data", acme_backoff_seconds=1)
            async with edge(settings, table, short.http_port) as e:
                first = await status_of(e.store, host, cs.VALID)
                ctx = short.client_context()
                served = (await https_get(ctx, e.https_port, host)).cert
                serials = {served.serial_number}
                async with bounded(40, lambda: f"two renewals: {e.store.read_status(host)}"):
                    while len(serials) < 3:  # two renewals
                        answer = await https_get(ctx, e.https_port, host)
                        assert answer.status == 200  # verified every time: never an expired one
                        serials.add(answer.cert.serial_number)
                        await asyncio.sleep(0.3)
                latest = e.store.read_status(host)
                assert latest and latest.not_after and first.not_after
                assert latest.not_after > first.not_after
                now = time.time()  # dates are checked against the clock, not durations
                assert len(e.store.recent_orders(now)) >= 3


def test_backoff_and_renewal_arithmetic():
    assert [backoff_seconds(n, 60, 3600) for n in range(6)] == [0, 60, 120, 240, 480, 960]
    assert backoff_seconds(50, 60, 3600) == 3600
    assert not renewal_due(0, 90, 59, 1 / 3)
    assert renewal_due(0, 90, 60, 1 / 3)
    for name in ("localhost", "app.localhost", "127.0.0.1", "nodot", "a..b"):
        assert not cs.is_certifiable(name)
    assert cs.is_certifiable("app.example.com")
