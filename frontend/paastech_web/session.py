"""The signed-in session. The API token lives only in a backend var of the Reflex state (names
starting with `_` are never sent to the browser): not in the page, its URLs or its storage."""

from __future__ import annotations

import contextlib
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


class Session(rx.State):
    _token: str = ""
    username: str = ""
    email: str = ""
    # Said on the login page after the account was deleted.
    farewell: str = ""

    @rx.var
    def signed_in(self) -> bool:
        return self.username != ""

    def _sign_in(self, payload: dict[str, Any]) -> None:
        self._token = payload["token"]
        self.username = payload["client"]["username"]
        self.email = payload["client"]["email"]

    def _device(self) -> str:
        """The browser's user agent: the API names this session's device after it."""
        return self.router.headers.user_agent or ""

    def _sign_out(self) -> None:
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
        if not self._token:
            return rx.redirect("/login")
        return None

    @rx.event
    def redirect_home(self):
        return rx.redirect("/projects" if self._token else "/login")

    @rx.event
    def redirect_if_signed_in(self):
        if self._token:
            return rx.redirect("/projects")
        return None

    @rx.event
    async def logout(self):
        """Revoke the session token at the API, then forget it."""
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
