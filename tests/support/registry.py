"""The platform image registry for a test session (issue 10): one `scripts/registry.sh` per
pytest process, on a free port, with its storage in a temporary directory. Every platform process
the tests start (and every DockerRuntime they make) finds it through the environment."""

from __future__ import annotations

import atexit
import os
import subprocess
import tempfile
from pathlib import Path

from tests.support.servers import ROOT, free_port, stop_process, wait_http

PASSWORD = "test-registry-password"
# The base images' build store is shared by every test platform (read-only to builds): importing
# the base images from the engine once instead of once per test data dir.
BASE_STORE = "/var/tmp/paastech-test-build-base"
ENV_KEYS = ("PAASTECH_REGISTRY_PORT", "PAASTECH_REGISTRY_PASSWORD", "PAASTECH_BUILD_BASE_STORE")

_proc: subprocess.Popen | None = None


def ensure_registry() -> None:
    """Start the registry once for this process and export its settings to os.environ."""
    global _proc
    if _proc is not None and _proc.poll() is None:
        return
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="paastech-registry-"))
    env = {
        **os.environ,
        "PAASTECH_DATA_DIR": str(data_dir),
        "PAASTECH_REGISTRY_PORT": str(port),
        "PAASTECH_REGISTRY_PASSWORD": PASSWORD,
    }
    log = (data_dir / "registry.log").open("ab")
    _proc = subprocess.Popen(
        [str(ROOT / "scripts" / "registry.sh")], env=env, stdout=log, stderr=log, cwd=ROOT
    )
    wait_http(f"http://127.0.0.1:{port}/v2/", _proc)
    os.environ["PAASTECH_REGISTRY_PORT"] = str(port)
    os.environ["PAASTECH_REGISTRY_PASSWORD"] = PASSWORD
    os.environ.setdefault("PAASTECH_BUILD_BASE_STORE", BASE_STORE)
    atexit.register(_stop)


def _stop() -> None:
    """Stop the registry and remove the engine's copies of the images pulled from it (the
    port is this session's own, so no one else's images match)."""
    if _proc is None:
        return
    stop_process(_proc)
    port = os.environ.get("PAASTECH_REGISTRY_PORT")
    if port:
        remove_registry_images(int(port))


def remove_registry_images(port: int) -> None:
    """Remove the engine's copies of the images pulled from the registry on ``port``."""
    images = subprocess.run(
        ["docker", "images", "-q", "--filter", f"reference=127.0.0.1:{port}/*/*"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if images:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(images))], capture_output=True)
