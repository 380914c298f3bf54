"""Account: SSH keys, API tokens; sessions, password and deletion in account_security.py."""

from __future__ import annotations

import dataclasses

import reflex as rx

from . import account_security, api, forms, ui
from .session import Session


@dataclasses.dataclass
class KeyRow:
    id: str = ""
    title: str = ""
    fingerprint: str = ""
    created: str = ""


@dataclasses.dataclass
class TokenRow:
    id: str = ""
    name: str = ""
    kind: str = ""
    created: str = ""
    last_used: str = ""
    expires: str = ""


def _day(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ")


class Account(forms.Feedback, Session):
    """The removal waiting for its confirmation is "key-3" or "token-7" (forms.Feedback)."""

    loaded: bool = False
    keys: list[KeyRow] = []
    tokens: list[TokenRow] = []
    key_errors: dict[str, str] = {}
    token_errors: dict[str, str] = {}
    new_token: str = ""
    error: str = ""

    @rx.event
    async def load(self):
        if not self._token:
            return
        self.new_token = self.notice = self.action_error = self.confirming = ""
        await self._refresh()
        if not self._token:
            yield rx.redirect("/login")

    async def _refresh(self) -> None:
        try:
            data = await self.request("Account")
        except api.ApiError as exc:
            self.error = exc.message
            return
        self.error = ""
        self.keys = [
            KeyRow(k["id"], k["title"], k["fingerprint"], _day(k["createdAt"]))
            for k in data["sshKeys"]
        ]
        self.tokens = [
            TokenRow(
                t["id"],
                t["name"],
                t["kind"],
                _day(t["createdAt"]),
                _day(t["lastUsedAt"]) or "never",
                _day(t["expiresAt"]) or "never",
            )
            for t in data["apiTokens"]
            if t["kind"] == "API"  # login sessions are listed in their own section
        ]
        self.loaded = True

    @rx.event
    async def add_key(self, form: dict):
        public_key = str(form.get("publicKey", "")).strip()
        title = str(form.get("title", "")).strip()
        if not public_key.startswith(("ssh-", "ecdsa-", "sk-")) or " " not in public_key:
            problem = {
                "publicKey": "Paste an OpenSSH public key (the line of ~/.ssh/id_ed25519.pub)."
            }
            forms.refuse(self, "keys", "key_errors", problem)
            return
        async for step in forms.run(
            self,
            "keys",
            "AddSshKey",
            done=lambda d: f"Key {d['addSshKey']['fingerprint']} added.",
            errors="key_errors",
            fields={"publicKey", "title"},
            default="publicKey",
            clear_fields=("publicKey", "title"),
            reload=self._refresh,
            k=public_key,
            t=title or None,
        ):
            yield step

    @rx.event
    async def remove_key(self, key_id: str):
        if self.confirming != f"key-{key_id}":
            return
        self.confirming = ""
        async for step in forms.run(
            self, "keys", "RemoveSshKey", done="Key removed.", reload=self._refresh, i=key_id
        ):
            yield step

    @rx.event
    async def create_token(self, form: dict):
        name = str(form.get("name", "")).strip()
        days_text = str(form.get("expiresInDays", "")).strip()
        problems = {}
        if not name:
            problems["name"] = "Name the token (e.g. the machine that uses it)."
        days: int | None = None
        if days_text:
            try:
                days = int(days_text)
                if days < 1:
                    raise ValueError
            except ValueError:
                problems["expiresInDays"] = "A whole number of days, or empty for no expiry."
        if problems:
            forms.refuse(self, "tokens", "token_errors", problems)
            return
        self.new_token = ""
        async for step in forms.run(
            self,
            "tokens",
            "CreateApiToken",
            done=self._token_created,
            errors="token_errors",
            fields={"name", "expiresInDays"},
            default="name",
            clear_fields=("name", "expiresInDays"),
            n=name,
            d=days,
        ):
            yield step
        await self._refresh()
        if self.new_token:
            # Centred: the token list above it grows by the new row meanwhile.
            yield rx.call_script(
                "document.getElementById('new-token')"
                ".scrollIntoView({block: 'center', behavior: 'instant'})"
            )

    def _token_created(self, data: dict) -> str:
        self.new_token = data["createApiToken"]["token"]
        return "Token created: copy it now, it is shown only once."

    @rx.event
    async def revoke_token(self, token_id: str):
        if self.confirming != f"token-{token_id}":
            return
        self.confirming = ""
        async for step in forms.run(
            self,
            "tokens",
            "RevokeApiToken",
            done="Token revoked: it no longer works.",
            reload=self._refresh,
            i=token_id,
        ):
            yield step


def key_row(k: KeyRow) -> rx.Component:
    return ui.confirmed_row(
        rx.box(
            rx.text(k.title, weight="bold"),
            rx.code(k.fingerprint, size="1", class_name="fingerprint"),
            rx.text("added ", k.created, size="1", color_scheme="gray"),
        ),
        state=Account,
        key="key-" + k.id,
        verb="remove",
        button="Remove",
        question="Remove the key "
        + k.title
        + "? Git pushes signed with it are refused from now on.",
        on_confirm=Account.remove_key(k.id),
        confirm_label="Remove",
        class_name="ssh-key",
    )


def token_row(t: TokenRow) -> rx.Component:
    # Only API tokens are listed (login sessions are in their own section): each is revocable.
    return ui.confirmed_row(
        rx.box(
            rx.flex(rx.text(t.name, weight="bold"), rx.badge(t.kind.lower()), spacing="2"),
            rx.text(
                "created ",
                t.created,
                " · last used ",
                t.last_used,
                " · expires ",
                t.expires,
                size="1",
                color_scheme="gray",
            ),
        ),
        state=Account,
        key="token-" + t.id,
        verb="revoke",
        button="Revoke",
        question="Revoke the token " + t.name + "? Every CLI or script using it is refused from "
        "now on; this cannot be undone.",
        on_confirm=Account.revoke_token(t.id),
        confirm_label="Revoke",
        class_name="api-token",
    )


def account_page() -> rx.Component:
    return ui.page(
        rx.flex(
            ui.heading("Account", 1),
            rx.text(Session.username, " · ", Session.email, color_scheme="gray"),
            rx.cond(Account.error != "", rx.callout(Account.error, color_scheme="red")),
            ui.card(
                ui.heading("SSH keys"),
                rx.cond(
                    ~Account.loaded,
                    ui.loading(),
                    rx.cond(
                        Account.keys.length() > 0,
                        rx.box(rx.foreach(Account.keys, key_row), id="ssh-keys"),
                        ui.empty("No SSH keys yet: add one to git push."),
                    ),
                ),
                ui.action_form(
                    ui.field("Title", "title", Account.key_errors, placeholder="laptop"),
                    ui.field(
                        "Public key",
                        "publicKey",
                        Account.key_errors,
                        textarea=True,
                        placeholder="ssh-ed25519 AAAA... you@laptop",
                    ),
                    errors=Account.key_errors,
                    on_submit=Account.add_key,
                    submit="Add key",
                    submit_id="add-key",
                    busy=Account.busy == "keys",
                ),
                ui.feedback(Account, "keys"),
            ),
            ui.card(
                ui.heading("API tokens"),
                rx.text(
                    "For the CLI and scripts: send it as `Authorization: Bearer <token>`.",
                    size="2",
                    color_scheme="gray",
                ),
                rx.box(rx.foreach(Account.tokens, token_row), id="api-tokens"),
                ui.action_form(
                    ui.field("Token name", "name", Account.token_errors, placeholder="ci"),
                    ui.field(
                        "Expires in days (empty: never)",
                        "expiresInDays",
                        Account.token_errors,
                        type="number",
                    ),
                    errors=Account.token_errors,
                    on_submit=Account.create_token,
                    submit="Create token",
                    submit_id="create-token",
                    busy=Account.busy == "tokens",
                ),
                ui.feedback(Account, "tokens"),
                # Right under the button that made it, with a copy button: shown only once.
                rx.cond(
                    Account.new_token != "",
                    rx.callout.root(
                        rx.flex(
                            rx.callout.text("Copy it now, it is shown only once:"),
                            rx.code(Account.new_token, id="new-token", word_break="break-all"),
                            ui.copy_button(Account.new_token, "copy-new-token"),
                            direction="column",
                            spacing="2",
                            align="start",
                        ),
                        color_scheme="green",
                    ),
                ),
            ),
            account_security.sessions_card(),
            account_security.password_card(),
            account_security.delete_card(),
            direction="column",
            spacing="4",
        ),
        max_width="800px",
    )
