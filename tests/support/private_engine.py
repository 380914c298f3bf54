"""A private Docker engine for tests that restart one (the shared dockerd is never touched).

Its own data root, exec root (so its own managed containerd), pid file, unix socket and
containerd namespace; no iptables rules, and a default bridge of its own that the test creates
and deletes. Never ``--bridge=none`` nor ``--default-address-pool``: a dockerd started with the first, or
restarted with the second (without live-restore), deletes the host's ``docker0`` (moby's
configureNetworking, removeDefaultBridgeInterface): the shared engine's default bridge, and
every build on the shared engine fails after it. Published 127.0.0.1 ports work through its
userland proxy. Everything is removed afterwards.

Addresses: engines on one host don't see each other's networks, so a project network the
platform carves on this engine from the shared default pool (10.210.0.0/16) could take a subnet
a platform on the shared engine also holds; the host then routes the userland proxy's connection
to the other bridge and the health check times out. Each private engine therefore holds a slot
(a flock, released even when the test process dies) that gives it a bridge and a project network
pool nothing else on the machine uses: pass ``engine.network_settings`` to its platform.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from backend.pomegranate.networks import FIREWALL_SCRIPT
from tests.support.locks import try_lock

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
SLOTS = 64  # private engines alive at once on this machine
LOCKS = Path("/run/lock")


@dataclass
class PrivateEngine:
    root: Path
    args: list[str]
    slot: int
    proc: subprocess.Popen | None = None

    @property
    def network_pool(self) -> str:
        """Project networks on this engine: 16 /26s that only this engine uses."""
        return f"10.221.{self.slot * 4}.0/22"

    @property
    def network_settings(self) -> dict[str, object]:
        return {"project_network_pool": self.network_pool, "project_network_prefix": 26}

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def docker(self, *args: str, **kw: object) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "-H", self.url, *args], **kw)  # type: ignore[call-overload]

    def start(self, timeout: float = 60) -> None:
        log = (self.root / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(
            [DOCKERD, *self.args], stdout=log, stderr=log, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.root / "dockerd.log").read_text()[-2000:]
                raise RuntimeError(f"private dockerd exited: {tail}")
            if self.docker("info", capture_output=True).returncode == 0:
                return
            time.sleep(0.2)
        raise TimeoutError("private dockerd did not answer")

    def stop(self, timeout: float = 60) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def load_images(self, *images: str) -> None:
        """Copy images from the shared engine (read only there) into this one."""
        save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        self.docker("load", stdin=save.stdout, capture_output=True, check=True)
        assert save.wait() == 0


@contextmanager
def _network_slot() -> Iterator[int]:
    """A slot number no other live private engine on this machine holds."""
    for slot in range(SLOTS):
        handle = try_lock(LOCKS / f"paastech-test-engine-{slot}.lock")
        if handle is None:
            continue
        with handle:  # closing it releases the lock
            yield slot
        return
    raise RuntimeError(f"all {SLOTS} private engine slots are taken")


@contextmanager
def private_engine(*, live_restore: bool = False) -> Iterator[PrivateEngine]:
    with _network_slot() as slot:
        yield from _private_engine(slot, live_restore)


def _private_engine(slot: int, live_restore: bool) -> Iterator[PrivateEngine]:
    # Short path: unix socket paths (containerd's, under the exec root) have a 108-byte limit.
    root = Path(tempfile.mkdtemp(prefix="pt-engine-", dir="/tmp"))
    tag = secrets.token_hex(3)
    bridge = f"ptb{tag}"  # its default bridge
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subnet = f"10.220.{slot}.1/24"
    subprocess.run(["ip", "addr", "add", subnet, "dev", bridge], check=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    args = [
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'docker.pid'}",
        f"--host=unix://{root / 'docker.sock'}",
        f"--containerd-namespace=pt-{tag}",
        f"--containerd-plugins-namespace=pt-{tag}-plugins",
        "--iptables=false",
        "--ip6tables=false",
        f"--bridge={bridge}",
        "--storage-driver=overlay2",
    ]
    if live_restore:
        args.append("--live-restore")
    engine = PrivateEngine(root, args, slot)
    try:
        engine.start()
        yield engine
    finally:
        try:
            if engine.proc is not None and engine.proc.poll() is None:
                # Its containers and networks go with it (nothing of it outlives the test).
                ids = engine.docker("ps", "-aq", capture_output=True, text=True).stdout.split()
                if ids:
                    engine.docker("rm", "-f", *ids, capture_output=True)
                nets = engine.docker(
                    "network", "ls", "-q", "--filter", "type=custom", capture_output=True, text=True
                ).stdout.split()
                if nets:
                    engine.docker("network", "rm", *nets, capture_output=True)
        finally:
            engine.stop()
            _umount_below(root)
            shutil.rmtree(root, ignore_errors=True)
            subprocess.run(["ip", "link", "del", bridge], capture_output=True)
            # The project networks' firewall its platform installed for the slot's pool.
            subprocess.run(
                [str(FIREWALL_SCRIPT), "remove"],
                env={**os.environ, "PAASTECH_PROJECT_NETWORK_POOL": engine.network_pool},
                capture_output=True,
            )


def _umount_below(root: Path) -> None:
    """Mounts a killed engine may leave under its roots (overlay, netns, shm)."""
    mounts = [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1].startswith(str(root))
    ]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)


def engine_info(engine: PrivateEngine) -> dict:
    out = engine.docker("info", "--format", "{{json .}}", capture_output=True, text=True)
    return json.loads(out.stdout)
