"""The project page's Add-ons section (issue 15): the project's PostgreSQL and Redis add-ons with
their status and health, the config var they set (value hidden until revealed), create, destroy
(the add-on's name typed to confirm), attach to another project of the Client and detach
(confirmed), rotate its credentials (confirmed), and backups: capture, restore (confirmed),
download. Every action goes through forms.run(); its outcome shows on the add-on's card.

A substate of ProjectPage (it reads the project's name and the session's token from it); it loads
when the section is mounted. The download goes through this app's backend: the API token stays
server side and the file reaches the browser as a download of its bytes."""

from __future__ import annotations

import dataclasses
from typing import Any

import reflex as rx

from . import api, forms, ui
from .project_model import HIDDEN
from .project_state import ProjectPage

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
    # The Client's other projects, attachable; and the attached ones, detachable (not this one).
    attachable: list[str] = dataclasses.field(default_factory=list)
    detachable: list[str] = dataclasses.field(default_factory=list)
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


def addon_row(
    a: dict[str, Any],
    project: str,
    values: dict[str, str],
    shown: set[str],
    projects: list[str] | None = None,
) -> AddonRow:
    var = next((t["configVar"] for t in a["attachments"] if t["project"] == project), "")
    server = a.get("server") or {}
    revealed = a["name"] in shown
    attached = [t["project"] for t in a["attachments"]]
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
        projects=", ".join(attached),
        attachable=[p for p in projects or [] if p not in attached],
        detachable=[p for p in attached if p != project],
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
    create_errors: dict[str, str] = {}
    _values: dict[str, str] = {}
    _revealed: list[str] = []

    @rx.event
    async def load_addons(self):
        project = self.name
        try:
            data = await self.request("Addons", p=project)
        except api.ApiError as exc:
            self.create_errors = {"form": exc.message}
            return
        p = data["project"]
        self._values = {e["key"]: e["value"] for e in p["envVars"]}
        shown = set(self._revealed)
        names = [x["name"] for x in data["projects"]]
        self.addons = [addon_row(a, project, self._values, shown, names) for a in p["addons"]]
        self.addons_loaded = True

    async def _reload(self) -> None:
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
        if kind not in KINDS:
            forms.refuse(self, "addons", "create_errors", {"kind": "Choose postgres or redis."})
            return
        async for step in forms.run(
            self,
            "addons",
            "CreateAddon",
            done=lambda d: (
                f"{d['createAddon']['name']} is running; "
                f"{d['createAddon']['configVar']} is set on {self.name}."
            ),
            errors="create_errors",
            fields={"kind", "plan"},
            busy="create",
            clear_fields=("plan",),
            reload=self._reload,
            p=self.name,
            k=kind,
            plan=str(form.get("plan", "")).strip() or None,
        ):
            yield step

    @rx.event
    async def destroy_addon(self, form: dict):
        name = str(form.get("addon", ""))
        typed = str(form.get("confirm", "")).strip()
        if typed != name:
            forms.clear(self, f"addon-{name}")
            self.action_error = f"Type {name} to confirm."
            return
        async for step in forms.run(
            self,
            "addons",
            "RemoveAddon",
            done=f"{name} is destroyed; its final backup is kept.",
            busy=f"destroy-{name}",
            reload=self._reload,
            n=name,
            c=typed,
        ):
            yield step

    @rx.event
    async def capture(self, name: str):
        async for step in forms.run(
            self,
            f"addon-{name}",
            "BackupAddon",
            done=lambda d: (
                f"Backup {d['backupAddon']['id']} of {name} captured "
                f"({human_size(d['backupAddon']['sizeBytes'])})."
            ),
            busy=f"capture-{name}",
            reload=self._reload,
            n=name,
        ):
            yield step

    @rx.event
    def ask_addon(self, action: str, name: str, target: str = ""):
        """Ask before `action` (restore, rotate, detach) of add-on `name` (on `target`)."""
        forms.clear(self, f"addon-{name}")
        self.confirming = f"{action}:{name}:{target}"

    @rx.event
    async def restore(self, name: str, backup_id: str):
        if not self._confirmed(f"restore:{name}:{backup_id}"):
            return  # only a confirmed restore runs
        async for step in forms.run(
            self,
            f"addon-{name}",
            "RestoreAddon",
            done=f"{name} is restored from backup {backup_id}.",
            busy=f"restore-{name}",
            reload=self._reload,
            n=name,
            b=backup_id,
        ):
            yield step

    @rx.event
    async def attach(self, form: dict):
        name = str(form.get("addon", ""))
        target = str(form.get("project", "")).strip()
        if not target:
            forms.clear(self, f"addon-{name}")
            self.action_error = "Choose one of your other projects."
            return
        async for step in forms.run(
            self,
            f"addon-{name}",
            "AttachAddon",
            done=lambda d: (
                f"{name} is attached to {target}: "
                + next(
                    (
                        t["configVar"]
                        for t in d["attachAddon"]["addon"]["attachments"]
                        if t["project"] == target
                    ),
                    "its config var",
                )
                + f" is set on {target} (a new release when it runs)."
            ),
            busy=f"attach-{name}",
            reload=self._reload,
            n=name,
            p=target,
        ):
            yield step

    @rx.event
    async def detach(self, name: str, target: str):
        if not self._confirmed(f"detach:{name}:{target}"):
            return
        async for step in forms.run(
            self,
            f"addon-{name}",
            "DetachAddon",
            done=f"{name} is detached from {target}: its config var is unset there.",
            busy=f"detach-{name}",
            reload=self._reload,
            n=name,
            p=target,
        ):
            yield step

    @rx.event
    async def rotate(self, name: str):
        if not self._confirmed(f"rotate:{name}:"):
            return
        async for step in forms.run(
            self,
            f"addon-{name}",
            "RotateAddonCredentials",
            done=f"{name} has a new password; every attached project gets a new release.",
            busy=f"rotate-{name}",
            reload=self._reload,
            n=name,
        ):
            yield step

    @rx.event
    async def download(self, name: str, backup_id: str):
        forms.clear(self, f"addon-{name}")
        if not (backup_id.isascii() and backup_id.isdigit()):
            # The id comes from the browser: only ever a path segment of digits.
            self.action_error = "Unknown backup."
            return
        try:
            content, filename = await api.download(
                f"/addon-backups/{backup_id}", self._token, MAX_DOWNLOAD_BYTES
            )
        except api.ApiError as exc:
            message = exc.message
            if exc.code == "TOO_LARGE":
                message = f"Backup {backup_id} is too large here: use pg:backups:download."
            self.action_error = message
            return
        self.notice = f"Backup {backup_id} downloaded ({human_size(len(content))})."
        yield rx.download(data=content, filename=filename or f"{name}-{backup_id}.backup")


# -- the view ----------------------------------------------------------------------------------

A = AddonsSection


def _error(errors: rx.Var, key: rx.Var | str, element_id: rx.Var | str) -> rx.Component:
    return rx.cond(
        errors.contains(key),  # type: ignore[attr-defined]
        rx.text(errors[key], color="red", size="2", id=element_id, class_name="error"),
    )


def backup_row(a: AddonRow, b: BackupRow) -> rx.Component:
    return rx.box(
        rx.flex(
            rx.text(b.created, size="2"),
            rx.badge(b.kind),
            rx.text(b.size, size="2", color_scheme="gray"),
            rx.spacer(),
            rx.button(
                "Download",
                size="1",
                variant="ghost",
                on_click=A.download(a.name, b.id),
                id="download-" + b.id,
            ),
            rx.button(
                "Restore",
                size="1",
                variant="soft",
                color_scheme="orange",
                on_click=A.ask_addon("restore", a.name, b.id),
                id="restore-" + b.id,
            ),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        ui.confirm(
            A.confirming == "restore:" + a.name + ":" + b.id,
            "Restore? " + a.name + "'s data is replaced by this backup's (" + b.created + ").",
            A.restore(a.name, b.id),
            A.cancel,
            "confirm-restore-" + b.id,
            "Confirm restore",
        ),
        class_name="backup",
        id="backup-" + b.id,
        padding_y="0.25rem",
    )


def sharing(a: AddonRow) -> rx.Component:
    """Attach to another project of the Client (a shared database), detach (confirmed)."""
    return rx.flex(
        rx.text(
            "Attached to: ", a.projects, size="2", color_scheme="gray", id="attached-" + a.name
        ),
        rx.foreach(
            a.detachable,
            lambda target: rx.flex(
                rx.button(
                    "Detach from " + target,
                    size="1",
                    variant="soft",
                    color_scheme="orange",
                    on_click=A.ask_addon("detach", a.name, target),
                    id="detach-" + a.name + "-" + target,
                ),
                ui.confirm(
                    A.confirming == "detach:" + a.name + ":" + target,
                    "Detach "
                    + a.name
                    + " from "
                    + target
                    + "? Its config var is unset on "
                    + target
                    + " (a new release there when it runs); the data stays.",
                    A.detach(a.name, target),
                    A.cancel,
                    "confirm-detach-" + a.name + "-" + target,
                    "Detach",
                ),
                direction="column",
                spacing="2",
            ),
        ),
        rx.cond(
            a.attachable.length() > 0,  # type: ignore[attr-defined]
            rx.form(
                rx.flex(
                    rx.el.select(
                        rx.foreach(a.attachable, lambda p: rx.el.option(p, value=p)),
                        name="project",
                        id="attach-project-" + a.name,
                        style={"padding": "0.25rem", "max_width": "100%"},
                    ),
                    rx.el.input(type="hidden", name="addon", value=a.name),
                    rx.button(
                        "Attach",
                        type="submit",
                        size="1",
                        variant="soft",
                        loading=A.busy == "attach-" + a.name,
                        id="attach-" + a.name,
                    ),
                    spacing="2",
                    align="center",
                    wrap="wrap",
                ),
                on_submit=A.attach,
                reset_on_submit=False,
            ),
        ),
        direction="column",
        spacing="2",
    )


def addon_card(a: AddonRow) -> rx.Component:
    where = "addon-" + a.name
    return rx.box(
        rx.flex(
            ui.heading(a.name, 3),
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
                on_click=A.reveal_addon(a.name),
                id="reveal-" + a.name,
            ),
            rx.button(
                "Rotate credentials",
                size="1",
                variant="soft",
                color_scheme="orange",
                on_click=A.ask_addon("rotate", a.name, ""),
                loading=A.busy == "rotate-" + a.name,
                id="rotate-" + a.name,
            ),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        ui.confirm(
            A.confirming == "rotate:" + a.name + ":",
            "Rotate " + a.name + "'s credentials? It gets a new password; the old one stops "
            "working and every attached project (" + a.projects + ") gets a new release with "
            "the new " + a.config_var + ".",
            A.rotate(a.name),
            A.cancel,
            "confirm-rotate-" + a.name,
            "Rotate",
        ),
        sharing(a),
        rx.flex(
            rx.text("Backups", weight="medium", size="2"),
            rx.button(
                "Capture backup",
                size="1",
                variant="soft",
                on_click=A.capture(a.name),
                loading=A.busy == "capture-" + a.name,
                id="capture-" + a.name,
            ),
            spacing="2",
            align="center",
        ),
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
                    loading=A.busy == "destroy-" + a.name,
                    id="destroy-" + a.name,
                ),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            on_submit=A.destroy_addon,
            reset_on_submit=False,
        ),
        ui.feedback(A, where),
        id="addon-" + a.name,
        class_name="addon",
        padding_y="0.75rem",
        border_bottom="1px solid var(--gray-a4)",
    )


def addons_section() -> rx.Component:
    return ui.card(
        rx.flex(
            ui.heading("Add-ons"),
            rx.spacer(),
            rx.button(
                "Refresh", size="1", variant="soft", on_click=A.load_addons, id="refresh-addons"
            ),
            align="center",
        ),
        rx.text(
            "Managed PostgreSQL and Redis on the project's network; the URL is set as a config "
            "var (a new release when the app runs).",
            size="2",
            color_scheme="gray",
        ),
        ui.feedback(A, "addons"),
        rx.cond(
            A.addons.length() > 0,
            rx.box(rx.foreach(A.addons, addon_card), id="addons"),
            rx.cond(
                A.addons_loaded,
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
                    _error(A.create_errors, "kind", "error-kind"),
                ),
                ui.field(
                    "Plan (optional: the smallest)", "plan", A.create_errors, placeholder="mini"
                ),
                _error(A.create_errors, "form", "error-addon-form"),
                rx.button(
                    "Create add-on",
                    type="submit",
                    loading=A.busy == "create",
                    id="create-addon",
                ),
                direction="column",
                spacing="2",
            ),
            on_submit=A.create_addon,
            reset_on_submit=False,
        ),
        on_mount=A.load_addons,
        id="addons-section",
    )
