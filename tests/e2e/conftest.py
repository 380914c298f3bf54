"""The browser tests' world: one platform (API + Pomegranate + ingress), one web app built and
started once per session as a subprocess on a free port, one headless Chromium."""

from __future__ import annotations

import contextlib
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

from tests.e2e.browser import CHROMEDRIVER, CHROMIUM, Browser, new_driver  # noqa: E402


@dataclass
class Web:
    url: str
    platform: Platform
    log: Path


@pytest.fixture(scope="session")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("web-platform"), health_check_timeout_seconds=20) as p:
        yield p
        for project in p.projects:
            cleanup_project(project)


@pytest.fixture(scope="session")
def web(plat: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """`scripts/web.sh run` (Reflex prod build + backend on one port) against the test API."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: scripts/bootstrap.sh test installs chromium")
    port = free_port()
    log = tmp_path_factory.mktemp("web") / "web.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAASTECH_", "REFLEX_"))}
    env.update(
        PAASTECH_API_URL=plat.api_url,
        PAASTECH_WEB_PORT=str(port),
        PAASTECH_HOST="127.0.0.1",
        REFLEX_LOGLEVEL="info",
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
        yield Web(f"http://127.0.0.1:{port}", plat, log)
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


@pytest.fixture
def browser(chromium, web: Web) -> Iterator[Browser]:
    """A fresh tab state for each test: cookies and storage cleared (a new Reflex session)."""
    b = Browser(chromium, web.url)
    b.go("/login")
    chromium.delete_all_cookies()
    chromium.execute_script("window.sessionStorage.clear(); window.localStorage.clear();")
    chromium.set_window_size(1280, 900)
    yield b
