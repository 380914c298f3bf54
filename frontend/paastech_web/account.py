"""Account: SSH keys, API tokens, logout."""

from __future__ import annotations

import dataclasses

import reflex as rx

from . import api, ui
from .session import Session, field_errors

ACCOUNT = """{ me { username email }
  sshKeys { id title fingerprint createdAt }
  apiTokens { id name kind createdAt lastUsedAt expiresAt } }"""


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


class Account(Session):
    loaded: bool = False
    keys: list[KeyRow] = []
    tokens: list[TokenRow] = []
    key_errors: dict[str, str] = {}
    token_errors: dict[str, str] = {}
    new_token: str = ""
    error: str = ""
    notice: str = ""

    @rx.event
    async def load(self):
        if not self._token:
            return
        self.new_token = self.notice = ""
        await self._refresh()
        if not self._token:
            yield rx.redirect("/login")

    async def _refresh(self) -> None:
        try:
            data = await self.request(ACCOUNT)
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
        ]
        self.loaded = True

    @rx.event
    async def add_key(self, form: dict):
        public_key = str(form.get("publicKey", "")).strip()
        title = str(form.get("title", "")).strip()
        if not public_key.startswith(("ssh-", "ecdsa-", "sk-")) or " " not in public_key:
            self.key_errors = {
                "publicKey": "Paste an OpenSSH public key (the line of ~/.ssh/id_ed25519.pub)."
            }
            return
        self.key_errors = {}
        try:
            data = await self.request(
                "mutation($k: String!, $t: String) { addSshKey(publicKey: $k, title: $t) {"
                " fingerprint } }",
                k=public_key,
                t=title or None,
            )
        except api.ApiError as exc:
            self.key_errors = field_errors(exc, {"publicKey", "title"}, default="publicKey")
            return
        self.notice = f"Key {data['addSshKey']['fingerprint']} added."
        yield rx.set_value("field-publicKey", "")
        yield rx.set_value("field-title", "")
        await self._refresh()

    @rx.event
    async def remove_key(self, key_id: str):
        try:
            await self.request("mutation($i: ID!) { removeSshKey(id: $i) { id } }", i=key_id)
        except api.ApiError as exc:
            self.error = exc.message
            return
        self.notice = "Key removed."
        await self._refresh()

    @rx.event
    async def create_token(self, form: dict):
        name = str(form.get("name", "")).strip()
        days_text = str(form.get("expiresInDays", "")).strip()
        errors = {}
        if not name:
            errors["name"] = "Name the token (e.g. the machine that uses it)."
        days: int | None = None
        if days_text:
            try:
                days = int(days_text)
                if days < 1:
                    raise ValueError
            except ValueError:
                errors["expiresInDays"] = "A whole number of days, or empty for no expiry."
        self.token_errors = errors
        if errors:
            return
        try:
            data = await self.request(
                "mutation($n: String!, $d: Int) { createApiToken(name: $n, expiresInDays: $d) {"
                " token } }",
                n=name,
                d=days,
            )
        except api.ApiError as exc:
            self.token_errors = field_errors(exc, {"name", "expiresInDays"}, default="name")
            return
        self.new_token = data["createApiToken"]["token"]
        yield rx.set_value("field-name", "")
        await self._refresh()

    @rx.event
    async def revoke_token(self, token_id: str):
        try:
            await self.request("mutation($i: ID!) { revokeApiToken(id: $i) { id } }", i=token_id)
        except api.ApiError as exc:
            self.error = exc.message
            return
        self.notice = "Token revoked."
        await self._refresh()


def key_row(k: KeyRow) -> rx.Component:
    return rx.flex(
        rx.box(
            rx.text(k.title, weight="bold"),
            rx.code(k.fingerprint, size="1", class_name="fingerprint"),
            rx.text("added ", k.created, size="1", color_scheme="gray"),
        ),
        rx.spacer(),
        rx.button(
            "Remove",
            size="1",
            variant="soft",
            color_scheme="red",
            on_click=Account.remove_key(k.id),
        ),
        spacing="2",
        align="center",
        class_name="ssh-key",
        padding_y="0.25rem",
    )


def token_row(t: TokenRow) -> rx.Component:
    return rx.flex(
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
        rx.spacer(),
        rx.cond(
            t.kind == "API",
            rx.button(
                "Revoke",
                size="1",
                variant="soft",
                color_scheme="red",
                on_click=Account.revoke_token(t.id),
            ),
        ),
        spacing="2",
        align="center",
        class_name="api-token",
        padding_y="0.25rem",
    )


def account_page() -> rx.Component:
    return ui.page(
        rx.flex(
            rx.heading("Account", size="7"),
            rx.text(Session.username, " · ", Session.email, color_scheme="gray"),
            rx.cond(Account.error != "", rx.callout(Account.error, color_scheme="red")),
            rx.cond(
                Account.notice != "",
                rx.callout(Account.notice, color_scheme="green", id="notice"),
            ),
            ui.card(
                rx.heading("SSH keys", size="4"),
                rx.cond(
                    ~Account.loaded,
                    ui.loading(),
                    rx.cond(
                        Account.keys.length() > 0,
                        rx.box(rx.foreach(Account.keys, key_row), id="ssh-keys"),
                        ui.empty("No SSH keys yet: add one to git push."),
                    ),
                ),
                rx.form(
                    rx.flex(
                        ui.field("Title", "title", Account.key_errors, placeholder="laptop"),
                        ui.field(
                            "Public key",
                            "publicKey",
                            Account.key_errors,
                            textarea=True,
                            placeholder="ssh-ed25519 AAAA... you@laptop",
                        ),
                        rx.button("Add key", type="submit", id="add-key"),
                        direction="column",
                        spacing="2",
                    ),
                    on_submit=Account.add_key,
                ),
            ),
            ui.card(
                rx.heading("API tokens", size="4"),
                rx.text(
                    "For the CLI and scripts: send it as `Authorization: Bearer <token>`.",
                    size="2",
                    color_scheme="gray",
                ),
                rx.cond(
                    Account.new_token != "",
                    rx.callout.root(
                        rx.callout.text(
                            "Copy it now, it is shown only once: ",
                            rx.code(Account.new_token, id="new-token"),
                        ),
                        color_scheme="green",
                    ),
                ),
                rx.box(rx.foreach(Account.tokens, token_row), id="api-tokens"),
                rx.form(
                    rx.flex(
                        ui.field("Token name", "name", Account.token_errors, placeholder="ci"),
                        ui.field(
                            "Expires in days (empty: never)",
                            "expiresInDays",
                            Account.token_errors,
                            type="number",
                        ),
                        rx.button("Create token", type="submit", id="create-token"),
                        direction="column",
                        spacing="2",
                    ),
                    on_submit=Account.create_token,
                ),
            ),
            ui.card(
                rx.heading("Session", size="4"),
                rx.text("Logging out revokes this session's token at the API.", size="2"),
                rx.button(
                    "Log out",
                    on_click=Session.logout,
                    color_scheme="red",
                    variant="soft",
                    width="fit-content",
                    id="logout-account",
                ),
            ),
            direction="column",
            spacing="4",
        ),
        max_width="800px",
    )
