"""tests/support/servers.py's reserved_port(): a module's gitd port, chosen at collection time,
stays this process's until the gitd listens on it (a Docker-published port once took one)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tests.support.servers import reserved_port


def test_a_reserved_port_is_below_the_ephemeral_range_and_held() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    port = reserved_port()
    assert port < low  # neither the kernel's bind(0) nor Docker's published ports pick it
    assert reserved_port() != port
    with socket.socket() as other, pytest.raises(OSError):
        other.bind(("127.0.0.1", port))


async def test_the_server_it_was_reserved_for_listens_and_answers() -> None:
    port = reserved_port()

    async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-test\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(hello, "127.0.0.1", port)  # SO_REUSEADDR, as asyncssh
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await reader.readline() == b"SSH-2.0-test\r\n"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
