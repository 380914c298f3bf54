"""The project page: live status and history, build and runtime logs, env vars, domains, scale
and resources, rollback, restart and delete.

Live data: on load the page starts one background task (`watch`) that opens one websocket to the
API and multiplexes on it `applicationStatus` (always), `buildLogs` of the selected release (until
it finishes) and `runtimeLogs` (while the tail is on). Every event is applied to this state under
its lock, and Reflex sends the changed vars to the browser over its own websocket: the page
changes without a reload. The task ends when the page is left, reloaded or disconnected.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import reflex as rx

from . import api, rules, ui
from .session import Session, connected, field_errors

PROJECT = """query($p: String!) { project(name: $p) { name url gitUrl
  settings { replicas { processType replicas } memoryMb cpu }
  domains { hostname url default verified verification { record value }
    certificate { status notAfter lastError } }
  envVars { key value }
  applications(first: 30) { number status cause commitSha createdAt failureReason image }
  liveApplication { number status } } }"""
PROCESSES = """query($p: String!) { project(name: $p) {
  processes { processType replica application state running restartCount } } }"""
HISTORY = """query($p: String!, $n: Int!) { application(project: $p, number: $n) {
  statusHistory { status } } }"""
STATUS_SUB = """subscription($p: String!) {
  applicationStatus(project: $p) { project number status finished message at } }"""
BUILD_SUB = (
    """subscription($p: String!, $n: Int!) { buildLogs(project: $p, number: $n) { seq line } }"""
)
RUNTIME_SUB = """subscription($p: String!) {
  runtimeLogs(project: $p, tail: 100) { processType replica application line } }"""

MAX_RUNTIME_LINES = 300
MAX_LOG_LINES = 5000
HIDDEN = "••••••••"


@dataclasses.dataclass
class Release:
    number: int = 0
    status: str = ""
    cause: str = ""
    commit: str = ""
    created: str = ""
    failure: str = ""
    live: bool = False
    has_image: bool = False


@dataclasses.dataclass
class EnvRow:
    key: str = ""
    shown: str = HIDDEN
    revealed: bool = False


@dataclasses.dataclass
class DomainRow:
    hostname: str = ""
    url: str = ""
    default: bool = False
    verified: bool = True
    # While unverified: the TXT record that proves control, and its value.
    record: str = ""
    value: str = ""
    certificate: str = ""  # HTTPS certificate status and reason (issue 21); "" while HTTPS is off


@dataclasses.dataclass
class ScaleRow:
    process_type: str = ""
    replicas: int = 0


@dataclasses.dataclass
class ProcRow:
    label: str = ""
    state: str = ""
    running: bool = False


def _release(a: dict[str, Any], live: int) -> Release:
    return Release(
        number=a["number"],
        status=a["status"],
        cause=a["cause"] or "",
        commit=(a.get("commitSha") or "")[:10],
        created=(a.get("createdAt") or "")[:19].replace("T", " "),
        failure=a.get("failureReason") or "",
        live=a["number"] == live,
        has_image=bool(a.get("image")),
    )


def project_from_path(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    return parts[1] if len(parts) >= 2 and parts[0] == "projects" else ""


class ProjectPage(Session):
    name: str = ""
    state: str = "loading"  # loading | ok | missing | error
    load_error: str = ""
    url: str = ""
    git_url: str = ""
    live_number: int = 0
    live_status: str = "NONE"
    releases: list[Release] = []
    # The release whose build log is shown; pinned once the user picks one.
    log_number: int = 0
    log_pinned: bool = False
    log_lines: list[str] = []
    log_done: bool = False
    timeline: list[str] = []
    tail: bool = False
    runtime_lines: list[str] = []
    live_error: str = ""
    env: list[EnvRow] = []
    domains: list[DomainRow] = []
    scale: list[ScaleRow] = []
    memory_mb: int = 0
    cpu: float = 0.0
    processes: list[ProcRow] = []
    notice: str = ""
    action_error: str = ""
    busy: str = ""
    env_errors: dict[str, str] = {}
    domain_errors: dict[str, str] = {}
    scale_errors: dict[str, str] = {}
    resource_errors: dict[str, str] = {}
    delete_errors: dict[str, str] = {}
    _env_values: dict[str, str] = {}
    _log_seq: int = -1
    _watch: int = 0

    # -- loading -----------------------------------------------------------------------------

    @rx.event
    async def load(self):
        name = project_from_path(self.router.url.path)
        if not self._token or not name:
            return
        if name != self.name:
            self._reset_for(name)
        try:
            await self._refresh()
        except api.ApiError as exc:
            if not self._token:
                yield rx.redirect("/login")
                return
            if exc.code == "NOT_FOUND":
                self.state = "missing"
            else:
                self.state, self.load_error = "error", exc.message
            return
        self.state = "ok"
        self._watch += 1
        yield ProjectPage.watch
        yield ProjectPage.load_processes

    def _reset_for(self, name: str) -> None:
        self.name = name
        self.state = "loading"
        self.load_error = self.notice = self.action_error = self.live_error = self.busy = ""
        self.releases, self.env, self.domains, self.scale, self.processes = [], [], [], [], []
        self.log_number, self.log_pinned, self.log_done = 0, False, False
        self.log_lines, self.timeline, self.runtime_lines = [], [], []
        self.tail = False
        self.env_errors, self.domain_errors, self.scale_errors = {}, {}, {}
        self.resource_errors, self.delete_errors = {}, {}
        self._env_values, self._log_seq = {}, -1

    async def _refresh(self) -> None:
        data = await self.request(PROJECT, p=self.name)
        self._apply(data["project"])

    def _apply(self, p: dict[str, Any]) -> None:
        live = p["liveApplication"]
        self.live_number = live["number"] if live else 0
        self.url, self.git_url = p["url"], p["gitUrl"]
        self.releases = [_release(a, self.live_number) for a in p["applications"]]
        newest = self.releases[0] if self.releases else None
        self.live_status = live["status"] if live else (newest.status if newest else "NONE")
        revealed = {e.key for e in self.env if e.revealed}
        self._env_values = {e["key"]: e["value"] for e in p["envVars"]}
        self.env = [
            EnvRow(key=k, shown=v if k in revealed else HIDDEN, revealed=k in revealed)
            for k, v in self._env_values.items()
        ]
        self.domains = [
            DomainRow(
                hostname=d["hostname"],
                url=d["url"],
                default=d["default"],
                verified=d["verified"],
                record=(d["verification"] or {}).get("record", ""),
                value=(d["verification"] or {}).get("value", ""),
                certificate=certificate_text(d["certificate"]),
            )
            for d in p["domains"]
        ]
        s = p["settings"]
        self.scale = [ScaleRow(r["processType"], r["replicas"]) for r in s["replicas"]]
        self.memory_mb, self.cpu = s["memoryMb"], s["cpu"]
        if not self.log_pinned and newest and newest.number != self.log_number:
            self._select(newest.number, [])

    def _select(self, number: int, timeline: list[str]) -> None:
        self.log_number = number
        self.log_lines, self._log_seq, self.log_done = [], -1, False
        self.timeline = timeline

    @rx.event
    async def load_processes(self):
        try:
            data = await self.request(PROCESSES, p=self.name)
        except api.ApiError:
            self.processes = []
            return
        self.processes = [
            ProcRow(
                label=f"{p['processType']}.{p['replica']} (release #{p['application']})",
                state=p["state"],
                running=p["running"],
            )
            for p in data["project"]["processes"]
        ]

    @rx.event
    async def show_log(self, number: int):
        """Show (and stream, while it runs) the build log of a release."""
        self.log_pinned = True
        self._select(number, [])
        try:
            data = await self.request(HISTORY, p=self.name, n=number)
            self.timeline = [h["status"] for h in data["application"]["statusHistory"]]
        except api.ApiError:
            pass

    @rx.event
    def toggle_tail(self):
        self.tail = not self.tail
        if self.tail:
            self.runtime_lines = []

    # -- live updates ------------------------------------------------------------------------

    @rx.event(background=True)
    async def watch(self):
        async with self:
            gen, token, name = self._watch, self._token, self.name
            client = self.router.session.client_token
            self.live_error = ""
        log_key: str | None = None
        tail_on = False
        try:
            async with api.subscriptions(token) as subs:
                subs.start("status", STATUS_SUB, p=name)
                while True:
                    events = await subs.next(wait=0.5)
                    async with self:
                        if (
                            gen != self._watch
                            or project_from_path(self.router.url.path) != name
                            or not connected(client)
                        ):
                            return
                        refetch, log_ended, gone = self._on_events(events, log_key)
                        want_log = 0 if self.log_done else self.log_number
                        want_tail = self.tail
                    if gone:
                        return
                    if log_ended:
                        log_key = None
                    key = f"log:{want_log}" if want_log else None
                    if key != log_key:
                        if log_key:
                            subs.stop(log_key)
                        if key:
                            subs.start(key, BUILD_SUB, p=name, n=want_log)
                        log_key = key
                    if want_tail != tail_on:
                        if want_tail:
                            subs.start("tail", RUNTIME_SUB, p=name)
                        else:
                            subs.stop("tail")
                        tail_on = want_tail
                    if refetch:
                        try:
                            data = await api.call(PROJECT, token, p=name)
                        except api.ApiError:
                            continue
                        async with self:
                            if gen == self._watch:
                                self._apply(data["project"])
                        if refetch == "finished":
                            yield ProjectPage.load_processes
        except api.ApiError as exc:
            async with self:
                if gen == self._watch:
                    self.live_error = f"Live updates stopped: {exc.message}"

    def _on_events(self, events: list[api.Event], log_key: str | None) -> tuple[str, bool, bool]:
        """Apply subscription events; returns (refetch?, build log ended?, project gone?)."""
        refetch, log_ended, gone = "", False, False
        lines: list[str] = []
        runtime: list[str] = []
        for ev in events:
            if ev.key == "status":
                if ev.error is not None:
                    self.live_error = f"Live updates stopped: {ev.error.message}"
                    gone = True
                elif ev.data is not None:
                    refetch = self._on_status(ev.data["applicationStatus"]) or refetch
            elif ev.key == log_key and ev.key == f"log:{self.log_number}":
                if ev.data is not None:
                    line = ev.data["buildLogs"]
                    if line["seq"] > self._log_seq:
                        self._log_seq = line["seq"]
                        lines.append(line["line"])
                elif ev.done or ev.error is not None:
                    self.log_done, log_ended = True, True
            elif ev.key == "tail" and ev.data is not None:
                r = ev.data["runtimeLogs"]
                runtime.append(
                    f"{r['processType']}.{r['replica']} #{r['application']} | {r['line']}"
                )
        if lines:
            self.log_lines = (self.log_lines + lines)[-MAX_LOG_LINES:]
        if runtime and self.tail:
            self.runtime_lines = (self.runtime_lines + runtime)[-MAX_RUNTIME_LINES:]
        return refetch, log_ended, gone

    def _on_status(self, e: dict[str, Any]) -> str:
        number, status = e["number"], e["status"]
        known = next((r for r in self.releases if r.number == number), None)
        newest = max((r.number for r in self.releases), default=0)
        if known is None and number > newest and not self.log_pinned:
            self._select(number, [])
        if number == self.log_number and (not self.timeline or self.timeline[-1] != status):
            self.timeline = [*self.timeline, status]
        if known is None:
            return "new"
        known.status = status
        self.releases = list(self.releases)
        if number == self.live_number or (number == newest and not self.live_number):
            self.live_status = status
        return "finished" if e["finished"] else ""  # the API says which statuses are final

    # -- actions -----------------------------------------------------------------------------

    async def _act(self, what: str, query: str, **variables: Any) -> dict[str, Any] | None:
        self.action_error = self.notice = ""
        try:
            data = await self.request(query, p=self.name, **variables)
        except api.ApiError as exc:
            self.action_error = exc.message
            return None
        self.notice = what
        with contextlib.suppress(api.ApiError):
            await self._refresh()
        return data

    @rx.event
    async def rollback(self, number: int):
        self.busy = f"rollback-{number}"
        yield
        data = await self._act(
            f"Rolling back to release #{number}.",
            "mutation($p: String!, $n: Int) { rollback(project: $p, number: $n) { number } }",
            n=number,
        )
        if data:
            self.notice = f"Release #{data['rollback']['number']} rolls back to release #{number}."
        self.busy = ""

    @rx.event
    async def restart(self):
        self.busy = "restart"
        yield
        data = await self._act(
            "Restarting.", "mutation($p: String!) { restart(project: $p) { number } }"
        )
        if data:
            self.notice = f"Release #{data['restart']['number']} restarts every container."
        self.busy = ""

    @rx.event
    def reveal(self, key: str):
        for row in self.env:
            if row.key == key:
                row.revealed = not row.revealed
                row.shown = self._env_values.get(key, "") if row.revealed else HIDDEN
        self.env = list(self.env)

    @rx.event
    async def set_env(self, form: dict):
        key = str(form.get("key", "")).strip()
        value = str(form.get("value", ""))
        problem = rules.env_key(key)
        self.env_errors = {"key": problem} if problem else {}
        if problem:
            return
        self.busy = "env"
        yield
        self.action_error = self.notice = ""
        try:
            await self.request(
                "mutation($p: String!, $k: String!, $v: String!) {"
                " setEnvVars(project: $p, vars: [{key: $k, value: $v}]) { name } }",
                p=self.name,
                k=key,
                v=value,
            )
        except api.ApiError as exc:
            self.env_errors = field_errors(exc, {"key", "value"}, default="key")
            self.busy = ""
            return
        self.notice = f"{key} is set."
        self.busy = ""
        yield rx.set_value("field-key", "")
        yield rx.set_value("field-value", "")
        with contextlib.suppress(api.ApiError):
            await self._refresh()

    @rx.event
    async def unset_env(self, key: str):
        await self._act(
            f"{key} is removed.",
            "mutation($p: String!, $k: [String!]!) {"
            " unsetEnvVars(project: $p, keys: $k) { name } }",
            k=[key],
        )

    @rx.event
    async def add_domain(self, form: dict):
        hostname = str(form.get("hostname", "")).strip().lower()
        if "." not in hostname:
            self.domain_errors = {"hostname": "Enter a hostname like app.example.com."}
            return
        self.domain_errors = {}
        self.action_error = self.notice = ""
        try:
            await self.request(
                "mutation($p: String!, $h: String!) {"
                " addDomain(project: $p, hostname: $h) { name } }",
                p=self.name,
                h=hostname,
            )
        except api.ApiError as exc:
            self.domain_errors = field_errors(exc, {"hostname"}, default="hostname")
            return
        self.notice = f"{hostname} is added: verify it to route it to {self.name}."
        yield rx.set_value("field-hostname", "")
        with contextlib.suppress(api.ApiError):
            await self._refresh()

    @rx.event
    async def verify_domain(self, hostname: str):
        await self._act(
            f"{hostname} is verified and routed to {self.name}.",
            "mutation($p: String!, $h: String!) {"
            " verifyDomain(project: $p, hostname: $h) { name } }",
            h=hostname,
        )

    @rx.event
    async def remove_domain(self, hostname: str):
        await self._act(
            f"{hostname} is removed.",
            "mutation($p: String!, $h: String!) {"
            " removeDomain(project: $p, hostname: $h) { name } }",
            h=hostname,
        )

    @rx.event
    async def set_scale(self, form: dict):
        process_type = str(form.get("processType", "")).strip() or "web"
        try:
            replicas = int(str(form.get("replicas", "")).strip())
        except ValueError:
            replicas = -1
        if not 0 <= replicas <= 20:
            self.scale_errors = {"replicas": "Enter a number of replicas from 0 to 20."}
            return
        self.scale_errors = {}
        self.action_error = self.notice = ""
        try:
            await self.request(
                "mutation($p: String!, $t: String!, $r: Int!) {"
                " scale(project: $p, processType: $t, replicas: $r) { name } }",
                p=self.name,
                t=process_type,
                r=replicas,
            )
        except api.ApiError as exc:
            self.scale_errors = field_errors(exc, {"processType", "replicas"}, default="replicas")
            return
        self.notice = f"{process_type} runs {replicas} replica(s)."
        with contextlib.suppress(api.ApiError):
            await self._refresh()

    @rx.event
    async def set_resources(self, form: dict):
        errors: dict[str, str] = {}
        memory: int | None = None
        cpu: float | None = None
        try:
            memory = int(str(form.get("memoryMb", "")).strip())
            if memory < 16:
                errors["memoryMb"] = "At least 16 MB."
        except ValueError:
            errors["memoryMb"] = "Enter a whole number of megabytes."
        try:
            cpu = float(str(form.get("cpu", "")).strip())
            if cpu <= 0:
                errors["cpu"] = "More than 0 CPUs."
        except ValueError:
            errors["cpu"] = "Enter a number of CPUs, like 0.5."
        self.resource_errors = errors
        if errors:
            return
        self.action_error = self.notice = ""
        try:
            await self.request(
                "mutation($p: String!, $m: Int, $c: Float) {"
                " setResources(project: $p, memoryMb: $m, cpu: $c) { name } }",
                p=self.name,
                m=memory,
                c=cpu,
            )
        except api.ApiError as exc:
            self.resource_errors = field_errors(exc, {"memoryMb", "cpu"})
            return
        self.notice = f"Limits set: {memory} MB, {cpu} CPU."
        with contextlib.suppress(api.ApiError):
            await self._refresh()

    @rx.event
    async def delete(self, form: dict):
        typed = str(form.get("confirm", "")).strip()
        if typed != self.name:
            self.delete_errors = {"confirm": f"Type {self.name} to confirm."}
            return
        self.delete_errors = {}
        try:
            await self.request(
                "mutation($p: String!) { deleteProject(name: $p) { name } }", p=self.name
            )
        except api.ApiError as exc:
            self.delete_errors = {"confirm": exc.message}
            return
        self._watch += 1  # stops the live task
        self._reset_for("")
        yield rx.redirect("/projects")


# -- the page ----------------------------------------------------------------------------------


def release_row(r: Release) -> rx.Component:
    return rx.box(
        rx.flex(
            rx.text("#", r.number, weight="bold"),
            ui.status_badge(r.status, id="release-status-" + r.number.to_string()),
            rx.cond(r.live, rx.badge("live", color_scheme="green", variant="solid")),
            rx.text(r.cause, size="2", color_scheme="gray"),
            rx.cond(r.commit != "", rx.code(r.commit, size="1")),
            rx.text(r.created, size="1", color_scheme="gray"),
            rx.spacer(),
            rx.button(
                "Build log",
                size="1",
                variant=rx.cond(ProjectPage.log_number == r.number, "solid", "soft"),
                on_click=ProjectPage.show_log(r.number),
                class_name="show-log",
            ),
            rx.cond(
                ~r.live & r.has_image & (r.number < ProjectPage.live_number),
                rx.button(
                    "Roll back",
                    size="1",
                    variant="outline",
                    color_scheme="orange",
                    on_click=ProjectPage.rollback(r.number),
                    loading=ProjectPage.busy == "rollback-" + r.number.to_string(),
                    id="rollback-" + r.number.to_string(),
                ),
            ),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        rx.cond(r.failure != "", rx.text(r.failure, size="1", color="red")),
        id="release-" + r.number.to_string(),
        class_name="release",
        padding_y="0.5rem",
        border_bottom="1px solid var(--gray-a4)",
    )


def overview() -> rx.Component:
    return ui.card(
        rx.flex(
            rx.heading(ProjectPage.name, size="7", id="project-name"),
            ui.status_badge(ProjectPage.live_status, id="live-status", size="2"),
            rx.cond(
                ProjectPage.live_number > 0,
                rx.text("live: release #", ProjectPage.live_number, color_scheme="gray"),
            ),
            spacing="3",
            align="center",
            wrap="wrap",
        ),
        rx.text("URL: ", rx.link(ProjectPage.url, href=ProjectPage.url, is_external=True)),
        rx.text("Git remote: ", rx.code(ProjectPage.git_url, id="git-url")),
        rx.flex(
            rx.button(
                "Restart",
                on_click=ProjectPage.restart,
                variant="soft",
                loading=ProjectPage.busy == "restart",
                disabled=ProjectPage.live_number == 0,
                id="restart",
            ),
            spacing="2",
            wrap="wrap",
        ),
        rx.cond(
            ProjectPage.processes.length() > 0,
            rx.flex(
                rx.foreach(
                    ProjectPage.processes,
                    lambda p: rx.badge(
                        p.label, " ", p.state, color_scheme=rx.cond(p.running, "green", "red")
                    ),
                ),
                spacing="2",
                wrap="wrap",
            ),
        ),
    )


def releases_section() -> rx.Component:
    return ui.card(
        rx.heading("Releases", size="4"),
        rx.cond(
            ProjectPage.releases.length() > 0,
            rx.box(rx.foreach(ProjectPage.releases, release_row), id="releases"),
            ui.empty(
                "Nothing deployed yet. Push to the git remote above to create the first release.",
                rx.code_block(
                    "git remote add paastech " + ProjectPage.git_url + "\ngit push paastech main",
                    language="bash",
                    wrap_long_lines=True,
                ),
            ),
        ),
    )


def build_log_section() -> rx.Component:
    return ui.card(
        rx.flex(
            rx.heading("Build log", size="4"),
            rx.cond(
                ProjectPage.log_number > 0,
                rx.text("release #", ProjectPage.log_number, color_scheme="gray"),
            ),
            rx.cond(
                (ProjectPage.log_number > 0) & ~ProjectPage.log_done,
                rx.badge("streaming", color_scheme="blue", id="log-streaming"),
            ),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        rx.cond(
            ProjectPage.timeline.length() > 0,
            rx.text(
                ProjectPage.timeline.join(" → ").lower(),  # type: ignore[attr-defined]
                size="2",
                id="timeline",
            ),
        ),
        ui.log_box(ProjectPage.log_lines, "build-log", "No build output yet."),
    )


def runtime_section() -> rx.Component:
    return ui.card(
        rx.flex(
            rx.heading("Runtime logs", size="4"),
            rx.spacer(),
            rx.button(
                rx.cond(ProjectPage.tail, "Stop tail", "Tail logs"),
                on_click=ProjectPage.toggle_tail,
                size="1",
                variant="soft",
                id="toggle-tail",
            ),
            align="center",
        ),
        rx.cond(
            ProjectPage.tail,
            ui.log_box(ProjectPage.runtime_lines, "runtime-log", "Waiting for output..."),
            rx.text("The last 100 lines of every container, then live output.", size="2"),
        ),
    )


def env_section() -> rx.Component:
    return ui.card(
        rx.heading("Environment variables", size="4"),
        rx.text(
            "Values are hidden; a change makes a new release when the app runs.",
            size="2",
            color_scheme="gray",
        ),
        rx.cond(
            ProjectPage.env.length() > 0,
            rx.box(
                rx.foreach(
                    ProjectPage.env,
                    lambda e: rx.flex(
                        rx.code(e.key, class_name="env-key"),
                        rx.text(e.shown, size="2", class_name="env-value"),
                        rx.spacer(),
                        rx.button(
                            rx.cond(e.revealed, "Hide", "Show"),
                            size="1",
                            variant="ghost",
                            on_click=ProjectPage.reveal(e.key),
                        ),
                        rx.button(
                            "Remove",
                            size="1",
                            variant="soft",
                            color_scheme="red",
                            on_click=ProjectPage.unset_env(e.key),
                        ),
                        spacing="2",
                        align="center",
                        wrap="wrap",
                        padding_y="0.25rem",
                        id="env-" + e.key,
                    ),
                ),
                id="env-list",
            ),
            ui.empty("No environment variables."),
        ),
        rx.form(
            rx.flex(
                rx.box(ui.field("Name", "key", ProjectPage.env_errors, placeholder="GREETING")),
                rx.box(
                    ui.field("Value", "value", ProjectPage.env_errors, placeholder="hello"),
                ),
                rx.button("Set", type="submit", loading=ProjectPage.busy == "env", id="set-env"),
                direction="column",
                spacing="2",
            ),
            on_submit=ProjectPage.set_env,
        ),
    )


def certificate_text(cert: dict[str, Any] | None) -> str:
    """The certificate as one line: its status, expiry, and why there is none when it failed."""
    if not cert:
        return ""
    text = "HTTPS " + cert["status"].lower().replace("_", " ")
    if cert["notAfter"]:
        text += f" until {cert['notAfter'][:10]}"
    if cert["lastError"]:
        text += f": {cert['lastError']}"
    return text


def domains_section() -> rx.Component:
    return ui.card(
        rx.heading("Domains", size="4"),
        rx.foreach(
            ProjectPage.domains,
            lambda d: rx.flex(
                rx.link(d.hostname, href=d.url, is_external=True),
                rx.cond(d.default, rx.badge("default")),
                rx.cond(d.certificate != "", rx.text(d.certificate, size="1", color_scheme="gray")),
                rx.cond(
                    ~d.verified,
                    rx.flex(
                        rx.badge("unverified", color_scheme="orange"),
                        rx.text(
                            "Create the TXT record ",
                            rx.code(d.record),
                            " with the value ",
                            rx.code(d.value),
                            ", then verify.",
                            size="1",
                        ),
                        rx.button(
                            "Verify",
                            size="1",
                            variant="soft",
                            on_click=ProjectPage.verify_domain(d.hostname),
                        ),
                        spacing="2",
                        align="center",
                        wrap="wrap",
                    ),
                ),
                rx.spacer(),
                rx.cond(
                    ~d.default,
                    rx.button(
                        "Remove",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        on_click=ProjectPage.remove_domain(d.hostname),
                    ),
                ),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
        ),
        rx.form(
            rx.flex(
                ui.field(
                    "Add a custom domain",
                    "hostname",
                    ProjectPage.domain_errors,
                    placeholder="app.example.com",
                ),
                rx.button("Add domain", type="submit"),
                direction="column",
                spacing="2",
            ),
            on_submit=ProjectPage.add_domain,
        ),
    )


def scale_section() -> rx.Component:
    return ui.card(
        rx.heading("Scale and resources", size="4"),
        rx.flex(
            rx.foreach(
                ProjectPage.scale,
                lambda s: rx.badge(s.process_type, ": ", s.replicas, " replica(s)"),
            ),
            rx.badge(ProjectPage.memory_mb, " MB"),
            rx.badge(ProjectPage.cpu, " CPU"),
            spacing="2",
            wrap="wrap",
        ),
        rx.form(
            rx.flex(
                ui.field(
                    "Process type",
                    "processType",
                    ProjectPage.scale_errors,
                    placeholder="web",
                    default_value="web",
                ),
                ui.field(
                    "Replicas", "replicas", ProjectPage.scale_errors, type="number", placeholder="1"
                ),
                rx.button("Scale", type="submit"),
                direction="column",
                spacing="2",
            ),
            on_submit=ProjectPage.set_scale,
        ),
        rx.form(
            rx.flex(
                ui.field(
                    "Memory (MB)",
                    "memoryMb",
                    ProjectPage.resource_errors,
                    type="number",
                    placeholder="256",
                ),
                ui.field("CPU", "cpu", ProjectPage.resource_errors, placeholder="0.5"),
                ui.form_error(ProjectPage.resource_errors),
                rx.button("Set limits", type="submit"),
                direction="column",
                spacing="2",
            ),
            on_submit=ProjectPage.set_resources,
        ),
    )


def danger_section() -> rx.Component:
    return ui.card(
        rx.heading("Delete project", size="4", color="red"),
        rx.text(
            "Stops every container and deletes the project, its releases, its images and its "
            "repository. Type the project's name to confirm.",
            size="2",
        ),
        rx.form(
            rx.flex(
                ui.field("Project name", "confirm", ProjectPage.delete_errors),
                rx.button("Delete project", type="submit", color_scheme="red", id="delete"),
                direction="column",
                spacing="2",
            ),
            on_submit=ProjectPage.delete,
        ),
    )


def not_found() -> rx.Component:
    return ui.card(
        rx.heading("Project not found", size="6", id="not-found"),
        rx.text("There is no project of yours with this name."),
        rx.link("Back to your projects", href="/projects"),
    )


def project_page() -> rx.Component:
    # Their own modules (substates of ProjectPage), imported here: they import this one.
    from .addons import addons_section
    from .volumes import volumes_section

    return ui.page(
        rx.match(
            ProjectPage.state,
            ("loading", ui.loading("Loading the project...")),
            ("missing", not_found()),
            ("error", rx.callout(ProjectPage.load_error, color_scheme="red", id="error-form")),
            rx.flex(
                rx.cond(
                    ProjectPage.action_error != "",
                    rx.callout(ProjectPage.action_error, color_scheme="red", id="action-error"),
                ),
                rx.cond(
                    ProjectPage.notice != "",
                    rx.callout(ProjectPage.notice, color_scheme="green", id="notice"),
                ),
                rx.cond(
                    ProjectPage.live_error != "",
                    rx.callout(ProjectPage.live_error, color_scheme="amber", id="live-error"),
                ),
                overview(),
                releases_section(),
                build_log_section(),
                runtime_section(),
                env_section(),
                domains_section(),
                scale_section(),
                addons_section(),
                volumes_section(),
                danger_section(),
                direction="column",
                spacing="4",
            ),
        ),
    )
