"""The web app in a real browser (headless Debian Chromium) against a real API and Pomegranate.

Screenshots of every page land in artifacts/screenshots/; each page is checked at 1280 px and
390 px wide for horizontal overflow.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time

import pytest

from tests.conftest import PASSWORD
from tests.e2e.browser import Browser
from tests.support.gqlclient import SIGNUP, Api
from tests.support.keys import new_public_key
from tests.support.platform import fixture, push, tar_dir

pytestmark = pytest.mark.browser

LOGIN = (
    "mutation($l: String!, $p: String!) { login(login: $l, password: $p) { token client { id } } }"
)


def run(coro):
    return asyncio.run(coro)


def api_signup(api_url: str) -> tuple[str, Api, str]:
    name = f"w{secrets.token_hex(4)}"
    data = run(Api(api_url)(SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD))
    return name, Api(api_url, data["signup"]["token"]), data["signup"]["client"]["id"]


def ui_login(b: Browser, login: str, password: str = PASSWORD) -> None:
    b.go("/login")
    b.fill("login", login)
    b.fill("password", password)
    b.click("#submit")
    b.wait_path("/projects")


def no_token_in_browser(b: Browser) -> None:
    """The session token lives in the server-side Reflex state only."""
    assert "pt_" not in b.driver.page_source
    storage = b.driver.execute_script(
        "return JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage),"
        " document.cookie, location.href])"
    )
    assert "pt_" not in storage, storage


@pytest.mark.docker
def test_journey_signup_key_project_push_env_rollback_delete(browser: Browser, web) -> None:
    b = browser
    name = f"w{secrets.token_hex(4)}"
    project = f"web-{secrets.token_hex(3)}"
    web.platform.projects.append(project)

    # Sign up (the form checks before sending).
    b.go("/signup")
    b.wait_el("#field-email")
    b.check_widths("signup")
    b.fill("email", f"{name}@example.com")
    b.fill("username", name)
    b.fill("password", "short")
    b.click("#submit")
    assert "10 characters" in b.field_error("password")
    b.fill("password", PASSWORD)
    b.click("#submit")
    b.wait_path("/projects")
    b.wait_text("No projects yet")
    b.check_widths("projects-empty")
    no_token_in_browser(b)

    # An SSH key on the account page.
    b.go("/account")
    b.fill("title", "laptop")
    b.fill("publicKey", new_public_key(comment="web@e2e"))
    b.click("#add-key")
    b.wait_text("SHA256:", "#ssh-keys")
    assert "laptop" in b.text("#ssh-keys")
    b.check_widths("account")

    # Create the project: the page shows the git remote and how to push.
    b.go("/new")
    b.check_widths("new-project")
    b.fill("name", project)
    b.click("#create")
    git_url = b.wait_text(project, "#git-url")
    assert git_url.startswith("ssh://") and git_url.endswith(f"{project}.git")
    assert f"git remote add paastech {git_url}" in b.text("#push-instructions")
    b.check_widths("project-created")

    b.click("#open-project")
    b.wait_path(f"/projects/{project}")
    assert "not deployed" in b.wait_text("not deployed", "#live-status")
    b.click("#tab-releases")
    b.wait_text("Nothing deployed yet")
    b.check_widths("project-empty")
    b.driver.execute_script("window.__samePage = 'yes'")

    # Deploy from the test as gitd does; the page follows it live, without a reload.
    data = run(Api(web.platform.api_url)(LOGIN, l=name, p=PASSWORD))
    client_id = data["login"]["client"]["id"]
    outcome: dict = {}

    def deploy() -> None:
        outcome["result"] = asyncio.run(
            push(web.platform, client_id, project, tar_dir(fixture("python")), commit="b" * 40)
        )

    # The Logs tab streams the build log; the header's badge follows the release meanwhile.
    b.click("#tab-logs")
    thread = threading.Thread(target=deploy)
    thread.start()
    seen: list[str] = []
    log_seen_before_done = False
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        statuses = b.els("#live-status")
        if statuses:
            status = statuses[0].text.strip()
            if status and (not seen or seen[-1] != status):
                seen.append(status)
        log = b.els("#build-log")
        if log and "Building" in log[0].text and thread.is_alive():
            log_seen_before_done = True
        if seen and seen[-1] in ("running", "failed"):
            break
        time.sleep(0.1)
    thread.join(60)
    assert outcome["result"].ok, outcome["result"]
    assert seen and seen[-1] == "running", seen
    # The page's timeline of release v1, made of the applicationStatus events it received.
    timeline = b.wait_text("running", "#timeline")
    assert "building → deploying → running" in timeline, (timeline, seen)
    assert len(seen) >= 2, seen  # the badge changed in place at least once before running
    b.wait_text("=====> Application deployed", "#build-log")
    assert log_seen_before_done, "build log lines appeared only after the deploy finished"
    b.wait_text("running", "#live-status")
    assert b.driver.execute_script("return window.__samePage") == "yes"
    b.check_widths("project-running")
    b.click("#tab-releases")
    b.wait_text("running", "#release-status-1")
    assert "live" in b.text("#release-1")

    # An env var set in the page is a new release, which appears live.
    b.click("#tab-settings")
    b.fill("key", "GREETING")
    b.fill("value", "bonjour-secret")
    b.click("#set-env")
    b.wait_el("#env-GREETING")
    assert "bonjour-secret" not in b.text("#env-list")  # hidden until "Show"
    assert "GREETING is set" in b.wait_text("is set", "#env-notice")
    b.click("#tab-releases")
    b.wait_el("#release-2", within=30)
    b.wait_text("running", "#release-status-2", within=120)
    b.wait_text("live", "#release-2")

    # Roll back to release 1, once confirmed: the confirmation names the env var it removes;
    # release 3 runs release 1's image and config.
    b.click("#rollback-1")
    question = b.wait_text("Removed: GREETING", ".confirm")
    assert "v1" in question
    b.click("#confirm-rollback-1")
    b.wait_text("rolls back to v1", "#releases-notice")
    b.wait_el("#release-3", within=30)
    b.wait_text("running", "#release-status-3", within=120)
    b.wait_text("superseded", "#release-status-2", within=30)
    assert b.driver.execute_script("return window.__samePage") == "yes"
    b.screenshot("project-releases")

    # Delete, with the name typed to confirm.
    b.click("#tab-settings")
    b.fill("confirm", "not-the-name")
    b.click("#delete")
    assert project in b.field_error("confirm")
    b.fill("confirm", project)
    b.click("#delete")
    b.wait_path("/projects")
    b.wait_text("No projects yet")
    projects = run(Api(web.platform.api_url, data["login"]["token"])("{ projects { name } }"))
    assert projects["projects"] == []


def test_wrong_password_and_logout_revokes(browser: Browser, web) -> None:
    b = browser
    name, api, _ = api_signup(web.platform.api_url)
    b.go("/login")
    b.wait_el("#field-login")
    b.check_widths("login")
    b.fill("login", name)
    b.fill("password", "not-the-password-1")
    b.click("#submit")
    message = b.wait(lambda: b.text("#error-form") or b.text("#error-password"), 20, "login error")
    assert "password" in message.lower() or "invalid" in message.lower(), message
    b.screenshot("login-wrong-password")
    assert b.path() == "/login"

    sessions = "{ apiTokens { kind } }"
    before = sum(t["kind"] == "SESSION" for t in run(api(sessions))["apiTokens"])
    ui_login(b, name)
    no_token_in_browser(b)
    during = sum(t["kind"] == "SESSION" for t in run(api(sessions))["apiTokens"])
    assert during == before + 1
    b.click("#logout")
    b.wait_path("/login")
    b.wait(
        lambda: sum(t["kind"] == "SESSION" for t in run(api(sessions))["apiTokens"]) == before,
        10,
        "the session token revoked",
    )
    b.go("/projects")
    b.wait_path("/login")


def test_duplicate_project_name_and_invalid_env_key(browser: Browser, web) -> None:
    b = browser
    name, api, _ = api_signup(web.platform.api_url)
    project = f"web-{secrets.token_hex(3)}"
    web.platform.projects.append(project)
    run(api("mutation($n: String!) { createProject(name: $n) { name } }", n=project))
    ui_login(b, name)
    b.wait_el(f"#project-{project}")
    b.check_widths("projects")

    b.go("/new")
    b.fill("name", "Not_Valid")
    b.click("#create")
    assert "lowercase" in b.field_error("name")
    b.fill("name", project)
    b.click("#create")
    message = b.wait(
        lambda: (t := b.text("#error-name")) and "lowercase" not in t and t, 20, "conflict"
    )
    assert "exist" in message.lower() or "taken" in message.lower(), message
    b.screenshot("new-project-duplicate")

    b.go(f"/projects/{project}")
    b.click("#tab-settings")
    b.fill("key", "1BAD-KEY")
    b.fill("value", "x")
    b.click("#set-env")
    assert "letters, digits" in b.field_error("key")  # checked in the app before sending
    b.fill("key", "PORT")  # passes the client check; the API refuses it (VALIDATION, field key)
    b.click("#set-env")
    message = b.wait(lambda: (t := b.text("#error-key")) and "reserved" in t and t, 20, "server")
    assert "PORT" in message
    b.screenshot("project-env-invalid")
    env = run(api("query($p: String!) { project(name: $p) { envVars { key } } }", p=project))
    assert env["project"]["envVars"] == []


def test_other_clients_project_is_not_found(browser: Browser, web) -> None:
    b = browser
    _, bob, _ = api_signup(web.platform.api_url)
    project = f"web-{secrets.token_hex(3)}"
    web.platform.projects.append(project)
    run(bob("mutation($n: String!) { createProject(name: $n) { name } }", n=project))
    alice, _, _ = api_signup(web.platform.api_url)
    ui_login(b, alice)
    b.go(f"/projects/{project}")
    assert "Project not found" in b.wait_text("not found", "#not-found")
    assert project not in b.text("#not-found")
    b.check_widths("project-not-found")
    b.go("/no-such-page")
    b.wait_text("not found", "#not-found")
