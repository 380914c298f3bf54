"""The signed-in session. The API token lives only in this server process: in a backend var of
the Reflex state (names starting with `_` are never sent to the browser) and in the sign-ins
table below, never in the page, its URLs or its storage.

A Reflex state belongs to one tab's connection token, and Reflex hands a page a fresh token (an
empty, signed-out state) when it connects while the server still holds its previous connection,
as after a reload under load. So a sign-in is also kept here under a random id, and the browser
holds only that id, in a cookie: a reload, a new tab or a fresh state finds the sign-in again.
Logging out (or an expired token) forgets it. The table lives in memory: restarting the web app
signs everyone out of it, not out of the API."""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import Any

import reflex as rx

from . import api


def connected(client_token: str, session_id: str = "") -> bool:
    """Whether the browser tab owning a state is still connected (else its tasks stop). With
    `session_id`: still on that websocket, so a reload of the tab (a new socket, the same
    token) ends a task started for the page it replaced even if its unmount event was lost."""
    try:
        from reflex.utils.prerequisites import get_and_validate_app

        namespace = get_and_validate_app().app.event_namespace
        if namespace is None:
            return True
        sid = namespace.token_to_sid.get(client_token)
        return sid is not None and (not session_id or sid == session_id)
    except Exception:
        return True


SIGN_IN_MAX_AGE_SECONDS = 14 * 24 * 3600
# sign-in id (the cookie's value) -> (when it was made, token, username, email)
_SIGN_INS: dict[str, tuple[float, str, str, str]] = {}


def _remember(token: str, username: str, email: str) -> str:
    now = time.monotonic()
    for key in [k for k, v in _SIGN_INS.items() if now - v[0] > SIGN_IN_MAX_AGE_SECONDS]:
        del _SIGN_INS[key]
    sign_in = secrets.token_urlsafe(32)
    _SIGN_INS[sign_in] = (now, token, username, email)
    return sign_in


class Session(rx.State):
    _token: str = ""
    username: str = ""
    email: str = ""
    # Said on the login page after the account was deleted.
    farewell: str = ""
    # The id of this browser's sign-in in _SIGN_INS (not the token).
    sign_in: str = rx.Cookie(
        "", name="paastech_sign_in", path="/", max_age=SIGN_IN_MAX_AGE_SECONDS, same_site="strict"
    )

    @rx.var
    def signed_in(self) -> bool:
        return self.username != ""

    def _sign_in(self, payload: dict[str, Any]) -> None:
        _SIGN_INS.pop(self.sign_in, None)
        self._token = payload["token"]
        self.username = payload["client"]["username"]
        self.email = payload["client"]["email"]
        self.sign_in = _remember(self._token, self.username, self.email)

    def _restore(self) -> None:
        """A state without a token takes the sign-in its browser's cookie names, if any."""
        if self._token or not self.sign_in:
            return
        found = _SIGN_INS.get(self.sign_in)
        if found is None or time.monotonic() - found[0] > SIGN_IN_MAX_AGE_SECONDS:
            self.sign_in = ""
            return
        _, self._token, self.username, self.email = found

    def _device(self) -> str:
        """The browser's user agent: the API names this session's device after it."""
        return self.router.headers.user_agent or ""

    def _sign_out(self) -> None:
        _SIGN_INS.pop(self.sign_in, None)
        self.sign_in = ""
        self._token = ""
        self.username = ""
        self.email = ""

    async def request(self, name: str, **variables: Any) -> dict[str, Any]:
        """The named query or mutation with this session's token; an expired token signs out."""
        try:
            return await api.call(name, self._token, device=self._device(), **variables)
        except api.ApiError as exc:
            if exc.code == "UNAUTHENTICATED" and self._token:
                self._sign_out()
            raise

    @rx.event
    def require_login(self):
        self._restore()
        if not self._token:
            return rx.redirect("/login")
        return None

    @rx.event
    def redirect_home(self):
        self._restore()
        return rx.redirect("/projects" if self._token else "/login")

    @rx.event
    def redirect_if_signed_in(self):
        self._restore()
        if self._token:
            return rx.redirect("/projects")
        return None

    @rx.event
    async def logout(self):
        """Revoke the session token at the API, then forget it."""
        self._restore()
        if self._token:
            # An expired or revoked token is just as signed out.
            with contextlib.suppress(api.ApiError):
                await api.call("Logout", self._token, device=self._device())
        self._sign_out()
        return rx.redirect("/login")


def field_errors(exc: api.ApiError, fields: set[str], default: str = "") -> dict[str, str]:
    """Where to show an API error: next to its extensions.field, else at `default` or the form."""
    key = exc.field if exc.field in fields else default
    return {key or "form": exc.message}
