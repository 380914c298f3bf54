"""What the web app tells the API about itself (issue 18): every request says it comes from the
web app and names the browser, whose user agent is the visitor's own text (cleaned, bounded)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "frontend"))
from paastech_web import api  # noqa: E402  (the web app is not installed here)

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def test_every_request_says_web_and_names_the_browser() -> None:
    assert api.client_headers(CHROME) == {
        "X-PaaSTech-Source": "web",
        "X-PaaSTech-Device": CHROME,
    }


def test_without_a_browser_only_the_source() -> None:
    assert api.client_headers() == {"X-PaaSTech-Source": "web"}
    assert api.client_headers("  \r\n ") == {"X-PaaSTech-Source": "web"}


def test_a_hostile_user_agent_cannot_inject_headers_or_grow() -> None:
    device = api.client_headers("Evil\r\nX-PaaSTech-Source: cli\r\n" + "A" * 5000)[
        "X-PaaSTech-Device"
    ]
    assert "\r" not in device and "\n" not in device
    assert len(device) == 300
    assert api.client_headers("Evil\r\nX-Other: 1")["X-PaaSTech-Source"] == "web"


def test_the_api_reads_the_same_header_names() -> None:
    from backend.services import activity

    assert api.SOURCE_HEADER.lower() == activity.SOURCE_HEADER
    assert api.DEVICE_HEADER.lower() == activity.DEVICE_HEADER
    assert activity.source_of(api.client_headers()[api.SOURCE_HEADER]) == "web"
    assert activity.device_of(CHROME) == "Chrome on Linux"
