"""Proof that a Client controls a hostname: a TXT record it was asked to create.

Queried through the resolver of PAASTECH_DNS_RESOLVER ("host:port"), else the system's. Tests
point it at a DNS server they start on 127.0.0.1; nothing here reaches out by itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backend.errors import Unavailable
from backend.settings import get_settings

CHALLENGE_LABEL = "_paastech-challenge"
TIMEOUT_SECONDS = 5.0

if TYPE_CHECKING:
    import dns.asyncresolver


def challenge_name(hostname: str) -> str:
    return f"{CHALLENGE_LABEL}.{hostname}"


def _resolver() -> dns.asyncresolver.Resolver:
    # dnspython is imported on the first domain check, not by every process loading this module.
    import dns.asyncresolver

    configured = get_settings().dns_resolver.strip()
    if not configured:
        resolver = dns.asyncresolver.Resolver()
    else:
        host, _, port = configured.rpartition(":")
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [host or configured]
        resolver.port = int(port) if host and port.isdigit() else 53
    resolver.lifetime = TIMEOUT_SECONDS
    return resolver


async def txt_values(name: str) -> list[str]:
    """Every TXT string at ``name``; [] when there is none. Unavailable when DNS cannot say."""
    import dns.exception
    import dns.resolver

    try:
        answer = await _resolver().resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise Unavailable(f"could not look up {name} in DNS; try again later") from exc
    return [b"".join(record.strings).decode(errors="replace") for record in answer]
