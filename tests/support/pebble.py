"""Let's Encrypt's ACME test server (Debian's `pebble`, installed by scripts/bootstrap.sh test)
and a test DNS server (dnslib) that Pebble's validation authority asks (issue 21).

The DNS server answers the names it was told about (``records``) and, for any other name in
``zone``, ``default`` (127.0.0.1: the box under test). Pebble validates HTTP-01 challenges by
connecting to the address it resolved on ``http_port``: the ingress's plain HTTP port.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.dns import DnsZone
from tests.support.servers import free_port, stop_process


def self_signed_localhost(directory: Path) -> tuple[Path, Path]:
    """Pebble's own HTTPS certificate (Debian ships none): for localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "pebble-cert.pem", directory / "pebble-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Pebble:
    directory_url: str
    management_url: str
    ca_bundle: Path  # verifies Pebble's own HTTPS (the ACME API)
    http_port: int
    log_path: Path
    proc: subprocess.Popen

    def roots(self) -> str:
        """The PEM of the CA that signs issued certificates (new on every Pebble start)."""
        return httpx.get(
            f"{self.management_url}/roots/0",
            verify=ssl.create_default_context(cafile=self.ca_bundle),
        ).text

    def client_context(self) -> ssl.SSLContext:
        """A TLS client trusting only what this Pebble issues."""
        return ssl.create_default_context(cadata=self.roots())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def pebble(
    directory: Path, dns: DnsZone, http_port: int, validity_seconds: int | None = None
) -> Iterator[Pebble]:
    binary = shutil.which("pebble")
    assert binary, "pebble is missing: run scripts/bootstrap.sh test"
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_localhost(directory)
    listen, management = free_port(), free_port()
    config: dict[str, object] = {
        "listenAddress": f"127.0.0.1:{listen}",
        "managementListenAddress": f"127.0.0.1:{management}",
        "certificate": str(cert),
        "privateKey": str(key),
        "httpPort": http_port,
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }
    if validity_seconds is not None:
        config["certificateValidityPeriod"] = validity_seconds
    config_path = directory / "pebble-config.json"
    config_path.write_text(json.dumps({"pebble": config}))
    env = {
        **os.environ,
        "PEBBLE_VA_NOSLEEP": "1",  # no random sleep before validating
        "PEBBLE_AUTHZREUSE": "0",  # every order validates its challenge for real
        "PEBBLE_WFE_NONCEREJECT": "0",
    }
    log_path = directory / "pebble.log"
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [binary, "-config", str(config_path), "-dnsserver", dns.address, "-strict=false"],
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"https://127.0.0.1:{listen}/dir"
    trust = ssl.create_default_context(cafile=cert)
    try:
        for _ in range(300):  # polls, each at least 0.1 s apart
            assert proc.poll() is None, f"pebble exited: {log_path.read_text()}"
            try:
                if httpx.get(url, verify=trust, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"pebble did not start: {log_path.read_text()}")
        yield Pebble(url, f"https://127.0.0.1:{management}", cert, http_port, log_path, proc)
    finally:
        stop_process(proc)
        log.close()
