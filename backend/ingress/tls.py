"""TLS termination for the embedded ingress: one SSLContext per hostname, chosen by SNI.

Private keys never touch the disk in clear: Python's ssl module loads certificates only from
files, so the PEM is written to an anonymous in-memory file (memfd) and loaded from
/proc/self/fd. A client without SNI, or asking for a name without a certificate, gets a
self-signed fallback certificate (as Traefik serves its default one), which it will not trust.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backend.ingress.routes import normalise_host

FALLBACK_NAME = "paastech-ingress-default"


@dataclass(frozen=True)
class CertInfo:
    issuer: str
    not_before: float
    not_after: float


def cert_info(chain_pem: bytes) -> CertInfo:
    """Issuer and validity of the leaf (first) certificate of a PEM chain."""
    leaf = x509.load_pem_x509_certificate(chain_pem)
    return CertInfo(
        issuer=leaf.issuer.rfc4514_string(),
        not_before=leaf.not_valid_before_utc.timestamp(),
        not_after=leaf.not_valid_after_utc.timestamp(),
    )


def server_context(chain_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])  # the proxy speaks HTTP/1.1 only
    fd = os.memfd_create("paastech-cert", os.MFD_CLOEXEC)
    try:
        os.write(fd, chain_pem + b"\n" + key_pem)
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    return ctx


def new_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def self_signed(name: str = FALLBACK_NAME) -> tuple[bytes, bytes]:
    """(chain PEM, key PEM) of a throwaway self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class SniContexts:
    """Hostname -> SSLContext, swapped in during the handshake. Replacing a host's context
    (a renewal) affects only new handshakes; open connections keep theirs."""

    def __init__(self) -> None:
        self._contexts: dict[str, ssl.SSLContext] = {}
        self.default = server_context(*self_signed())
        self.default.sni_callback = self._select

    def set(self, hostname: str, chain_pem: bytes, key_pem: bytes) -> None:
        self._contexts[hostname] = server_context(chain_pem, key_pem)

    def discard(self, hostname: str) -> None:
        self._contexts.pop(hostname, None)

    def has(self, hostname: str) -> bool:
        return hostname in self._contexts

    def _select(self, sslobj: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        ctx = self._contexts.get(normalise_host(server_name))
        if ctx is not None:
            sslobj.context = ctx
