"""gitd against idle and slow connections (issue 12): unauthenticated connections are capped per
address and in total apart from authenticated ones, so a flood of idle sockets never blocks a
real push; authenticated connections end when idle or open too long."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.integration.test_gitd import SSH_OPTS, Gitd, User, make_user
from tests.support.platform import Platform, cleanup_project, gitd_process, platform
from tests.support.servers import free_port, reserved_port

GITD_PORT = reserved_port()
PER_ADDRESS = 4
TOTAL = 8


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("gitd-limits")
    with platform(data_dir, gitd_port=GITD_PORT) as p:
        yield p


@pytest.fixture(scope="module")
def gitd(plat: Platform) -> Iterator[Gitd]:
    with gitd_process(
        plat,
        GITD_PORT,
        gitd_max_unauthenticated=TOTAL,
        gitd_max_unauthenticated_per_address=PER_ADDRESS,
        gitd_idle_timeout_seconds=2,
    ) as log_path:
        yield Gitd(GITD_PORT, plat.data_dir, log_path)


@pytest.fixture
async def alice(plat: Platform, gitd: Gitd, tmp_path: Path) -> AsyncIterator[User]:
    before = len(plat.projects)
    yield await make_user(plat, gitd, tmp_path)
    for project in plat.projects[before:]:
        cleanup_project(project)


def idle_connection(source: str, port: int) -> socket.socket:
    """A TCP connection from ``source`` (any 127/8 address is local) that never logs in."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s.recv(100)  # the server's version line: gitd has counted this connection
    s.setblocking(False)
    return s


def is_open(s: socket.socket) -> bool:
    try:
        return s.recv(4096) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def wait_open_count(held: list[socket.socket], at_most: int, within: float = 10) -> int:
    deadline = time.monotonic() + within
    while True:
        count = sum(is_open(s) for s in held)
        if count <= at_most or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


async def test_idle_connections_from_many_addresses_do_not_block_a_push(
    alice: User, gitd: Gitd
) -> None:
    held: list[socket.socket] = []
    try:
        # 80 idle connections from 20 addresses, 4 each (within the per-address cap).
        for i in range(20):
            held += [idle_connection(f"127.0.0.{i + 2}", gitd.port) for _ in range(PER_ADDRESS)]
        # The total cap keeps at most TOTAL of them, dropping the oldest.
        assert wait_open_count(held, TOTAL) <= TOTAL
        assert is_open(held[-1])
        # A real client still gets in and pushes.
        project = await alice.project()
        work = alice.workdir("static", project)
        alice.git("checkout", "-q", "-b", "feature", cwd=work)
        result = alice.push(work, "feature")
        assert result.returncode == 0, result.stderr
        assert alice.ls_remote(project) == {"refs/heads/feature": alice.head(work)}
    finally:
        for s in held:
            s.close()


async def test_unauthenticated_connections_capped_per_address(alice: User, gitd: Gitd) -> None:
    held = [idle_connection("127.0.1.1", gitd.port) for _ in range(PER_ADDRESS)]
    try:
        extra = socket.create_connection(
            ("127.0.0.1", gitd.port), timeout=10, source_address=("127.0.1.1", 0)
        )
        with extra:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if not extra.recv(4096):
                    break
            else:
                raise AssertionError("the connection over the per-address cap stayed open")
        assert all(is_open(s) for s in held)
        # Another address is not affected.
        assert alice.ssh().returncode == 0
    finally:
        for s in held:
            s.close()


async def test_idle_authenticated_connection_is_closed(alice: User, gitd: Gitd) -> None:
    """`ssh -N` logs in and then sends nothing: gitd closes it after the idle timeout (2 s)."""
    argv = ["ssh", "-N", "-i", str(alice.key), "-p", str(gitd.port), *SSH_OPTS, "git@127.0.0.1"]
    # Without the limit `ssh -N` runs forever and this times out.
    subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert "closing idle connection of client" in gitd.log.read_text()


async def test_connection_open_too_long_is_closed(plat: Platform, alice: User) -> None:
    """Even with traffic, a connection ends after gitd_connection_max_seconds."""
    port = free_port()
    with gitd_process(plat, port, gitd_connection_max_seconds=2, gitd_idle_timeout_seconds=600):
        argv = [
            "ssh",
            "-N",
            "-o",
            "ServerAliveInterval=1",
            "-i",
            str(alice.key),
            "-p",
            str(port),
            *SSH_OPTS,
            "git@127.0.0.1",
        ]
        # ssh's keepalives keep it busy; only the total-time limit ends it.
        subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert "open too long" in (plat.data_dir / "gitd.log").read_text()
