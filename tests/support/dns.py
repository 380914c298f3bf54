"""The tests' own DNS server (dnslib) on 127.0.0.1; nothing reaches the internet.

It answers A records (names under ``zone`` answer ``default``; ``records`` pins others) and the
TXT records a test sets. Point the platform at it with ``dns_resolver`` (domain verification) and
``acme_resolver``/Pebble's ``-dnsserver`` (certificates) set to ``address``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from dnslib import QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer


@dataclass
class DnsZone(BaseResolver):
    zone: str = ""  # names under it answer `default`; empty: none
    default: str = "127.0.0.1"
    records: dict[str, str] = field(default_factory=dict)  # hostname -> IPv4
    txt: dict[str, list[str]] = field(default_factory=dict)
    port: int = 0

    def set(self, name: str, *values: str) -> None:
        """Publish TXT record(s) for ``name``."""
        self.txt[name.rstrip(".").lower()] = list(values)

    def _address_of(self, name: str) -> str | None:
        if name in self.records:
            return self.records[name]
        if self.zone and (name == self.zone or name.endswith("." + self.zone)):
            return self.default
        return None

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        address, values = self._address_of(name), self.txt.get(name)
        if address is None and values is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for value in values or []:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=1))
        elif address is not None and request.q.qtype in (QTYPE.A, QTYPE.ANY):
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=1))
        return reply  # IPv4 only: no AAAA record for any name

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dns_server(zone: str = "", **records: str) -> Iterator[DnsZone]:
    dns = DnsZone(zone, records=dict(records))
    dns.port = free_udp_port()
    quiet = DNSLogger(log="-request,-reply,-truncated")  # a line per query otherwise
    server = DNSServer(dns, port=dns.port, address="127.0.0.1", logger=quiet)
    server.start_thread()
    try:
        yield dns
    finally:
        server.stop()
