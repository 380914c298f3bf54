"""The projects dashboard (live status badges) and the create-project page."""

from __future__ import annotations

import dataclasses

import reflex as rx

from . import api, rules, ui
from .activity import client_activity_section
from .session import Session, connected, field_errors
from .status import shown_status

MAX_WATCHED = 50  # status subscriptions per dashboard (one websocket)


@dataclasses.dataclass
class ProjectRow:
    name: str = ""
    url: str = ""
    status: str = "NONE"
    release: int = 0
    # Every process type scaled to 0: a RUNNING release serves nothing and shows as idle.
    scaled_to_zero: bool = False


class Dashboard(Session):
    projects: list[ProjectRow] = []
    loaded: bool = False
    error: str = ""
    _watch: int = 0

    @rx.event
    async def load(self):
        if not self._token:
            return
        self.error = ""
        try:
            data = await self.request("Projects")
        except api.ApiError as exc:
            self.error = exc.message
            self.loaded = True
            if not self._token:
                yield rx.redirect("/login")
            return
        self.projects = [
            ProjectRow(
                name=p["name"],
                url=p["url"],
                status=shown_status(
                    p["applications"][0]["status"] if p["applications"] else "NONE",
                    p["settings"]["replicas"],
                ),
                release=(p["applications"][0]["number"] if p["applications"] else 0),
                scaled_to_zero=shown_status("RUNNING", p["settings"]["replicas"]) == "IDLE",
            )
            for p in data["projects"]
        ]
        self.loaded = True
        self._watch += 1
        yield Dashboard.watch

    @rx.event(background=True)
    async def watch(self):
        """Each project's applicationStatus on one websocket; badges change as events arrive."""
        async with self:
            gen, token = self._watch, self._token
            names = [p.name for p in self.projects][:MAX_WATCHED]
            client = self.router.session.client_token
            device = self._device()
        if not names:
            return
        try:
            async with api.subscriptions(token, device) as subs:
                for name in names:
                    subs.start(name, "ProjectStatus", p=name)
                while True:
                    events = await subs.next(wait=2)
                    async with self:
                        if (
                            gen != self._watch
                            or self.router.url.path.rstrip("/") != "/projects"
                            or not connected(client)
                        ):
                            return
                        for ev in events:
                            if ev.data is None:
                                continue
                            e = ev.data["applicationStatus"]
                            for row in self.projects:
                                if row.name == e["project"] and e["number"] >= row.release:
                                    row.release = e["number"]
                                    idle = row.scaled_to_zero and e["status"] == "RUNNING"
                                    row.status = "IDLE" if idle else e["status"]
                        self.projects = list(self.projects)
                    if not subs.running():
                        return
        except api.ApiError:
            return  # the badges stay as loaded; a reload reconnects


class NewProject(Session):
    errors: dict[str, str] = {}
    busy: bool = False
    created_name: str = ""
    created_url: str = ""
    created_git_url: str = ""

    @rx.event
    def reset_form(self):
        self.errors = {}
        self.busy = False
        self.created_name = self.created_url = self.created_git_url = ""

    @rx.event
    async def create(self, form: dict):
        name = str(form.get("name", "")).strip()
        problem = rules.project_name(name)
        self.errors = {"name": problem} if problem else {}
        if problem:
            return
        self.busy = True
        yield
        try:
            data = await self.request("CreateProject", n=name)
        except api.ApiError as exc:
            self.busy = False
            self.errors = field_errors(exc, {"name"}, default="name")
            if not self._token:
                yield rx.redirect("/login")
            return
        p = data["createProject"]
        self.created_name, self.created_url, self.created_git_url = p["name"], p["url"], p["gitUrl"]
        self.busy = False


def project_card(row: ProjectRow) -> rx.Component:
    return rx.card(
        rx.flex(
            rx.flex(
                rx.link(
                    rx.text(row.name, weight="bold", size="4"),
                    href="/projects/" + row.name,
                    class_name="project-link",
                ),
                ui.status_badge(row.status),
                rx.cond(row.release > 0, rx.text("#", row.release, color_scheme="gray", size="2")),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            rx.link(row.url, href=row.url, is_external=True, size="2"),
            direction="column",
            spacing="1",
        ),
        width="100%",
        class_name="project-card",
        id="project-" + row.name,
    )


def dashboard_page() -> rx.Component:
    return ui.page(
        rx.flex(
            rx.heading("Projects", as_="h1", size="7"),
            rx.spacer(),
            rx.link(rx.button("New project", id="new-project"), href="/new"),
            align="center",
            margin_bottom="1rem",
        ),
        rx.cond(
            Dashboard.error != "",
            rx.callout(Dashboard.error, color_scheme="red", id="error-form"),
        ),
        rx.cond(
            ~Dashboard.loaded,
            ui.loading("Loading projects..."),
            rx.cond(
                Dashboard.projects.length() > 0,
                rx.flex(
                    rx.foreach(Dashboard.projects, project_card), direction="column", spacing="3"
                ),
                ui.empty(
                    "No projects yet. Create one, then git push to deploy it.",
                    rx.link(rx.button("Create your first project"), href="/new"),
                ),
            ),
        ),
        rx.box(client_activity_section(), margin_top="1.5rem"),
    )


def push_instructions(name: rx.Var, git_url: rx.Var) -> rx.Component:
    return rx.box(
        rx.code_block(
            "cd your-app\ngit remote add paastech " + git_url + "\ngit push paastech main",
            language="bash",
            wrap_long_lines=True,
        ),
        id="push-instructions",
        width="100%",
        overflow_x="auto",
    )


def new_project_page() -> rx.Component:
    return ui.page(
        rx.heading("New project", as_="h1", size="7", margin_bottom="1rem"),
        rx.cond(
            NewProject.created_name != "",
            ui.card(
                rx.heading(
                    "Project ",
                    NewProject.created_name,
                    " created",
                    as_="h2",
                    size="4",
                    id="created",
                ),
                rx.text(
                    "Add an SSH key on your Account page, then push a repository with a "
                    "Dockerfile, a Procfile with requirements.txt, a package.json or an index.html:"
                ),
                rx.text("Git remote: ", rx.code(NewProject.created_git_url, id="git-url")),
                push_instructions(NewProject.created_name, NewProject.created_git_url),
                rx.text("Once deployed it answers at ", rx.code(NewProject.created_url)),
                rx.flex(
                    rx.link(
                        rx.button("Open the project", id="open-project"),
                        href="/projects/" + NewProject.created_name,
                    ),
                    rx.button("Create another", variant="soft", on_click=NewProject.reset_form),
                    spacing="2",
                    wrap="wrap",
                ),
            ),
            ui.card(
                rx.form(
                    rx.flex(
                        ui.field(
                            "Name (lowercase letters, digits and '-'; it becomes the app's "
                            "hostname)",
                            "name",
                            NewProject.errors,
                            placeholder="my-app",
                        ),
                        ui.form_error(NewProject.errors),
                        rx.button(
                            "Create project", type="submit", loading=NewProject.busy, id="create"
                        ),
                        direction="column",
                        spacing="3",
                    ),
                    on_submit=NewProject.create,
                ),
            ),
        ),
        max_width="720px",
    )
