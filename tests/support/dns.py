"""A DNS server for tests (dnslib) on 127.0.0.1: answers TXT records the test sets, nothing else.
Point the platform at it with dns_resolver="127.0.0.1:<port>"; nothing reaches the internet."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSServer


class TxtRecords(BaseResolver):
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}

    def set(self, name: str, *values: str) -> None:
        self.records[name.rstrip(".").lower()] = list(values)

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        values = self.records.get(name)
        if values is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for value in values:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=1))
        return reply


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dns_server() -> Iterator[tuple[str, TxtRecords]]:
    """Yields ("127.0.0.1:<port>", records)."""
    records = TxtRecords()
    port = _free_udp_port()
    server = DNSServer(records, port=port, address="127.0.0.1")
    server.start_thread()
    try:
        yield f"127.0.0.1:{port}", records
    finally:
        server.stop()
