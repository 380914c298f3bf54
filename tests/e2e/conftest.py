"""The browser tests' world: one platform (API + Pomegranate + ingress), one web app built and
started once per session as a subprocess on a free port, one headless Chromium."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.platform import Platform, cleanup_project, platform
from tests.support.servers import ROOT, free_port, wait_http

selenium = pytest.importorskip("selenium", reason="scripts/web.sh test installs selenium")

from tests.e2e.browser import CHROMEDRIVER, Browser, new_driver  # noqa: E402
from tests.e2e.netns import CHROMIUM, browser_namespace, forward  # noqa: E402


@dataclass
class Web:
    url: str
    port: int
    platform: Platform
    log: Path


@pytest.fixture(scope="session")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("web-platform"), health_check_timeout_seconds=20) as p:
        yield p
        for project in p.projects:
            cleanup_project(project)


FRONTEND = ROOT / "frontend"


def private_web_dir(into: Path) -> Path:
    """A copy of frontend/.web for one xdist worker's web app (REFLEX_WEB_WORKDIR).

    The production build bakes the app's port into the bundle (the websocket URL). Workers that
    built into the shared frontend/.web rewrote each other's bundle while it was being served: a
    page then talked to another worker's web app and API (a login there fails: "at /login").
    Each worker now compiles and builds in its own copy; node_modules, read-only during a build,
    is shared through a symlink. The first worker initialises frontend/.web (Reflex's init and
    the packages' install, by one build) under a lock the others wait on."""
    shared = FRONTEND / ".web"
    with (FRONTEND / ".web-init.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "node_modules").is_dir() or not (shared / "reflex.json").is_file():
            subprocess.run([str(ROOT / "scripts" / "web.sh"), "build"], cwd=ROOT, check=True)
    private = into / ".web"
    shutil.copytree(
        shared, private, symlinks=True, ignore=shutil.ignore_patterns("node_modules", "build")
    )
    (private / "node_modules").symlink_to(shared / "node_modules")
    return private


@pytest.fixture(scope="session")
def web(plat: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """`scripts/web.sh run` (Reflex prod build + backend on one port) against the test API."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: scripts/bootstrap.sh test installs chromium")
    port = free_port()
    workdir = tmp_path_factory.mktemp("web")
    log = workdir / "web.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAASTECH_", "REFLEX_"))}
    env.update(
        PAASTECH_API_URL=plat.api_url,
        PAASTECH_WEB_PORT=str(port),
        PAASTECH_HOST="127.0.0.1",
        REFLEX_LOGLEVEL="info",
        REFLEX_WEB_WORKDIR=str(private_web_dir(workdir)),
        # Reflex empties its states directory (frontend/.states by default) at each start: two
        # workers starting together unlinked the same files.
        REFLEX_STATES_WORKDIR=str(workdir / ".states"),
    )
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / "scripts" / "web.sh"), "run"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # reflex starts workers: stop the whole group
        )
    try:
        try:
            wait_http(f"http://127.0.0.1:{port}/ping", proc, timeout=240)
            wait_http(f"http://127.0.0.1:{port}/login", proc, timeout=60)
        except (RuntimeError, TimeoutError):
            print(log.read_text()[-4000:])
            raise
        print(f"web app built and started in {time.monotonic() - started:.1f} s")
        yield Web(f"http://127.0.0.1:{port}", port, plat, log)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def chromium() -> Iterator:
    driver, profile = new_driver()
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def web_in_browser(chromium, web: Web) -> Iterator[None]:
    """The web app's port, opened inside Chromium's network namespace."""
    listener = forward(browser_namespace(chromium.service.process.pid), web.port)
    try:
        yield
    finally:
        listener.close()


@pytest.fixture
def browser(chromium, web: Web, web_in_browser: None) -> Iterator[Browser]:
    """A fresh tab for each test, with the web app's cookies and storage cleared: a new Reflex
    session, signed out. The previous tabs are closed first and the clearing runs on a blank
    page, so no page of the app can write its cookie or token back meanwhile."""
    b = Browser(chromium, web.url)
    chromium.switch_to.new_window("tab")
    fresh = chromium.current_window_handle
    for handle in chromium.window_handles:
        if handle != fresh:
            chromium.switch_to.window(handle)
            chromium.close()
    chromium.switch_to.window(fresh)
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chromium.execute_cdp_cmd(
        "Storage.clearDataForOrigin", {"origin": web.url, "storageTypes": "all"}
    )
    chromium.set_window_size(1280, 900)
    yield b
