"""Certificates for every hostname the embedded ingress routes, by ACME (RFC 8555, HTTP-01).

The lifecycle of one hostname (docs/architecture.md, "Certificate lifecycle"), checked every
``acme_check_interval_seconds``:

1. The hostname appears in the routing table (a deployed project's default hostname or a custom
   domain: only verified ones ever reach the routing labels).
2. A stored certificate that is still fresh is served; nothing is ordered.
3. Otherwise, unless its backoff has not run out: its DNS must resolve to this box (checked
   first, through ``acme_resolver``), else no order is placed (``dns_mismatch``); then the
   global cap on orders per hour must allow one (``rate_limited``); then one order: the CA
   fetches ``http://<hostname>/.well-known/acme-challenge/<token>`` from our HTTP listener, the
   certificate is stored encrypted and swapped in for SNI.
4. A failure (DNS, CA, challenge) records its reason and doubles the hostname's backoff; an
   existing certificate keeps being served until it expires.
5. Renewal starts when less than ``acme_renew_fraction`` of the certificate's lifetime is left.

The ``acme`` client is synchronous (requests): each order runs in a worker thread while the event
loop keeps proxying and answering challenges. Orders run one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterable

import dns.asyncresolver
import dns.exception
import dns.resolver
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives.asymmetric import rsa
from josepy.jwk import JWKRSA

from backend.ingress import certstore as cs
from backend.ingress.tls import SniContexts, cert_info, new_key_pem
from backend.settings import Settings

log = logging.getLogger(__name__)

USER_AGENT = "paastech-ingress"
# A DNS check costs the CA nothing: a hostname whose DNS was just fixed is looked at again
# within this, whatever its backoff has grown to.
DNS_RECHECK_MAX_SECONDS = 900.0
ERROR_MAX_CHARS = 500


def backoff_seconds(failures: int, base: float, maximum: float) -> float:
    """Delay before the next attempt after ``failures`` consecutive failures (1, 2, 4... x base)."""
    if failures <= 0:
        return 0.0
    return min(maximum, base * 2.0 ** min(failures - 1, 30))


def renewal_due(not_before: float, not_after: float, now: float, fraction: float) -> bool:
    return now >= not_after - (not_after - not_before) * fraction


def local_addresses() -> set[str]:
    """This box's own addresses, when ``acme_public_addresses`` is not set: those of its host
    name and the source address of its default route."""
    found: set[str] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(info[4][0]))
    except OSError:
        pass
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))  # UDP connect sends nothing: it only picks a route
                found.add(s.getsockname()[0])
        except OSError:
            continue
    return found


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())[:ERROR_MAX_CHARS]


class DnsCheck:
    """Does a hostname resolve (A/AAAA) to one of this box's addresses?"""

    def __init__(self, resolver: str, addresses: Iterable[str]) -> None:
        self.resolver = dns.asyncresolver.Resolver(configure=not resolver)
        if resolver:
            host, _, port = resolver.rpartition(":")
            self.resolver.nameservers = [host.strip("[]")]
            self.resolver.port = int(port)
        self.resolver.lifetime = 5.0
        self.addresses = {str(ipaddress.ip_address(a.strip())) for a in addresses if a.strip()}

    async def problem(self, hostname: str) -> str | None:
        """None when the hostname points here, else why not (the status's reason)."""
        found: set[str] = set()
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self.resolver.resolve(hostname, rdtype)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
                continue
            except dns.exception.DNSException as exc:
                return f"DNS lookup of {hostname} failed: {_short(exc)}"
            found.update(str(ipaddress.ip_address(r.to_text())) for r in answer)
        if not found:
            return f"{hostname} has no A/AAAA record; point it at this server"
        if found & self.addresses:
            return None
        return (
            f"{hostname} resolves to {', '.join(sorted(found))}, not to this server "
            f"({', '.join(sorted(self.addresses)) or 'no public address known'})"
        )


class AcmeAccount:
    """The ACME account and client, used from worker threads only (the client is blocking)."""

    def __init__(self, settings: Settings, store: cs.CertStore) -> None:
        self.settings = settings
        self.store = store
        self._client: client.ClientV2 | None = None

    def _connect(self) -> client.ClientV2:
        if self._client is not None:
            return self._client
        saved = self.store.load_account()
        if saved is None:
            key = JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
            saved = {"key": key.json_dumps(), "url": ""}
            self.store.save_account(saved)
        key = JWKRSA.json_loads(saved["key"])
        net = client.ClientNetwork(key, user_agent=USER_AGENT)
        if self.settings.acme_ca_bundle:
            # requests takes a CA bundle path where acme's flag is typed bool.
            net.verify_ssl = self.settings.acme_ca_bundle  # type: ignore[assignment]  # see above
        directory = client.ClientV2.get_directory(self.settings.acme_directory_url, net)
        acme = client.ClientV2(directory, net=net)
        registration = messages.NewRegistration.from_data(
            email=self.settings.acme_email or None, terms_of_service_agreed=True
        )
        try:
            regr = acme.new_account(registration)
        except errors.ConflictError as exc:  # this key already has an account: use it
            regr = acme.query_registration(
                messages.RegistrationResource(uri=exc.location, body=messages.Registration())
            )
        if regr.uri != saved.get("url"):
            self.store.save_account({**saved, "url": regr.uri or ""})
        net.account = regr
        self._client = acme
        return acme

    def order(
        self,
        hostname: str,
        key_pem: bytes,
        publish: Callable[[str, str], None],
        withdraw: Callable[[str], None],
    ) -> bytes:
        """One order for ``hostname`` with an HTTP-01 challenge; the PEM chain. Blocking."""
        try:
            acme = self._connect()
        except Exception:
            self._client = None  # a CA that was down is asked again next time
            raise
        csr = crypto_util.make_csr(key_pem, [hostname])
        order = acme.new_order(csr)
        tokens: list[str] = []
        try:
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # reused authorization (RFC 8555 7.1.3)
                challb = next(
                    (c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)),
                    None,
                )
                if challb is None:
                    raise RuntimeError(f"the CA offered no HTTP-01 challenge for {hostname}")
                response, validation = challb.response_and_validation(acme.net.key)
                token = challb.chall.encode("token")
                publish(token, validation)
                tokens.append(token)
                acme.answer_challenge(challb, response)
            deadline = dt.datetime.now() + dt.timedelta(
                seconds=self.settings.acme_order_timeout_seconds
            )
            order = acme.poll_and_finalize(order, deadline)
        finally:
            for token in tokens:
                withdraw(token)
        if not order.fullchain_pem:
            raise RuntimeError("the CA returned no certificate")
        return order.fullchain_pem.encode()


def describe_failure(exc: BaseException) -> str:
    """The reason a user reads in `domains`: the CA's own words where it gave some."""
    if isinstance(exc, errors.ValidationError):
        reasons = [
            f"{c.chall.typ}: {c.error.detail or c.error.typ}"
            for authzr in exc.failed_authzrs
            for c in authzr.body.challenges
            if c.error is not None
        ]
        return _short(RuntimeError("challenge failed: " + "; ".join(reasons or ["no detail"])))
    if isinstance(exc, messages.Error):
        return _short(RuntimeError(f"CA refused: {exc.detail or exc.typ}"))
    if isinstance(exc, errors.TimeoutError | TimeoutError):
        return "the CA did not finish the order in time"
    return _short(exc)


class CertificateManager:
    def __init__(
        self,
        settings: Settings,
        hostnames: Callable[[], Iterable[str]],
        contexts: SniContexts,
        store: cs.CertStore | None = None,
    ) -> None:
        self.settings = settings
        self.hostnames = hostnames
        self.contexts = contexts
        self.store = store or cs.CertStore(settings.data_dir)
        self.account = AcmeAccount(settings, self.store)
        addresses = (
            settings.acme_public_addresses.split(",")
            if settings.acme_public_addresses
            else sorted(local_addresses())
        )
        self.dns = DnsCheck(settings.acme_resolver, addresses)
        self.challenges: dict[str, str] = {}  # HTTP-01 token -> key authorization
        self.statuses: dict[str, cs.CertStatus] = {}
        self.wake = asyncio.Event()

    # ----------------------------------------------------------------------- what the proxy asks

    def challenge(self, token: str) -> str | None:
        return self.challenges.get(token)

    def serves(self, hostname: str, now: float | None = None) -> bool:
        """A valid certificate is being served for the host: plain HTTP may redirect to it."""
        status = self.statuses.get(hostname)
        if status is None or status.not_after is None or not self.contexts.has(hostname):
            return False
        return (now or time.time()) < status.not_after

    # ----------------------------------------------------------------------- lifecycle

    def load(self) -> None:
        """The stored certificates, served again without asking the CA (before listening)."""
        for hostname in self.store.stored_hostnames():
            try:
                stored = self.store.load_certificate(hostname)
                if stored is None:
                    continue
                info = cert_info(stored.chain_pem)
                self.contexts.set(hostname, stored.chain_pem, stored.key_pem)
            except Exception as exc:  # one bad file must not take every certificate down
                log.warning("%s: stored certificate unusable: %s", hostname, _short(exc))
                continue
            status = self.store.read_status(hostname) or cs.CertStatus(hostname, cs.VALID)
            status.issuer, status.not_before, status.not_after = (
                info.issuer,
                info.not_before,
                info.not_after,
            )
            if status.status != cs.VALID and time.time() < info.not_after:
                status.status = cs.VALID
            self.statuses[hostname] = status
            log.info("%s: serving the stored certificate (until %s)", hostname, info.not_after)

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:  # keep managing certificates whatever one round hit
                log.exception("certificate round failed")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.settings.acme_check_interval_seconds)

    async def step(self) -> None:
        for hostname in sorted(set(self.hostnames())):
            if cs.is_certifiable(hostname):
                await self.maintain(hostname)

    def _status(self, hostname: str) -> cs.CertStatus:
        status = self.statuses.get(hostname)
        if status is None:
            status = self.store.read_status(hostname) or cs.CertStatus(hostname, cs.PENDING)
            self.statuses[hostname] = status
            self.store.write_status(status)
        return status

    def _save(self, status: cs.CertStatus) -> None:
        self.statuses[status.hostname] = status
        self.store.write_status(status)

    async def maintain(self, hostname: str) -> None:
        s = self.settings
        status = self._status(hostname)
        now = time.time()
        has_cert = status.not_after is not None and self.contexts.has(hostname)
        if has_cert and now >= (status.not_after or 0) and status.status == cs.VALID:
            status.status = cs.EXPIRED
            self._save(status)
        if (
            has_cert
            and status.not_before is not None
            and status.not_after is not None
            and not renewal_due(status.not_before, status.not_after, now, s.acme_renew_fraction)
        ):
            return
        if now < status.next_attempt:
            return

        problem = await self.dns.problem(hostname)
        if problem is not None:
            self._fail(status, problem, cs.DNS_MISMATCH, has_cert)
            return
        if len(self.store.recent_orders(now)) >= s.acme_orders_per_hour:
            # Not this hostname's fault: no backoff growth, retried on the next round.
            if not has_cert:
                status.status = cs.RATE_LIMITED
            status.last_error = (
                f"waiting: the cap of {s.acme_orders_per_hour} certificate orders per hour "
                "is reached"
            )
            self._save(status)
            return

        self.store.record_order(now)
        key_pem = new_key_pem()
        log.info("%s: ordering a certificate from %s", hostname, s.acme_directory_url)
        try:
            chain = await asyncio.to_thread(
                self.account.order, hostname, key_pem, self._publish, self._withdraw
            )
            info = cert_info(chain)
            self.contexts.set(hostname, chain, key_pem)
        except Exception as exc:
            reason = describe_failure(exc)
            log.warning("%s: certificate order failed: %s", hostname, reason)
            self._fail(status, reason, cs.FAILED, has_cert)
            return
        self.store.save_certificate(hostname, cs.StoredCertificate(key_pem, chain))
        self._save(
            cs.CertStatus(
                hostname,
                cs.VALID,
                issuer=info.issuer,
                not_before=info.not_before,
                not_after=info.not_after,
            )
        )
        log.info("%s: certificate issued by %s", hostname, info.issuer)

    def _fail(self, status: cs.CertStatus, reason: str, kind: str, has_cert: bool) -> None:
        s = self.settings
        status.failures += 1
        status.last_error = reason
        wait = backoff_seconds(status.failures, s.acme_backoff_seconds, s.acme_backoff_max_seconds)
        if kind == cs.DNS_MISMATCH:
            wait = min(wait, DNS_RECHECK_MAX_SECONDS)
        status.next_attempt = time.time() + wait
        # A certificate still being served stays "valid" (its renewal is what failed).
        if not (has_cert and status.not_after and time.time() < status.not_after):
            status.status = kind
        self._save(status)

    def _publish(self, token: str, validation: str) -> None:
        self.challenges[token] = validation

    def _withdraw(self, token: str) -> None:
        self.challenges.pop(token, None)
