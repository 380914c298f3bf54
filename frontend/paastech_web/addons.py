"""The project page's Add-ons section (issue 15): the project's PostgreSQL and Redis add-ons with
their status and health, the config var they set (value hidden until revealed), create, destroy
(the add-on's name typed to confirm), and backups: capture, restore (confirmed), download.

A substate of ProjectPage (it reads the project's name and the session's token from it); it loads
when the section is mounted. The download goes through this app's backend: the API token stays
server side and the file reaches the browser as a download of its bytes."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import reflex as rx

from . import api, ui
from .project import HIDDEN, ProjectPage
from .session import field_errors

ADDONS = """query($p: String!) { project(name: $p) { envVars { key value }
  addons { name kind plan status version memoryMb
    attachments { project configVar }
    server { state running health restartCount }
    backups { id createdAt sizeBytes kind } } } }"""
CREATE = """mutation($p: String!, $k: String!, $plan: String) {
  createAddon(project: $p, kind: $k, plan: $plan) { name configVar } }"""
REMOVE = """mutation($n: String!, $c: String!) { removeAddon(name: $n, confirm: $c) { name } }"""
CAPTURE = """mutation($n: String!) { backupAddon(name: $n) { id sizeBytes } }"""
RESTORE = """mutation($n: String!, $b: ID!) { restoreAddon(name: $n, backupId: $b) { id } }"""

KINDS = ("redis", "postgres")
# The file comes to the browser whole, as a data URL: bigger backups are for the CLI.
MAX_DOWNLOAD_BYTES = 25 * 1024 * 1024


@dataclasses.dataclass
class BackupRow:
    id: str = ""
    created: str = ""
    size: str = ""
    kind: str = ""


@dataclasses.dataclass
class AddonRow:
    name: str = ""
    kind: str = ""
    plan: str = ""
    version: str = ""
    status: str = ""
    health: str = ""
    config_var: str = ""
    shown: str = HIDDEN
    revealed: bool = False
    projects: str = ""
    backups: list[BackupRow] = dataclasses.field(default_factory=list)


def human_size(n: float) -> str:
    """Bytes as B, KB, MB or GB (1024-based), one decimal past bytes; "unknown" when negative."""
    if n < 0:
        return "unknown"
    size = float(n)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def addon_row(a: dict[str, Any], project: str, values: dict[str, str], shown: set[str]) -> AddonRow:
    var = next((t["configVar"] for t in a["attachments"] if t["project"] == project), "")
    server = a.get("server") or {}
    revealed = a["name"] in shown
    return AddonRow(
        name=a["name"],
        kind=str(a["kind"]).lower(),
        plan=f"{a['plan']} ({a['memoryMb']} MB)",
        version=a["version"],
        status=a["status"],
        health=server.get("health") or ("unknown" if not server else ""),
        config_var=var,
        shown=values.get(var, "") if revealed else HIDDEN,
        revealed=revealed,
        projects=", ".join(t["project"] for t in a["attachments"]),
        backups=[
            BackupRow(
                id=str(b["id"]),
                created=(b["createdAt"] or "")[:19].replace("T", " "),
                size=human_size(b["sizeBytes"]),
                kind=b["kind"],
            )
            for b in a["backups"]
        ],
    )


class AddonsSection(ProjectPage):
    addons: list[AddonRow] = []
    addons_loaded: bool = False
    addons_notice: str = ""
    addons_busy: str = ""
    create_errors: dict[str, str] = {}
    # Keyed by add-on name: the error of its destroy form, of its backup actions.
    destroy_errors: dict[str, str] = {}
    backup_errors: dict[str, str] = {}
    # The backup whose restore waits for confirmation: "<add-on>/<backup id>".
    confirm_restore: str = ""
    _values: dict[str, str] = {}
    _revealed: list[str] = []

    @rx.event
    async def load_addons(self):
        project = self.name
        try:
            data = await self.request(ADDONS, p=project)
        except api.ApiError as exc:
            self.create_errors = {"form": exc.message}
            return
        p = data["project"]
        self._values = {e["key"]: e["value"] for e in p["envVars"]}
        shown = set(self._revealed)
        self.addons = [addon_row(a, project, self._values, shown) for a in p["addons"]]
        self.addons_loaded = True

    async def _reload(self) -> None:
        with contextlib.suppress(api.ApiError):
            await self.load_addons()
            # The config var changed too: the env vars section (ProjectPage's) shows it.
            await self._refresh()

    @rx.event
    def reveal_addon(self, name: str):
        shown = set(self._revealed) ^ {name}
        self._revealed = sorted(shown)
        for row in self.addons:
            row.revealed = row.name in shown
            row.shown = self._values.get(row.config_var, "") if row.revealed else HIDDEN
        self.addons = list(self.addons)

    @rx.event
    async def create_addon(self, form: dict):
        kind = str(form.get("kind", "")).strip().lower()
        plan = str(form.get("plan", "")).strip() or None
        self.create_errors = {} if kind in KINDS else {"kind": "Choose postgres or redis."}
        if self.create_errors:
            return
        self.addons_busy, self.addons_notice = "create", ""
        yield
        try:
            data = await self.request(CREATE, p=self.name, k=kind, plan=plan)
        except api.ApiError as exc:
            self.create_errors = field_errors(exc, {"kind", "plan"})
            self.addons_busy = ""
            return
        made = data["createAddon"]
        self.addons_notice = (
            f"{made['name']} is running; {made['configVar']} is set on {self.name}."
        )
        self.addons_busy = ""
        yield rx.set_value("field-plan", "")
        await self._reload()

    @rx.event
    async def destroy_addon(self, form: dict):
        name = str(form.get("addon", ""))
        typed = str(form.get("confirm", "")).strip()
        if typed != name:
            self.destroy_errors = {name: f"Type {name} to confirm."}
            return
        self.destroy_errors, self.addons_notice = {}, ""
        self.addons_busy = f"destroy-{name}"
        yield
        try:
            await self.request(REMOVE, n=name, c=typed)
        except api.ApiError as exc:
            self.destroy_errors = {name: exc.message}
            self.addons_busy = ""
            return
        self.addons_notice = f"{name} is destroyed; its final backup is kept."
        self.addons_busy = ""
        yield  # the outcome shows now; the lists follow
        await self._reload()

    @rx.event
    async def capture(self, name: str):
        self.backup_errors, self.addons_notice = {}, ""
        self.addons_busy = f"capture-{name}"
        yield
        try:
            data = await self.request(CAPTURE, n=name)
        except api.ApiError as exc:
            self.backup_errors = {name: exc.message}
            self.addons_busy = ""
            return
        b = data["backupAddon"]
        self.addons_notice = f"Backup {b['id']} of {name} captured ({human_size(b['sizeBytes'])})."
        self.addons_busy = ""
        yield  # the outcome shows now; the lists follow
        await self._reload()

    @rx.event
    def ask_restore(self, name: str, backup_id: str):
        self.backup_errors = {}
        self.confirm_restore = f"{name}/{backup_id}"

    @rx.event
    def cancel_restore(self):
        self.confirm_restore = ""

    @rx.event
    async def restore(self, name: str, backup_id: str):
        if self.confirm_restore != f"{name}/{backup_id}":
            return  # only a confirmed restore runs
        self.confirm_restore, self.backup_errors, self.addons_notice = "", {}, ""
        self.addons_busy = f"restore-{name}"
        yield
        try:
            await self.request(RESTORE, n=name, b=backup_id)
        except api.ApiError as exc:
            self.backup_errors = {name: exc.message}
            self.addons_busy = ""
            return
        self.addons_notice = f"{name} is restored from backup {backup_id}."
        self.addons_busy = ""
        yield  # the outcome shows now; the lists follow
        await self._reload()

    @rx.event
    async def download(self, name: str, backup_id: str):
        self.backup_errors = {}
        if not (
            backup_id.isascii() and backup_id.isdigit()
        ):  # the id comes from the browser: only ever a path segment
            self.backup_errors = {name: "Unknown backup."}
            return
        try:
            content, filename = await api.download(
                f"/addon-backups/{backup_id}", self._token, MAX_DOWNLOAD_BYTES
            )
        except api.ApiError as exc:
            message = exc.message
            if exc.code == "TOO_LARGE":
                message = f"Backup {backup_id} is too large here: use pg:backups:download."
            self.backup_errors = {name: message}
            return
        self.addons_notice = f"Backup {backup_id} downloaded ({human_size(len(content))})."
        yield rx.download(data=content, filename=filename or f"{name}-{backup_id}.backup")


# -- the view ----------------------------------------------------------------------------------


def _error(errors: rx.Var, key: rx.Var | str, element_id: rx.Var | str) -> rx.Component:
    return rx.cond(
        errors.contains(key),  # type: ignore[attr-defined]
        rx.text(errors[key], color="red", size="2", id=element_id, class_name="error"),
    )


def backup_row(a: AddonRow, b: BackupRow) -> rx.Component:
    key = a.name + "/" + b.id
    return rx.flex(
        rx.text(b.created, size="2"),
        rx.badge(b.kind),
        rx.text(b.size, size="2", color_scheme="gray"),
        rx.spacer(),
        rx.button(
            "Download",
            size="1",
            variant="ghost",
            on_click=AddonsSection.download(a.name, b.id),
            id="download-" + b.id,
        ),
        rx.cond(
            AddonsSection.confirm_restore == key,
            rx.flex(
                rx.text("Replace ", a.name, "'s data with this backup?", size="2", color="red"),
                rx.button(
                    "Confirm restore",
                    size="1",
                    color_scheme="red",
                    on_click=AddonsSection.restore(a.name, b.id),
                    id="confirm-restore-" + b.id,
                ),
                rx.button(
                    "Cancel", size="1", variant="soft", on_click=AddonsSection.cancel_restore
                ),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            rx.button(
                "Restore",
                size="1",
                variant="soft",
                color_scheme="orange",
                on_click=AddonsSection.ask_restore(a.name, b.id),
                id="restore-" + b.id,
            ),
        ),
        spacing="2",
        align="center",
        wrap="wrap",
        class_name="backup",
        id="backup-" + b.id,
        padding_y="0.25rem",
    )


def addon_card(a: AddonRow) -> rx.Component:
    return rx.box(
        rx.flex(
            rx.heading(a.name, size="3"),
            rx.badge(a.kind),
            rx.text(a.plan, " · ", a.version, size="2", color_scheme="gray"),
            rx.badge(
                a.status,
                color_scheme=rx.cond(a.status == "available", "green", "orange"),
                class_name="addon-status",
            ),
            rx.cond(a.health != "", rx.badge("health: ", a.health, variant="outline")),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        rx.flex(
            rx.code(a.config_var, class_name="addon-var"),
            rx.text(a.shown, size="2", class_name="addon-value", word_break="break-all"),
            rx.button(
                rx.cond(a.revealed, "Hide", "Reveal"),
                size="1",
                variant="ghost",
                on_click=AddonsSection.reveal_addon(a.name),
                id="reveal-" + a.name,
            ),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        rx.text("Attached to: ", a.projects, size="2", color_scheme="gray"),
        rx.flex(
            rx.text("Backups", weight="medium", size="2"),
            rx.button(
                "Capture backup",
                size="1",
                variant="soft",
                on_click=AddonsSection.capture(a.name),
                loading=AddonsSection.addons_busy == "capture-" + a.name,
                id="capture-" + a.name,
            ),
            spacing="2",
            align="center",
        ),
        _error(AddonsSection.backup_errors, a.name, "backup-error-" + a.name),
        rx.box(
            rx.cond(
                a.backups.length() > 0,  # type: ignore[attr-defined]
                rx.foreach(a.backups, lambda b: backup_row(a, b)),
                rx.text("No backups yet.", size="2", color_scheme="gray"),
            ),
            id="backups-" + a.name,
        ),
        rx.form(
            rx.flex(
                rx.input(
                    name="confirm",
                    placeholder="type " + a.name + " to destroy it",
                    id="destroy-confirm-" + a.name,
                    size="1",
                ),
                rx.el.input(type="hidden", name="addon", value=a.name),
                rx.button(
                    "Destroy",
                    type="submit",
                    size="1",
                    color_scheme="red",
                    loading=AddonsSection.addons_busy == "destroy-" + a.name,
                    id="destroy-" + a.name,
                ),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            on_submit=AddonsSection.destroy_addon,
            reset_on_submit=False,
        ),
        _error(AddonsSection.destroy_errors, a.name, "destroy-error-" + a.name),
        id="addon-" + a.name,
        class_name="addon",
        padding_y="0.75rem",
        border_bottom="1px solid var(--gray-a4)",
    )


def addons_section() -> rx.Component:
    return ui.card(
        rx.flex(
            rx.heading("Add-ons", size="4"),
            rx.spacer(),
            rx.button(
                "Refresh",
                size="1",
                variant="soft",
                on_click=AddonsSection.load_addons,
                id="refresh-addons",
            ),
            align="center",
        ),
        rx.text(
            "Managed PostgreSQL and Redis on the project's network; the URL is set as a config "
            "var (a new release when the app runs).",
            size="2",
            color_scheme="gray",
        ),
        rx.cond(
            AddonsSection.addons_notice != "",
            rx.callout(AddonsSection.addons_notice, color_scheme="green", id="addons-notice"),
        ),
        rx.cond(
            AddonsSection.addons.length() > 0,
            rx.box(rx.foreach(AddonsSection.addons, addon_card), id="addons"),
            rx.cond(
                AddonsSection.addons_loaded,
                ui.empty("No add-ons."),
                ui.loading("Loading the add-ons..."),
            ),
        ),
        rx.form(
            rx.flex(
                rx.box(
                    rx.text("Kind", as_="label", size="2", weight="medium", html_for="field-kind"),
                    rx.el.select(
                        *[rx.el.option(k, value=k) for k in KINDS],
                        name="kind",
                        id="field-kind",
                        style={"display": "block", "padding": "0.25rem"},
                    ),
                    _error(AddonsSection.create_errors, "kind", "error-kind"),
                ),
                ui.field(
                    "Plan (optional: the smallest)",
                    "plan",
                    AddonsSection.create_errors,
                    placeholder="mini",
                ),
                _error(AddonsSection.create_errors, "form", "error-addon-form"),
                rx.button(
                    "Create add-on",
                    type="submit",
                    loading=AddonsSection.addons_busy == "create",
                    id="create-addon",
                ),
                direction="column",
                spacing="2",
            ),
            on_submit=AddonsSection.create_addon,
            reset_on_submit=False,
        ),
        on_mount=AddonsSection.load_addons,
        id="addons-section",
    )
