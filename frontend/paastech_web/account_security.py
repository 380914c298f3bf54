"""The account page's security sections: login sessions (device, last use, this device marked,
each revocable once confirmed), the password change and the account's deletion."""

from __future__ import annotations

import dataclasses

import reflex as rx

from . import api, forms, rules, ui
from .session import Session


@dataclasses.dataclass
class SessionRow:
    id: str = ""
    device: str = ""
    created: str = ""
    last_used: str = ""
    current: bool = False


def _minute(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ")


def session_row(s: dict) -> SessionRow:
    return SessionRow(
        s["id"],
        s["device"],
        _minute(s["createdAt"]),
        _minute(s["lastUsedAt"]) or "never",
        bool(s["current"]),
    )


def password_errors(exc: api.ApiError) -> dict[str, str]:
    """The API names the argument at fault: currentPassword or newPassword."""
    if exc.field in ("currentPassword", "newPassword"):
        return {exc.field: exc.message}
    return {"form": exc.message}


class Security(Session):
    sessions: list[SessionRow] = []
    sessions_loaded: bool = False
    sessions_error: str = ""
    password_errors: dict[str, str] = {}
    delete_errors: dict[str, str] = {}
    # forms.run()'s feedback, and the session waiting for its revocation's confirmation.
    busy: str = ""
    notice: str = ""
    notice_at: str = ""
    action_error: str = ""
    confirming: str = ""

    @rx.event
    async def load(self):
        if not self._token:
            return
        self.notice = self.action_error = self.confirming = ""
        self.password_errors, self.delete_errors = {}, {}
        await self._refresh()

    async def _refresh(self) -> None:
        try:
            data = await self.request("Sessions")
        except api.ApiError as exc:
            self.sessions_error = exc.message
            return
        self.sessions_error = ""
        self.sessions = [session_row(s) for s in data["sessions"]]
        self.sessions_loaded = True

    @rx.event
    def ask(self, session_id: str):
        forms.clear(self, "sessions")
        self.confirming = session_id

    @rx.event
    def cancel(self):
        self.confirming = ""

    @rx.event
    async def revoke(self, session_id: str):
        if self.confirming != session_id:
            return
        self.confirming = ""
        current = any(s.current for s in self.sessions if s.id == session_id)
        async for step in forms.run(
            self,
            "sessions",
            "RevokeSession",
            done=lambda d: f"{d['revokeSession']['device']} is logged out.",
            reload=None if current else self._refresh,
            i=session_id,
        ):
            yield step
        if current and not self.action_error:
            # This browser's own session: it is signed out like a logout.
            self._sign_out()
            yield rx.redirect("/login")

    @rx.event
    async def change_password(self, form: dict):
        current = str(form.get("currentPassword", ""))
        new = str(form.get("newPassword", ""))
        problems = {}
        if not current:
            problems["currentPassword"] = "Enter your current password."
        if problem := rules.password(new):
            problems["newPassword"] = problem
        elif new == current:
            problems["newPassword"] = "Choose a password different from the current one."
        if problems:
            forms.refuse(self, "password", "password_errors", problems)
            return
        forms.clear(self, "password", "password_errors")
        self.busy = "password"
        yield
        try:
            await self.request("ChangePassword", c=current, n=new)
        except api.ApiError as exc:
            self.password_errors = password_errors(exc)
            self.busy = ""
            return
        self.busy = ""
        self.notice = "Password changed: every other session is logged out; this one stays."
        yield rx.set_value("field-currentPassword", "")
        yield rx.set_value("field-newPassword", "")
        await self._refresh()

    @rx.event
    async def delete_account(self, form: dict):
        password = str(form.get("password", ""))
        typed = str(form.get("confirm", "")).strip()
        problems = {}
        if typed != self.username:
            problems["confirm"] = f"Type your username, {self.username}, to confirm."
        if not password:
            problems["password"] = "Enter your password."
        if problems:
            forms.refuse(self, "delete", "delete_errors", problems)
            return
        forms.clear(self, "delete", "delete_errors")
        self.busy = "delete"
        yield
        try:
            await self.request("DeleteAccount", p=password, c=typed)
        except api.ApiError as exc:
            self.delete_errors = {
                (exc.field if exc.field in ("password", "confirm") else "form"): exc.message
            }
            self.busy = ""
            return
        self.busy = ""
        self._sign_out()
        self.farewell = "Your account and its projects are deleted."
        yield rx.redirect("/login")


def _session_line(s: SessionRow) -> rx.Component:
    key = "session-" + s.id
    return rx.box(
        rx.flex(
            rx.box(
                rx.flex(
                    rx.text(s.device, weight="bold", class_name="device"),
                    rx.cond(
                        s.current,
                        rx.badge("this device", color_scheme="green", class_name="current"),
                    ),
                    spacing="2",
                    wrap="wrap",
                ),
                rx.text(
                    "last used ",
                    s.last_used,
                    " · since ",
                    s.created,
                    " UTC",
                    size="1",
                    color_scheme="gray",
                ),
            ),
            rx.spacer(),
            rx.button(
                rx.cond(s.current, "Log out", "Revoke"),
                size="1",
                variant="soft",
                color_scheme="red",
                on_click=Security.ask(s.id),
                id="revoke-" + key,
            ),
            spacing="2",
            align="center",
        ),
        ui.confirm(
            Security.confirming == s.id,
            rx.cond(
                s.current,
                "Log this browser out? Its session stops working at once.",
                "Log " + s.device + " out? That device has to log in again.",
            ),
            Security.revoke(s.id),
            Security.cancel,
            "confirm-revoke-" + key,
            "Log out",
        ),
        class_name="session",
        id=key,
        padding_y="0.25rem",
    )


def sessions_card() -> rx.Component:
    return ui.card(
        ui.heading("Sessions"),
        rx.text(
            "Each browser or CLI you logged in with. Logging out revokes this session's token.",
            size="2",
            color_scheme="gray",
        ),
        rx.cond(
            Security.sessions_error != "", rx.callout(Security.sessions_error, color_scheme="red")
        ),
        rx.cond(
            ~Security.sessions_loaded,
            ui.loading(),
            rx.box(rx.foreach(Security.sessions, _session_line), id="sessions"),
        ),
        ui.feedback(Security, "sessions"),
        rx.button(
            "Log out",
            on_click=Session.logout,
            color_scheme="red",
            variant="soft",
            width="fit-content",
            id="logout-account",
        ),
    )


def password_card() -> rx.Component:
    return ui.card(
        ui.heading("Password"),
        rx.text(
            "Changing it logs out every other session (other browsers and CLI logins); "
            "API tokens keep working.",
            size="2",
            color_scheme="gray",
        ),
        rx.form(
            rx.flex(
                ui.field(
                    "Current password",
                    "currentPassword",
                    Security.password_errors,
                    type="password",
                    auto_complete="current-password",
                ),
                ui.field(
                    "New password (10+ characters, not only letters)",
                    "newPassword",
                    Security.password_errors,
                    type="password",
                    auto_complete="new-password",
                ),
                ui.form_error(Security.password_errors),
                rx.button(
                    "Change password",
                    type="submit",
                    loading=Security.busy == "password",
                    id="change-password",
                    width="fit-content",
                ),
                direction="column",
                spacing="2",
            ),
            on_submit=Security.change_password,
            reset_on_submit=False,
        ),
        ui.feedback(Security, "password"),
    )


def delete_card() -> rx.Component:
    return ui.card(
        ui.heading("Delete the account"),
        rx.text(
            "Deletes every project (containers, images, repositories), add-on, SSH key and "
            "token of ",
            rx.code(Session.username),
            ". This cannot be undone.",
            size="2",
        ),
        rx.form(
            rx.flex(
                ui.field(
                    "Type your username to confirm",
                    "confirm",
                    Security.delete_errors,
                    auto_complete="off",
                ),
                ui.field(
                    "Password",
                    "password",
                    Security.delete_errors,
                    type="password",
                    auto_complete="current-password",
                ),
                ui.form_error(Security.delete_errors),
                rx.button(
                    "Delete my account",
                    type="submit",
                    color_scheme="red",
                    loading=Security.busy == "delete",
                    id="delete-account",
                    width="fit-content",
                ),
                direction="column",
                spacing="2",
            ),
            on_submit=Security.delete_account,
            reset_on_submit=False,
        ),
        id="delete-account-section",
        border="1px solid var(--red-a6)",
    )
