"""Headless Debian Chromium through /usr/bin/chromedriver (selenium), nothing downloaded."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.e2e.netns import launcher

CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def new_driver(width: int = 1280, height: int = 900) -> tuple[webdriver.Chrome, str]:
    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must never download a browser/driver
    profile = tempfile.mkdtemp(prefix="paastech-chromium-")
    options = webdriver.ChromeOptions()
    # In a network namespace of its own (tests/e2e/netns.py), driven over a pipe.
    options.binary_location = str(launcher(Path(profile)))
    for arg in (
        "--headless=new",
        "--remote-debugging-pipe",
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-gpu",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--disable-default-apps",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    # The page's console, read back when a wait times out (Browser.diagnosis).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver, profile


class Browser:
    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base = base_url.rstrip("/")

    # -- navigation and waiting --------------------------------------------------------------

    def go(self, path: str) -> None:
        self.driver.get(self.base + path)

    def path(self) -> str:
        return self.driver.execute_script("return window.location.pathname").rstrip("/") or "/"

    def wait(self, what: Callable[[], Any], within: float = 20, message: str = "") -> Any:
        deadline = time.monotonic() + within
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = what()
                if value:
                    return value
            except (
                NoSuchElementException,
                StaleElementReferenceException,
                WebDriverException,
            ) as exc:
                last = exc
            time.sleep(0.1)
        raise AssertionError(
            f"timed out after {within} s: {message or what} ({last}) at {self.path()}\n"
            + self.diagnosis()
        )

    def diagnosis(self) -> str:
        """What the page showed and logged, for a timed-out wait: the visible text and the
        console's warnings and errors."""
        try:
            shown = self.driver.execute_script(
                "return document.body ? document.body.innerText : ''"
            )
            console = [
                f"{e.get('level')}: {e.get('message')}"
                for e in self.driver.get_log("browser")
                if e.get("level") in ("WARNING", "SEVERE")
            ]
        except WebDriverException as exc:
            return f"(no diagnosis: {exc.msg})"
        return f"page text: {str(shown)[:1500]!r}\nconsole: " + "\n".join(console[-20:])

    def wait_path(self, path: str, within: float = 20) -> None:
        self.wait(lambda: self.path() == path.rstrip("/"), within, f"path {path}")

    def el(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def els(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str = "body") -> str:
        return self.el(css).text

    def wait_text(self, needle: str, css: str = "body", within: float = 20) -> str:
        return self.wait(
            lambda: (t := self.text(css)) and needle in t and t, within, f"{needle!r} in {css}"
        )

    def wait_el(self, css: str, within: float = 20) -> WebElement:
        return self.wait(lambda: self.el(css), within, css)

    # -- forms -------------------------------------------------------------------------------

    def fill(self, name: str, value: str) -> None:
        self.fill_css(f"#field-{name}", value)

    def fill_css(self, css: str, value: str) -> None:
        """Type `value` into the field, again if the page re-rendered it meanwhile (a stale
        element, or a value the re-render dropped)."""

        def attempt() -> bool:
            field = self.el(css)
            field.clear()
            field.send_keys(value)
            return field.get_attribute("value") == value

        self.wait(attempt, message=f"{css} filled with {value!r}")

    def set_size(self, width: int, height: int = 900) -> None:
        self.driver.set_window_size(width, height)
        self.wait(
            lambda: self.driver.execute_script("return window.innerWidth") <= width,
            5,
            f"window {width} px",
        )

    def click(self, css: str) -> None:
        """Click the element once it is enabled; found again if the page re-rendered it."""

        def attempt() -> bool:
            element = self.el(css)
            if not element.is_enabled():
                return False
            element.click()
            return True

        self.wait(attempt, message=css)

    def click_text(self, text: str, tag: str = "button") -> None:
        xpath = f"//{tag}[normalize-space()='{text}']"
        self.wait(lambda: self.driver.find_element(By.XPATH, xpath), message=text).click()

    def field_error(self, name: str, within: float = 20) -> str:
        return self.wait(lambda: self.text(f"#error-{name}"), within, f"error next to {name}")

    # -- evidence ----------------------------------------------------------------------------

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def overflow(self) -> tuple[int, int]:
        return tuple(
            self.driver.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]"
            )
        )

    def check_widths(self, name: str, widths: tuple[int, ...] = (1280, 390)) -> None:
        """The page at each width: no horizontal overflow; a screenshot of each."""
        original = self.driver.get_window_size()
        try:
            for width in widths:
                self.driver.set_window_size(width, 900)
                self.wait(
                    lambda w=width: self.driver.execute_script("return window.innerWidth") <= w,
                    5,
                    f"window {width} px",
                )
                time.sleep(0.3)  # layout settles
                scroll, inner = self.overflow()
                self.screenshot(f"{name}-{width}")
                assert scroll <= inner, f"{name} overflows at {width} px: {scroll} > {inner}"
        finally:
            self.driver.set_window_size(original["width"], original["height"])
