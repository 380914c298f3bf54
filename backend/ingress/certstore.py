"""Where the embedded ingress keeps its ACME state, in the data dir (issue 21).

``<data_dir>/certs/``:

* ``account.json``: the ACME account (its key and URL), encrypted with the platform's secret key.
* ``<hostname>.cert``: a certificate's private key and chain, encrypted. Read back on start, so a
  restarted ingress serves the certificates it already has without asking the CA again.
* ``<hostname>.status.json``: the certificate's state as the API shows it (``domains {
  certificate }``): the ingress writes it, the API only reads it, so the API learns the status
  without a channel between the two processes and the ingress never touches the database.
* ``orders.json``: when the last orders were placed, for the global cap per hour (survives a
  restart, so restarting cannot reset the cap).

Every write goes to a temporary file renamed over the old one: a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from backend.security import decrypt, encrypt

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)

# Status values (the API's CertificateStatus enum, lowercased).
PENDING = "pending"  # no certificate yet; an order will be placed
VALID = "valid"  # a certificate is served (a renewal may be failing: see last_error)
FAILED = "failed"  # the last order failed; retried after the backoff
DNS_MISMATCH = "dns_mismatch"  # the hostname does not resolve to this box: nothing is ordered
RATE_LIMITED = "rate_limited"  # waiting for the global cap on orders per hour
EXPIRED = "expired"  # the certificate ran out and no renewal succeeded yet
STATUSES = (PENDING, VALID, FAILED, DNS_MISMATCH, RATE_LIMITED, EXPIRED)


def is_certifiable(hostname: str) -> bool:
    """A name a public CA can issue for: a multi-label DNS name, not localhost, not an IP."""
    if not _HOSTNAME.match(hostname):
        return False
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return False
    return not hostname.replace(".", "").isdigit()


@dataclass
class CertStatus:
    hostname: str
    status: str
    issuer: str | None = None
    not_before: float | None = None  # epoch seconds
    not_after: float | None = None
    last_error: str | None = None
    failures: int = 0  # consecutive failed attempts (the backoff's exponent)
    next_attempt: float = 0.0  # epoch seconds; no order before it
    updated: float = 0.0


@dataclass(frozen=True)
class StoredCertificate:
    key_pem: bytes
    chain_pem: bytes


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


class CertStore:
    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "certs"

    def _path(self, hostname: str, suffix: str) -> Path:
        if not _HOSTNAME.match(hostname):  # never let a name pick a path
            raise ValueError(f"invalid hostname: {hostname!r}")
        return self.dir / f"{hostname}{suffix}"

    def _ensure(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)

    # ----------------------------------------------------------------------------- certificates

    def save_certificate(self, hostname: str, cert: StoredCertificate) -> None:
        self._ensure()
        payload = json.dumps({"key": cert.key_pem.decode(), "chain": cert.chain_pem.decode()})
        _write_atomic(self._path(hostname, ".cert"), encrypt(payload))

    def load_certificate(self, hostname: str) -> StoredCertificate | None:
        path = self._path(hostname, ".cert")
        if not path.exists():
            return None
        data = json.loads(decrypt(path.read_text()))
        return StoredCertificate(data["key"].encode(), data["chain"].encode())

    def stored_hostnames(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(
            p.name.removesuffix(".cert")
            for p in self.dir.glob("*.cert")
            if _HOSTNAME.match(p.name.removesuffix(".cert"))
        )

    # ----------------------------------------------------------------------------- status

    def write_status(self, status: CertStatus) -> None:
        self._ensure()
        status.updated = time.time()
        _write_atomic(self._path(status.hostname, ".status.json"), json.dumps(asdict(status)))

    def read_status(self, hostname: str) -> CertStatus | None:
        try:
            path = self._path(hostname, ".status.json")
            data = json.loads(path.read_text())
            return CertStatus(**data)
        except (ValueError, TypeError, OSError):
            return None

    # ----------------------------------------------------------------------------- account

    def save_account(self, data: dict[str, str]) -> None:
        self._ensure()
        _write_atomic(self.dir / "account.json", encrypt(json.dumps(data)))

    def load_account(self) -> dict[str, str] | None:
        path = self.dir / "account.json"
        if not path.exists():
            return None
        account: dict[str, str] = json.loads(decrypt(path.read_text()))
        return account

    # ----------------------------------------------------------------------------- order cap

    def recent_orders(self, now: float, window: float = 3600.0) -> list[float]:
        try:
            times = json.loads((self.dir / "orders.json").read_text())
        except (OSError, ValueError):
            return []
        return [t for t in times if isinstance(t, int | float) and now - t < window]

    def record_order(self, now: float) -> None:
        self._ensure()
        times = [*self.recent_orders(now), now]
        _write_atomic(self.dir / "orders.json", json.dumps(times))
