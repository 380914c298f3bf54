"""What TLS costs on the embedded ingress: requests/s and TLS handshakes through it, HTTPS vs
plain HTTP (issue 21).

One platform with HTTPS on (tests/support/platform.py) gets its certificates from a Pebble started
here with a test DNS server (tests/support/pebble.py), as the tests do. The `node` fixture app is
deployed (see bench/ingress_throughput.py for why that one, and for the direct/nginx rows) and
gets a certificate for `<project>.pebble.test` by a real HTTP-01 validation. A second hostname, a
custom domain whose DNS points elsewhere (verified by its TXT record in the test DNS server, since
only verified domains are routed), gets none, so it is served over plain HTTP without the
redirect: the HTTP rows use it, the HTTPS rows the certificated one, same app, same ingress.

Rows (the same --concurrency, --warmup, --duration each):

- HTTP keep-alive (baseline), HTTPS keep-alive: requests on reused connections; the difference is
  the symmetric encryption of each request and response.
- HTTP / HTTPS, new connection per request (`Connection: close`): every request pays a TCP
  connection, and for HTTPS a full TLS handshake (ECDSA P-256 certificate, TLS 1.3); the HTTPS
  row's requests/s is the ingress's handshakes/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.ingress_throughput import APP, APP_CPUS, BODY_MARK, RESOURCES, _check, _row
from bench.load import LoadResult, run_load
from bench.registry import BenchmarkFailed, Options, Row, register

NAME = "ingress-tls"
ZONE = "pebble.test"
PLAIN_HOST = "www.elsewhere.example"  # DNS points elsewhere: never certificated, plain HTTP
ADD_DOMAIN = """mutation($p: String!, $h: String!) { addDomain(project: $p, hostname: $h) {
  domains { hostname verification { record value } } } }"""
VERIFY_DOMAIN = """mutation($p: String!, $h: String!) {
  verifyDomain(project: $p, hostname: $h) { name } }"""
CERT = """query($p: String!) { project(name: $p) {
  liveApplication { number status } domains { hostname certificate { status lastError } } } }"""


async def _one_connection(port: int, host: str, tls: ssl.SSLContext | None) -> str | None:
    """Connect (and handshake), GET / with Connection: close, read to EOF; None when good."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=tls, server_hostname=host if tls else None
    )
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    if not data.startswith(b"HTTP/1.1 200"):
        return f"HTTP {data[9:12].decode(errors='replace') or 'no answer'}"
    return None if BODY_MARK in data else "wrong body"


async def connection_load(
    port: int, host: str, tls: ssl.SSLContext | None, opts: Options
) -> LoadResult:
    """Like bench.load.run_load, but a new connection per request."""

    async def phase(seconds: float, result: LoadResult | None) -> None:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    error = await _one_connection(port, host, tls)
                except (OSError, ssl.SSLError) as exc:
                    error = type(exc).__name__
                if result is None:
                    continue
                result.requests += 1
                if error is None:
                    result.latencies_ms.append((time.perf_counter() - start) * 1000)
                else:
                    result.errors += 1
                    result.error_kinds[error] += 1

        await asyncio.gather(*(worker() for _ in range(opts.concurrency)))

    if opts.warmup > 0:
        await phase(opts.warmup, None)
    result = LoadResult(0, 0, 0.0, [], Counter())
    started = time.perf_counter()
    await phase(opts.duration, result)
    result.elapsed = time.perf_counter() - started
    return result


async def _until_certificates(session, project: str, hosts: dict[str, str]) -> None:
    deadline = time.monotonic() + 120
    state: dict = {}
    while time.monotonic() < deadline:
        state = (await session.gql(CERT, p=project))["project"]
        got = {d["hostname"]: (d["certificate"] or {}).get("status") for d in state["domains"]}
        if all(got.get(h) == s for h, s in hosts.items()):
            return
        await asyncio.sleep(0.3)
    raise BenchmarkFailed(f"certificates not as expected {hosts}: {state}")


@register(NAME, "requests/s and TLS handshakes through the embedded ingress, HTTPS vs HTTP")
async def ingress_tls(opts: Options) -> list[Row]:
    from bench.deploy_latency import Session
    from tests.support.dns import dns_server
    from tests.support.pebble import pebble
    from tests.support.platform import fixture, platform, push, tar_dir
    from tests.support.servers import free_port

    load = {"concurrency": opts.concurrency, "duration": opts.duration, "warmup": opts.warmup}
    http_port, https_port = free_port(), free_port()
    with (
        tempfile.TemporaryDirectory(prefix="paastech-bench-tls-") as tmp,
        dns_server(ZONE, **{PLAIN_HOST: "203.0.113.7"}) as dns,
        pebble(Path(tmp) / "pebble", dns, http_port=http_port) as acme,
    ):
        data_dir = Path(tmp) / "platform"
        data_dir.mkdir()
        with platform(
            data_dir,
            health_check_timeout_seconds=60,
            base_domain=ZONE,
            tls=True,
            ingress_port=http_port,
            ingress_https_port=https_port,
            public_port=https_port,
            acme_directory_url=acme.directory_url,
            acme_ca_bundle=acme.ca_bundle,
            acme_resolver=dns.address,
            dns_resolver=dns.address,  # domain verification (issue 12) asks the same server
            acme_public_addresses="127.0.0.1",
            acme_check_interval_seconds=0.5,
        ) as plat:
            async with httpx.AsyncClient(timeout=60) as http:
                session = Session(plat, http)
                try:
                    await session.signup()
                    project = await session.project()
                    await session.gql(RESOURCES, p=project, cpu=APP_CPUS)
                    outcome = await push(plat, session.client_id, project, tar_dir(fixture(APP)))
                    if not outcome.ok:
                        raise BenchmarkFailed(f"push failed: {outcome.reason}")
                    added = await session.gql(ADD_DOMAIN, p=project, h=PLAIN_HOST)
                    # Only verified custom domains are routed (issue 12): publish the TXT record.
                    proof = next(
                        d["verification"]
                        for d in added["addDomain"]["domains"]
                        if d["hostname"] == PLAIN_HOST
                    )
                    dns.set(proof["record"], proof["value"])
                    await session.gql(VERIFY_DOMAIN, p=project, h=PLAIN_HOST)
                    tls_host = f"{project}.{ZONE}"
                    await _until_certificates(
                        session, project, {tls_host: "VALID", PLAIN_HOST: "DNS_MISMATCH"}
                    )
                    trust = acme.client_context()
                    http_url = f"http://127.0.0.1:{http_port}/"
                    https_url = f"https://127.0.0.1:{https_port}/"
                    plain = {"Host": PLAIN_HOST}
                    secure = {"Host": tls_host}
                    sni = {"sni_hostname": tls_host}
                    # The custom domain's release must be live before measuring it.
                    deadline = time.monotonic() + 60
                    while True:
                        async with httpx.AsyncClient(timeout=5, headers=plain) as c:
                            with_domain = await c.get(http_url)
                        if with_domain.status_code == 200 and _check(with_domain) is None:
                            break
                        if time.monotonic() > deadline:
                            raise BenchmarkFailed(f"{PLAIN_HOST}: HTTP {with_domain.status_code}")
                        await asyncio.sleep(0.2)

                    print("  HTTP keep-alive", file=sys.stderr, flush=True)
                    http_ka = await run_load(http_url, headers=plain, check=_check, **load)
                    print("  HTTPS keep-alive", file=sys.stderr, flush=True)
                    https_ka = await run_load(
                        https_url,
                        headers=secure,
                        check=_check,
                        verify=trust,
                        extensions=sni,
                        **load,
                    )
                    print("  HTTP, new connection per request", file=sys.stderr, flush=True)
                    http_new = await connection_load(http_port, PLAIN_HOST, None, opts)
                    print("  HTTPS, new connection per request", file=sys.stderr, flush=True)
                    https_new = await connection_load(https_port, tls_host, trust, opts)
                finally:
                    await session.cleanup()
    note = f"{APP} fixture, {APP_CPUS:g} CPUs, embedded ingress (one process)"
    rows = [
        _row("HTTP keep-alive", http_ka, baseline=True, notes=[note]),
        _row("HTTPS keep-alive", https_ka, notes=["Pebble certificate, SNI"]),
        _row("HTTP, new connection per request", http_new),
        _row(
            "HTTPS, new connection per request",
            https_new,
            notes=["a full TLS handshake per request: requests/s = handshakes/s"],
        ),
    ]
    for row in rows:
        row.benchmark = NAME  # _row() is ingress_throughput's; same columns, this benchmark
    for row in rows:
        if row.requests and row.errors == row.requests:
            raise BenchmarkFailed(f"{row.subject}: every request failed ({row.notes[-1]})")
    return rows
