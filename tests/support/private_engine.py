"""A private Docker engine for tests that restart one (the shared dockerd is never touched).

Its own data root, exec root (so its own managed containerd), pid file, unix socket and
containerd namespace; no iptables rules, and a default bridge of its own that the test creates
and deletes. Never ``--bridge=none`` nor ``--default-address-pool``: a dockerd started with the first, or
restarted with the second (without live-restore), deletes the host's ``docker0`` (moby's
configureNetworking, removeDefaultBridgeInterface): the shared engine's default bridge, and
every build on the shared engine fails after it. The networks the platform creates on it get
subnets from Docker's default pools that no host route uses yet. Published 127.0.0.1 ports work
through its userland proxy. Everything is removed afterwards.
"""

from __future__ import annotations

import json
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

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"


@dataclass
class PrivateEngine:
    root: Path
    args: list[str]
    proc: subprocess.Popen | None = None

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
def private_engine(*, live_restore: bool = False) -> Iterator[PrivateEngine]:
    # Short path: unix socket paths (containerd's, under the exec root) have a 108-byte limit.
    root = Path(tempfile.mkdtemp(prefix="pt-engine-", dir="/tmp"))
    tag = secrets.token_hex(3)
    bridge = f"ptb{tag}"  # its default bridge
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}.1/24"
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
    engine = PrivateEngine(root, args)
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
