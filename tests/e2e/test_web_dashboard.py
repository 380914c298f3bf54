"""Issue 18's fixes of the web app in a real browser against a real API and Pomegranate: the
project page's tabs (checked and photographed at 1280 and 390 px), confirmations that say what
will change (rollback, restart, scale to 0, revoking a token, removing a key) and change nothing
when cancelled, scale to 0 read as "idle" everywhere, forms pre-filled with the current values,
the server's memory minimum next to its field, old messages cleared at the next submit, copy
buttons, the runtime log's timestamps, filter, download and a box that follows new lines unless
scrolled up; the favicon and one h1 per page."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx
import pytest

from tests.e2e.browser import Browser
from tests.e2e.test_web import api_signup, run, ui_login
from tests.support.keys import new_public_key
from tests.support.platform import fixture, push, tar_dir

pytestmark = pytest.mark.browser

STATE = """query($p: String!) { project(name: $p) { applicationCount
  liveApplication { number status } applications(first: 1) { number finished }
  settings { replicas { processType replicas } memoryMb cpu healthCheckPath deployBranch } } }"""
TABS = ("overview", "releases", "logs", "settings", "addons")


def deployed(web, app: str = "ticker"):
    """A Client with a project running `app` (v1), then GREETING set (v2, live)."""
    name, api, client_id = api_signup(web.platform.api_url)
    project = f"web-{secrets.token_hex(3)}"
    web.platform.projects.append(project)
    run(api("mutation($n: String!) { createProject(name: $n) { name } }", n=project))
    outcome = run(push(web.platform, client_id, project, tar_dir(fixture(app)), commit="c" * 40))
    assert outcome.ok, outcome
    run(
        api(
            "mutation($p: String!) { setEnvVars(project: $p,"
            ' vars: [{key: "GREETING", value: "hi"}]) { project { name } } }',
            p=project,
        )
    )
    return name, api, project


def state(api, project: str) -> dict:
    return run(api(STATE, p=project))["project"]


def live_is(b: Browser, api, project: str, number: int) -> None:
    b.wait(
        lambda: (
            (state(api, project)["liveApplication"] or {}).get("number") == number
            and state(api, project)["liveApplication"]["status"] == "RUNNING"
        ),
        120,
        f"v{number} live",
    )


def h1_count(b: Browser) -> int:
    return b.driver.execute_script("return document.querySelectorAll('h1').length")


def grant_clipboard(b: Browser) -> None:
    b.driver.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"], "origin": b.base},
    )


def clipboard(b: Browser) -> str:
    return b.driver.execute_async_script(
        "const done = arguments[0];"
        "navigator.clipboard.readText().then(done, e => done('error: ' + e));"
    )


def log_box(b: Browser, box: str) -> dict:
    return b.driver.execute_script(
        "const b = document.getElementById(arguments[0]);"
        "return {top: b.scrollTop, height: b.scrollHeight, client: b.clientHeight,"
        " last: (b.lastElementChild || b).textContent};",
        box,
    )


@pytest.mark.docker
@pytest.mark.timeout(900)  # two deploys, a restart, a scale, a stop and a start
def test_tabs_confirmations_logs_prefilled_forms_and_idle(
    browser: Browser, web, tmp_path: Path
) -> None:
    b = browser
    name, api, project = deployed(web)
    live_is(b, api, project, 2)
    ui_login(b, name)
    b.go(f"/projects/{project}")
    b.wait_text("running", "#live-status", within=30)
    assert h1_count(b) == 1

    # Every tab at 1280 and 390 px: no horizontal overflow; the screenshots of the README.
    for tab in TABS:
        b.click(f"#tab-{tab}")
        b.wait_el(f"#panel-{tab}")
        if tab == "addons":
            b.wait_text("No add-ons", "#addons-section")
        b.check_widths(f"tab-{tab}")
        assert h1_count(b) == 1, tab

    # Overview: the git remote and the URL copied with a button.
    b.click("#tab-overview")
    grant_clipboard(b)
    git_url = b.wait_text("ssh://", "#git-url")
    b.click("#copy-git-url")
    b.wait(lambda: clipboard(b) == git_url, 10, "the git remote in the clipboard")
    b.click("#copy-url")
    url = b.text("#app-url")
    b.wait(lambda: clipboard(b) == url, 10, "the URL in the clipboard")

    # Restart asks first, saying what happens; cancelled, nothing is released.
    count = state(api, project)["applicationCount"]
    b.click("#restart")
    assert "v2" in b.wait_text("replaced by new ones", ".confirm")
    b.click(".confirm .cancel")
    b.wait(lambda: not b.els(".confirm"), 10, "the confirmation gone")
    assert state(api, project)["applicationCount"] == count
    b.click("#restart")
    b.click("#confirm-restart")
    assert "v3 replaces every container" in b.wait_text("replaces", "#overview-notice")
    live_is(b, api, project, 3)

    # Releases: "v" numbering only; the rollback's confirmation names the env var it removes,
    # and cancelled it changes nothing.
    b.click("#tab-releases")
    b.wait(lambda: b.els("#release-3 .live-badge"), 60, "v3 live")
    assert not re.search(r"#\d", b.text("#releases"))
    b.click("#rollback-1")
    question = b.wait_text("Removed: GREETING", "#release-1 .confirm")
    assert "Roll back to v1" in question
    b.click("#release-1 .cancel")
    b.wait(lambda: not b.els(".confirm"), 10, "the confirmation gone")
    assert state(api, project)["applicationCount"] == count + 1

    # Logs: the tail's lines carry the time they arrived; the box follows new lines, and stays
    # where the user scrolled up to; the filter keeps the matching lines; the download has them.
    b.click("#tab-logs")
    b.click("#toggle-tail")
    b.wait(
        lambda: re.search(r"\d\d:\d\d:\d\d web\.1 v3 \| tick \d+", b.text("#runtime-log")),
        30,
        "timestamped runtime lines",
    )
    b.wait(lambda: (s := log_box(b, "runtime-log"))["height"] > s["client"] + 100, 30, "overflow")
    b.wait(
        lambda: (s := log_box(b, "runtime-log"))["height"] - s["top"] - s["client"] < 30,
        10,
        "the box at its newest line",
    )
    b.driver.execute_script("document.getElementById('runtime-log').scrollTop = 0")
    last = log_box(b, "runtime-log")["last"]
    b.wait(lambda: log_box(b, "runtime-log")["last"] != last, 10, "new lines")
    assert log_box(b, "runtime-log")["top"] < 5, "the box jumped while the user read above"
    b.driver.execute_script(
        "const b = document.getElementById('runtime-log'); b.scrollTop = b.scrollHeight"
    )
    last = log_box(b, "runtime-log")["last"]
    b.wait(lambda: log_box(b, "runtime-log")["last"] != last, 10, "new lines")
    b.wait(
        lambda: (s := log_box(b, "runtime-log"))["height"] - s["top"] - s["client"] < 30,
        10,
        "following again at the bottom",
    )
    # The newest tick the box shows (10 ticks a second, 300 lines kept: a fixed "tick 1" or an
    # older line may have left the tail on a slow machine, leaving nothing to match).
    needle = "tick " + re.findall(r"tick (\d+)", b.text("#runtime-log"))[-1]
    b.fill_css("#log-filter", needle)
    b.wait(
        lambda: (
            (lines := b.text("#runtime-log").splitlines()) and all(needle in line for line in lines)
        ),
        10,
        f"only lines with {needle!r}",
    )
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    b.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    b.click("#download-runtime-log")
    files = b.wait(lambda: [f for f in downloads.iterdir() if f.suffix == ".log"], 20, "download")
    assert "tick" in files[0].read_text()
    b.click("#toggle-tail")

    # Settings: the forms show the current values.
    current = state(api, project)["settings"]
    b.click("#tab-settings")
    assert b.wait_el("#replicas-web").get_attribute("value") == "1"
    assert b.el("#field-memoryMb").get_attribute("value") == str(current["memoryMb"])
    assert float(b.el("#field-cpu").get_attribute("value")) == current["cpu"]
    assert b.el("#field-healthCheckPath").get_attribute("value") == current["healthCheckPath"]
    assert b.el("#field-deployBranch").get_attribute("value") == current["deployBranch"]

    # The memory minimum is the server's: its error shows next to the field; nothing changes.
    b.fill("memoryMb", "16")
    b.click("#set-resources")
    assert "32" in b.field_error("memoryMb")
    assert state(api, project)["settings"]["memoryMb"] == current["memoryMb"]

    # An old error goes at the next submit; a success never stands beside an error.
    b.fill("key", "1BAD")
    b.click("#set-env")
    b.field_error("key")
    b.fill("key", "OTHER")
    b.fill("value", "x")
    b.click("#set-env")
    b.wait_text("OTHER is set", "#env-notice")
    assert not b.els("#error-key") and not b.els("#env-error")

    # Scale to 0 asks first (the URL will answer 404); cancelled, nothing changes.
    field = b.el("#replicas-web")
    field.clear()
    field.send_keys("0")
    b.click("#scale-web")
    assert "404" in b.wait_text("404", ".scale-form .confirm")
    b.click(".scale-form .cancel")
    b.wait(lambda: not b.els(".confirm"), 10, "the confirmation gone")
    assert state(api, project)["settings"]["replicas"][0]["replicas"] == 1
    b.click("#scale-web")
    b.click("#confirm-scale-web")
    b.wait_text("scaled to 0", "#scale-notice")
    assert state(api, project)["settings"]["replicas"][0]["replicas"] == 0

    # Scaled to 0, it is "idle" everywhere: header, releases, the projects list; never running.
    b.wait_text("idle", "#live-status", within=60)
    b.click("#tab-releases")
    b.wait(lambda: "idle" in b.text("#releases"), 60, "idle in the release list")
    assert not b.els(".live-badge")
    assert "running" not in b.text("#live-status")
    b.click("#tab-overview")
    b.wait_el("#idle-note")

    # Stop asks first; stopped, the header says so; Start brings the release back (still idle).
    # The scale's release may still be finishing after "idle" shows: stop is refused until then.
    b.wait(lambda: state(api, project)["applications"][0]["finished"], 120, "the scale released")
    count = state(api, project)["applicationCount"]
    b.click("#stop")
    assert "serves nothing" in b.wait_text("serves nothing", ".confirm")
    b.click(".confirm .cancel")
    assert state(api, project)["applicationCount"] == count
    b.click("#stop")
    b.click("#confirm-stop")
    b.wait_text("is stopped", "#overview-notice", within=60)
    b.wait_text("stopped", "#live-status", within=60)
    b.click("#start")
    b.wait_text("starts the stopped release", "#overview-notice", within=60)
    b.wait_text("idle", "#live-status", within=120)
    assert "running" not in b.text("#live-status")
    b.go("/projects")
    row = b.wait_text("idle", f"#project-{project}", within=30)
    assert "running" not in row and "live" not in row


def test_token_in_view_copied_revoke_and_key_removal_confirmed(browser: Browser, web) -> None:
    b = browser
    name, api, _ = api_signup(web.platform.api_url)
    ui_login(b, name)
    b.go("/account")
    grant_clipboard(b)
    b.set_size(390)

    # The one-time token shows beside the form that made it, in view, with a copy button.
    b.fill("name", "ci")
    b.click("#create-token")
    token = b.wait_text("pt_", "#new-token")
    b.wait(
        lambda: b.driver.execute_script(
            "const r = document.getElementById('new-token').getBoundingClientRect();"
            "return r.top >= 0 && r.bottom <= window.innerHeight;"
        ),
        5,
        "the new token in view",
    )
    b.click("#copy-new-token")
    b.wait(lambda: clipboard(b) == token, 10, "the token in the clipboard")
    b.set_size(1280)
    tokens = run(api("{ apiTokens { id name kind } }"))["apiTokens"]
    ci = next(t for t in tokens if t["name"] == "ci")
    worker = api.with_token(token)
    assert run(worker("{ me { username } }"))["me"]["username"] == name

    # Revoking asks first; cancelled, the token still works; confirmed, it is refused.
    b.click(f"#revoke-token-{ci['id']}")
    assert "cannot be undone" in b.wait_text("undone", ".confirm")
    b.click(".confirm .cancel")
    assert run(worker("{ me { username } }"))["me"]["username"] == name
    b.click(f"#revoke-token-{ci['id']}")
    b.click(f"#confirm-revoke-token-{ci['id']}")
    b.wait_text("revoked", "#tokens-notice")
    assert run(worker.error("{ me { username } }")).errors

    # A key added, then the same key again: the refusal replaces the success (never both).
    key = new_public_key(comment="dash@e2e")
    b.fill("title", "laptop")
    b.fill("publicKey", key)
    b.click("#add-key")
    b.wait_text("added", "#keys-notice")
    b.fill("publicKey", key)
    b.click("#add-key")
    b.field_error("publicKey")
    assert not b.els("#keys-notice")
    keys = run(api("{ sshKeys { id } }"))["sshKeys"]
    assert len(keys) == 1

    # Removing the key asks first (git pushes with it stop working); cancelled, it stays.
    b.click(f"#remove-key-{keys[0]['id']}")
    assert "refused" in b.wait_text("refused", ".confirm")
    b.click(".confirm .cancel")
    assert len(run(api("{ sshKeys { id } }"))["sshKeys"]) == 1
    b.click(f"#remove-key-{keys[0]['id']}")
    b.click(f"#confirm-remove-key-{keys[0]['id']}")
    b.wait_text("removed", "#keys-notice")
    assert run(api("{ sshKeys { id } }"))["sshKeys"] == []


def test_favicon_and_one_h1_per_page(browser: Browser, web) -> None:
    b = browser
    icon = httpx.get(web.url + "/favicon.ico")
    assert icon.status_code == 200 and icon.content[:4] == b"\x00\x00\x01\x00"
    for path in ("/login", "/signup"):
        b.go(path)
        b.wait_el("#submit")
        assert h1_count(b) == 1, path
        href = b.driver.execute_script(
            "const l = document.querySelector('link[rel~=icon]'); return l && l.href"
        )
        assert href and href.endswith("favicon.ico"), href
    name, api, _ = api_signup(web.platform.api_url)
    project = f"web-{secrets.token_hex(3)}"
    web.platform.projects.append(project)
    run(api("mutation($n: String!) { createProject(name: $n) { name } }", n=project))
    ui_login(b, name)
    for path, ready in (
        ("/projects", f"#project-{project}"),
        ("/new", "#field-name"),
        ("/account", "#add-key"),
        (f"/projects/{project}", "#project-name"),
    ):
        b.go(path)
        b.wait_el(ready)
        assert h1_count(b) == 1, path
