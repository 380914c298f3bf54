"""Issue 18's account pages in a real browser against a real API: login sessions (device, last
use, this device marked, revoked once confirmed, revoked at logout), the password change (errors
next to their field, other sessions logged out), the account's deletion (confirmed by the
username, then on the login page); the web app's requests say "web" and name the browser; copy
buttons say "Copied"; a domain shows its DNS target, verification and HTTPS status; after Stop
the project header reads "stopped". Each at 1280 and 390 px."""

from __future__ import annotations

import secrets
import shutil

import pytest

from tests.conftest import PASSWORD
from tests.e2e.browser import Browser
from tests.e2e.test_web import LOGIN, api_signup, run, ui_login
from tests.e2e.test_web_dashboard import clipboard, deployed, grant_clipboard, h1_count, live_is
from tests.support.gqlclient import Api
from tests.support.servers import ROOT

pytestmark = pytest.mark.browser

SESSIONS = "{ sessions { id device current } }"
ACTIVITY = "{ activity(first: 20) { action source } }"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"


def api_login(api_url: str, name: str, password: str = PASSWORD) -> Api:
    data = run(Api(api_url)(LOGIN, l=name, p=password))
    return Api(api_url, data["login"]["token"])


def refused(api: Api) -> bool:
    return run(api.error("{ me { username } }")).code == "UNAUTHENTICATED"


def test_sessions_listed_revoked_and_web_source(browser: Browser, web) -> None:
    b = browser
    name, api, _ = api_signup(web.platform.api_url)
    other = api_login(web.platform.api_url, name)
    ui_login(b, name)
    b.go("/account")
    b.wait(lambda: len(b.els("#sessions .session")) == 3, 20, "three sessions listed")
    assert h1_count(b) == 1

    # The browser's session is "this device", named after the browser, with its last use; the
    # API's records say the web app's requests come from "web".
    mine = [s for s in run(api(SESSIONS))["sessions"] if s["device"].startswith("Chrome")]
    assert len(mine) == 1, run(api(SESSIONS))
    row = b.text(f"#session-{mine[0]['id']}")
    assert "this device" in row and "Chrome on Linux" in row and "last used" in row
    assert len(b.els("#sessions .current")) == 1
    logins = [a for a in run(api(ACTIVITY))["activity"] if a["action"] == "session.login"]
    assert sorted(a["source"] for a in logins) == ["api", "api", "web"], logins

    # Revoking another session asks first; cancelled it still works; confirmed it is refused.
    sessions = run(other(SESSIONS))["sessions"]
    theirs = next(s for s in sessions if s["current"])
    b.click(f"#revoke-session-{theirs['id']}")
    assert "log in again" in b.wait_text("log in again", f"#session-{theirs['id']} .confirm")
    b.click(".confirm .cancel")
    b.wait(lambda: not b.els(".confirm"), 10, "the confirmation gone")
    assert run(other("{ me { username } }"))["me"]["username"] == name
    b.click(f"#revoke-session-{theirs['id']}")
    b.click(f"#confirm-revoke-session-{theirs['id']}")
    b.wait_text("is logged out", "#sessions-notice")
    assert refused(other)
    feed = run(api(ACTIVITY))["activity"]
    assert {"action": "session.revoke", "source": "web"} in feed, feed
    b.wait(lambda: len(b.els("#sessions .session")) == 2, 20, "two sessions left")
    # Login sessions are not listed again among the API tokens.
    assert not b.els("#api-tokens .api-token")
    for width in (1280, 390):
        b.set_size(width)
        # The Sessions card from its heading.
        b.driver.execute_script(
            "document.getElementById('sessions').scrollIntoView(); window.scrollBy(0, -130)"
        )
        scroll, inner = b.overflow()
        assert scroll <= inner, f"the account page overflows at {width} px"
        shutil.copy(b.screenshot(f"account-{width}"), DOCS_SCREENSHOTS / f"account-{width}.png")
    b.set_size(1280)

    # An id that is not a session of this Client changes nothing (the API refuses it).
    assert run(api.error('mutation { revokeSession(id: "999999") { id } }')).code == "NOT_FOUND"

    # At 390 px: this device's own session logged out from the list lands on the login page.
    b.set_size(390)
    b.click(f"#revoke-session-{mine[0]['id']}")
    b.click(f"#confirm-revoke-session-{mine[0]['id']}")
    b.wait_path("/login")
    ids = {s["id"] for s in run(api(SESSIONS))["sessions"]}
    assert mine[0]["id"] not in ids
    b.go("/account")
    b.wait_path("/login")

    # Logging out from the account page revokes the session at the API.
    ui_login(b, name)
    b.go("/account")
    b.wait(lambda: len(b.els("#sessions .session")) == 2, 20, "the new session listed")
    b.click("#logout-account")
    b.wait_path("/login")
    b.wait(lambda: len(run(api(SESSIONS))["sessions"]) == 1, 10, "the session revoked")


def test_password_change_errors_per_field_and_other_sessions_revoked(browser: Browser, web) -> None:
    b = browser
    name, api, _ = api_signup(web.platform.api_url)
    ui_login(b, name)
    b.go("/account")
    b.set_size(390)
    b.wait_el("#change-password")
    assert "logs out every other session" in b.text("body")

    # Checked in the page: nothing sent.
    b.fill("currentPassword", PASSWORD)
    b.fill("newPassword", "short")
    b.click("#change-password")
    assert "10" in b.field_error("newPassword")
    assert not b.els("#error-currentPassword")
    # The API's answer to a wrong current password goes next to that field.
    b.fill("currentPassword", "not-the-password-1")
    b.fill("newPassword", "a-new-password-42")
    b.click("#change-password")
    assert "wrong password" in b.field_error("currentPassword")
    assert not b.els("#error-newPassword") and not b.els("#password-notice")
    assert run(api("{ me { username } }"))["me"]["username"] == name  # nothing changed
    # The API's own rules on the new one go next to it.
    b.fill("currentPassword", PASSWORD)
    b.fill("newPassword", name + "1")
    b.click("#change-password")
    assert "password" in b.field_error("newPassword")
    assert not b.els("#error-currentPassword")

    b.fill("currentPassword", PASSWORD)
    b.fill("newPassword", "a-new-password-42")
    b.click("#change-password")
    assert "every other session" in b.wait_text("every other session", "#password-notice")
    assert not b.els("#error-currentPassword") and not b.els("#error-newPassword")
    b.wait(lambda: refused(api), 10, "the other session revoked")
    b.wait(lambda: len(b.els("#sessions .session")) == 1, 20, "only this session listed")
    assert b.els("#sessions .current")
    b.go("/projects")
    b.wait_path("/projects")  # this browser stays signed in
    assert run(Api(web.platform.api_url).error(LOGIN, l=name, p=PASSWORD)).errors
    api_login(web.platform.api_url, name, "a-new-password-42")


def test_account_deletion_confirmed_by_username(browser: Browser, web) -> None:
    b = browser
    name, api, _ = api_signup(web.platform.api_url)
    project = f"web-{secrets.token_hex(3)}"
    web.platform.projects.append(project)
    run(api("mutation($n: String!) { createProject(name: $n) { name } }", n=project))
    ui_login(b, name)
    b.go("/account")
    b.wait_text("cannot be undone", "#delete-account-section")

    # Not the username: refused in the page; a wrong password: refused by the API; both
    # next to their field, and nothing is deleted.
    b.fill("confirm", "someone-else")
    b.fill("password", PASSWORD)
    b.click("#delete-account")
    assert name in b.field_error("confirm")
    b.fill("confirm", name)
    b.fill("password", "not-the-password-1")
    b.click("#delete-account")
    assert "wrong password" in b.field_error("password")
    assert not b.els("#error-confirm")
    assert run(api("{ projects { name } }"))["projects"] == [{"name": project}]

    b.set_size(390)
    b.fill("password", PASSWORD)
    b.click("#delete-account")
    b.wait_path("/login", within=120)
    assert "deleted" in b.wait_text("deleted", "#farewell")
    assert refused(api)
    assert run(Api(web.platform.api_url).error(LOGIN, l=name, p=PASSWORD)).errors
    b.go("/projects")
    b.wait_path("/login")


def test_copied_feedback_and_domain_dns_verification_https(browser: Browser, web) -> None:
    b = browser
    name, api, _ = api_signup(web.platform.api_url)
    project = f"web-{secrets.token_hex(3)}"
    web.platform.projects.append(project)
    run(api("mutation($n: String!) { createProject(name: $n) { name } }", n=project))
    ui_login(b, name)
    b.go(f"/projects/{project}")
    grant_clipboard(b)
    for width in (1280, 390):
        b.set_size(width)
        git_url = b.wait_text("ssh://", "#git-url")
        assert b.text("#copy-git-url") == "Copy"
        b.click("#copy-git-url")
        b.wait(lambda: b.text("#copy-git-url") == "Copied", 5, "the button says Copied")
        b.wait(lambda u=git_url: clipboard(b) == u, 10, "the git remote in the clipboard")
        b.wait(lambda: b.text("#copy-git-url") == "Copy", 10, "the label back to Copy")

    # A custom domain: unverified with its TXT record, the CNAME target, the HTTPS status.
    b.set_size(1280)
    b.click("#tab-settings")
    hostname = f"{project}.example.com"
    b.fill("hostname", hostname)
    b.click_text("Add domain")
    b.wait_text("is added", "#domains-notice")
    domains = run(
        api(
            "query($p: String!) { project(name: $p) { domains { hostname default "
            "verification { record value } } } }",
            p=project,
        )
    )["project"]["domains"]
    custom = next(d for d in domains if d["hostname"] == hostname)
    default = next(d for d in domains if d["default"])
    row = b.wait(
        lambda: next(
            (e for e in b.els(".domain") if hostname in e.text and "CNAME" in e.text), None
        ),
        20,
        "the domain row",
    )
    text = row.text
    assert "unverified" in text and custom["verification"]["record"] in text
    assert custom["verification"]["value"] in text
    assert f"CNAME record for {hostname} pointing at {default['hostname']}" in text
    assert "HTTPS" in text
    b.check_widths("domains")

    # Bad input changes nothing: refused next to the field.
    b.fill("hostname", "nodot")
    b.click_text("Add domain")
    b.field_error("hostname")
    after = run(api("query($p: String!) { project(name: $p) { domains { hostname } } }", p=project))
    assert len(after["project"]["domains"]) == len(domains)


@pytest.mark.docker
@pytest.mark.timeout(600)  # a deploy, a stop and a start
def test_stop_reads_stopped_in_the_header(browser: Browser, web) -> None:
    b = browser
    name, api, project = deployed(web)
    live_is(b, api, project, 2)
    ui_login(b, name)
    b.go(f"/projects/{project}")
    b.wait_text("running", "#live-status", within=30)
    # Scaled to 0 first (as when the header was seen stuck): idle, then stopped.
    scale = 'mutation($p: String!) { scale(project: $p, processType: "web", replicas: 0) { project { name } } }'
    run(api(scale, p=project))
    b.wait(lambda: b.text("#live-status") == "idle", 120, "the header reads idle")
    # The header reads idle as soon as web is scaled to 0; the release that makes it (v3) is
    # live a little later, and Stop is refused until then (it would undo the stop).
    live = "query($p: String!) { project(name: $p) { liveApplication { number status } } }"
    b.wait(
        lambda: (
            run(api(live, p=project))["project"]["liveApplication"]
            == {"number": 3, "status": "RUNNING"}
        ),
        120,
        "v3 (scaled to 0) live",
    )

    b.click("#stop")
    assert "serves nothing" in b.wait_text("serves nothing", ".confirm")
    b.click("#confirm-stop")
    b.wait_text("is stopped", "#overview-notice", within=60)
    b.wait(lambda: b.text("#live-status") == "stopped", 30, "the header reads stopped")
    state = "query($p: String!) { project(name: $p) { state liveApplication { number } } }"
    assert run(api(state, p=project))["project"] == {"state": "STOPPED", "liveApplication": None}
    # After a reload too (the state as loaded, not only as streamed).
    b.driver.refresh()
    b.wait(lambda: b.text("#live-status") == "stopped", 30, "stopped after a reload")
    b.check_widths("stopped")
    b.set_size(1280)

    b.click("#start")
    b.wait_text("starts the stopped release", "#overview-notice", within=60)
    b.wait(lambda: b.text("#live-status") == "idle", 120, "the header reads idle again")
    assert run(api(state, p=project))["project"]["state"] == "IDLE"


def test_one_h1_on_the_not_found_pages(browser: Browser, web) -> None:
    """The pages test_web_dashboard's h1 test does not visit: any unknown path, and a project
    that is not the Client's."""
    b = browser
    name, _, _ = api_signup(web.platform.api_url)
    ui_login(b, name)
    for width in (1280, 390):
        b.set_size(width)
        for path in ("/no-such-page", f"/projects/nothing-{secrets.token_hex(3)}"):
            b.go(path)
            b.wait_el("#not-found")
            assert h1_count(b) == 1, (path, width)
            assert b.overflow()[0] <= b.overflow()[1], (path, width)
