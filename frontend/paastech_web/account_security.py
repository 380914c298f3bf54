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


class Security(forms.Feedback, Session):
    """The session waiting for its revocation's confirmation is "session-<id>" (forms.Feedback)."""

    sessions: list[SessionRow] = []
    sessions_loaded: bool = False
    sessions_error: str = ""
    password_errors: dict[str, str] = {}
    delete_errors: dict[str, str] = {}

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
    async def revoke(self, session_id: str):
        if self.confirming != f"session-{session_id}":
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
        # The API names the argument at fault: currentPassword or newPassword.
        async for step in forms.run(
            self,
            "password",
            "ChangePassword",
            done="Password changed: every other session is logged out; this one stays.",
            errors="password_errors",
            fields={"currentPassword", "newPassword"},
            clear_fields=("currentPassword", "newPassword"),
            reload=self._refresh,
            c=current,
            n=new,
        ):
            yield step

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
        async for step in forms.run(
            self,
            "delete",
            "DeleteAccount",
            done="Deleted.",
            errors="delete_errors",
            fields={"password", "confirm"},
            p=password,
            c=typed,
        ):
            yield step
        if self.notice_at != "delete" or not self.notice:
            return  # refused: the errors are next to their fields
        self._sign_out()
        self.farewell = "Your account and its projects are deleted."
        yield rx.redirect("/login")


def _session_line(s: SessionRow) -> rx.Component:
    key = "session-" + s.id
    return ui.confirmed_row(
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
        state=Security,
        key=key,
        verb="revoke",
        button=rx.cond(s.current, "Log out", "Revoke"),
        question=rx.cond(
            s.current,
            "Log this browser out? Its session stops working at once.",
            "Log " + s.device + " out? That device has to log in again.",
        ),
        on_confirm=Security.revoke(s.id),
        confirm_label="Log out",
        class_name="session",
        id=key,
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
        ui.action_form(
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
            errors=Security.password_errors,
            on_submit=Security.change_password,
            submit="Change password",
            submit_id="change-password",
            busy=Security.busy == "password",
            width="fit-content",
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
        ui.action_form(
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
            errors=Security.delete_errors,
            on_submit=Security.delete_account,
            submit="Delete my account",
            submit_id="delete-account",
            busy=Security.busy == "delete",
            color_scheme="red",
            width="fit-content",
        ),
        id="delete-account-section",
        border="1px solid var(--red-a6)",
    )
