"""A web sign-in outlives the tab's Reflex state: a reload, a second tab and a fresh connection
token find it again through the sign-in cookie, which holds an id, never the API token. Logging
out in one tab signs every tab of that browser out; another Client's sign-in in the same
browser replaces the first's."""

from __future__ import annotations

from tests.e2e.browser import Browser
from tests.e2e.test_web import api_signup, no_token_in_browser, run, ui_login

SESSIONS = "{ apiTokens { kind } }"


def sign_in_cookie(b: Browser) -> str:
    cookie = b.driver.get_cookie("paastech_sign_in")
    return cookie["value"] if cookie else ""


def test_sign_in_survives_reload_and_new_tab_and_logout_ends_it(browser: Browser, web) -> None:
    b = browser
    alice, api, _ = api_signup(web.platform.api_url)
    sessions = lambda: sum(t["kind"] == "SESSION" for t in run(api(SESSIONS))["apiTokens"])  # noqa: E731
    before = sessions()
    ui_login(b, alice)
    assert sessions() == before + 1
    first = sign_in_cookie(b)
    assert len(first) >= 32 and "pt_" not in first
    no_token_in_browser(b)

    # A fresh connection token (what Reflex gives a page that reconnects too early): the
    # cookie's sign-in is found again, the page stays signed in as the same Client.
    b.driver.execute_script("window.sessionStorage.clear()")
    b.go("/account")
    b.wait_text(alice, "body")
    assert b.path() == "/account"

    # A second tab of the same browser.
    main = b.driver.current_window_handle
    b.driver.switch_to.new_window("tab")
    b.go("/projects")
    b.wait_text("Log out")
    assert b.path() == "/projects"
    second = b.driver.current_window_handle

    # Logging out in the second tab revokes the token and forgets the sign-in for both.
    b.click("#logout")
    b.wait_path("/login")
    assert sign_in_cookie(b) == ""
    b.wait(lambda: sessions() == before, 10, "the session token revoked")
    b.driver.close()
    b.driver.switch_to.window(main)
    b.driver.execute_script("window.sessionStorage.clear()")
    b.go("/projects")
    b.wait_path("/login")
    assert second not in b.driver.window_handles

    # A forged or stale cookie signs nobody in.
    b.driver.add_cookie({"name": "paastech_sign_in", "value": first, "path": "/"})
    b.driver.execute_script("window.sessionStorage.clear()")
    b.go("/projects")
    b.wait_path("/login")

    # Another Client signing in on the same browser replaces the sign-in.
    bob, _, _ = api_signup(web.platform.api_url)
    ui_login(b, bob)
    b.driver.execute_script("window.sessionStorage.clear()")
    b.go("/account")
    text = b.wait_text(bob, "body")
    assert alice not in text
