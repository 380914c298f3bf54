"""The 3-node Swarm of scripts/cluster.sh for the Swarm runtime's tests (issue 16).

One cluster per test session (per pytest worker that runs a Swarm module): brought up once by a
module- or session-scoped fixture, torn down at the end even when a test fails (`down` removes
exactly what its state file names). The platform registry of this pytest process (a 127.0.0.1 port)
is made reachable from the nodes at BRIDGE_IP:port by the script.

The cluster is one per machine (fixed bridge, namespace names, subnet and state directory): only
one pytest process may run a Swarm module at a time. `make test` runs each module in one worker,
and a second `make test` on the same machine waits for the first one's cluster to be torn down
(LOCK, held from `up` to `down`).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.locks import try_lock
from tests.support.registry import ensure_registry
from tests.support.servers import ROOT

SCRIPT = ROOT / "scripts" / "cluster.sh"
LOCK = Path("/run/lock/paastech-test-cluster.lock")
LOCK_WAIT_SECONDS = 2400  # another suite's whole Swarm module, with room to spare


@dataclass(frozen=True)
class Cluster:
    env: dict[str, str]  # the PAASTECH_* settings `cluster.sh env` prints

    @property
    def manager_url(self) -> str:
        return self.env["PAASTECH_SWARM_DOCKER_URL"]

    @property
    def node_addresses(self) -> list[str]:
        return self.env["PAASTECH_CLUSTER_NODE_ADDRESSES"].split(",")

    def node_url(self, node: int) -> str:
        """The engine API of node ``node`` (1 is the manager), as an operator lists it in
        swarm_node_docker_urls."""
        return self.manager_url.replace("/n1/", f"/n{node}/")

    @property
    def worker_urls(self) -> list[str]:
        return [self.node_url(n) for n in range(2, len(self.node_addresses) + 1)]

    def node_pidfile(self, node: int) -> str:
        """The pid file of node ``node``'s dockerd (1 is the manager)."""
        sock = self.manager_url.removeprefix("unix://")
        return sock.replace("/n1/", f"/n{node}/").replace("docker.sock", "docker.pid")

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The docker CLI on the manager."""
        return subprocess.run(
            ["docker", "-H", self.manager_url, *args], capture_output=True, text=True, check=False
        )


def _run(*args: str) -> str:
    result = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=180, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"cluster.sh {' '.join(args)} failed: {result.stderr or result.stdout}")
    return result.stdout


def bring_back() -> None:
    """`cluster.sh up` again after a test killed a node: the node restarts and rejoins, for the
    tests that run after it (the running cluster and its registry port are kept)."""
    _run("up", "--registry-port", os.environ["PAASTECH_REGISTRY_PORT"])


@contextmanager
def machine_lock(path: Path = LOCK, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (the kernel drops it if this process dies), waiting
    up to ``wait`` s for another holder to let go."""
    deadline = time.monotonic() + wait
    while (handle := try_lock(path)) is None:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{path} still held by another test run after {wait:g} s")
        time.sleep(1)  # polling the lock, not waiting for an event
    with handle:  # closing it releases the lock
        yield


@contextmanager
def swarm_cluster() -> Iterator[Cluster]:
    """Bring the cluster up (with this process's registry reachable), yield it, tear it down;
    another test run's cluster first goes away (machine_lock)."""
    with machine_lock():
        ensure_registry()
        port = os.environ["PAASTECH_REGISTRY_PORT"]
        try:
            out = _run("up", "--registry-port", port)
            env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
            yield Cluster(env)
        finally:
            _run("down")
