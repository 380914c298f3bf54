"""The project page's state: what it shows (releases, env, domains, scale, settings, processes) and
its actions. Live subscriptions are in project_live.py, the views in project_views.py; every
GraphQL operation is a file in operations/ and every form goes through forms.run()."""

from __future__ import annotations

from typing import Any

import reflex as rx

from . import api, forms, rules
from .project_model import (
    HIDDEN,
    TABS,
    DomainRow,
    EnvRow,
    ProcRow,
    Release,
    ScaleRow,
    certificate_text,
    project_from_path,
    release_row,
    whole,
)
from .session import Session
from .status import IDLE, serves_nothing


class ProjectPage(Session):
    name: str = ""
    state: str = "loading"  # loading | ok | missing | error
    load_error: str = ""
    tab: str = "overview"
    url: str = ""
    git_url: str = ""
    default_host: str = ""
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
    log_filter: str = ""
    live_error: str = ""
    env: list[EnvRow] = []
    domains: list[DomainRow] = []
    scale: list[ScaleRow] = []
    scaled_to_zero: bool = False
    memory_mb: int = 0
    cpu: float = 0.0
    port: str = ""
    health_path: str = ""
    deploy_branch: str = ""
    processes: list[ProcRow] = []
    # forms.run()'s feedback: the pressed button, the outcome and the section it belongs to.
    busy: str = ""
    notice: str = ""
    notice_at: str = ""
    action_error: str = ""
    # The action waiting for its confirmation ("restart", "stop", "rollback-4", "scale-web").
    confirming: str = ""
    env_errors: dict[str, str] = {}
    domain_errors: dict[str, str] = {}
    scale_errors: dict[str, str] = {}
    resource_errors: dict[str, str] = {}
    settings_errors: dict[str, str] = {}
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
        from .project_live import ProjectLive  # it builds on this state

        yield ProjectLive.watch
        yield ProjectPage.load_processes

    def _reset_for(self, name: str) -> None:
        self.name = name
        self.state, self.tab = "loading", "overview"
        self.load_error = self.notice = self.notice_at = self.action_error = ""
        self.live_error = self.busy = self.confirming = self.log_filter = ""
        self.releases, self.env, self.domains, self.scale, self.processes = [], [], [], [], []
        self.log_number, self.log_pinned, self.log_done = 0, False, False
        self.log_lines, self.timeline, self.runtime_lines = [], [], []
        self.tail = False
        self.env_errors, self.domain_errors, self.scale_errors = {}, {}, {}
        self.resource_errors, self.settings_errors, self.delete_errors = {}, {}, {}
        self._env_values, self._log_seq = {}, -1

    async def _refresh(self) -> None:
        data = await self.request("Project", p=self.name)
        self._apply(data["project"])

    def _apply(self, p: dict[str, Any]) -> None:
        live = p["liveApplication"]
        self.live_number = live["number"] if live else 0
        self.url, self.git_url = p["url"], p["gitUrl"]
        s = p["settings"]
        self.scaled_to_zero = serves_nothing(s["replicas"])
        live_keys = next(
            (a["envKeys"] for a in p["applications"] if a["number"] == self.live_number), []
        )
        self.releases = [release_row(a, self.live_number, live_keys) for a in p["applications"]]
        newest = self.releases[0] if self.releases else None
        # The header names the live release; before there is one, the newest (building...).
        self.live_status = self._shown(live["status"] if live else "NONE")
        if not live and newest and newest.status != "SUPERSEDED":
            self.live_status = newest.status
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
        self.default_host = next((d.hostname for d in self.domains if d.default), "")
        self.scale = [ScaleRow(r["processType"], r["replicas"]) for r in s["replicas"]]
        self.memory_mb, self.cpu = s["memoryMb"], s["cpu"]
        self.port = str(s["port"]) if s["port"] else ""
        self.health_path, self.deploy_branch = s["healthCheckPath"], s["deployBranch"]
        if not self.log_pinned and newest and newest.number != self.log_number:
            self._select(newest.number, [])

    def _shown(self, status: str) -> str:
        """A RUNNING release scaled to 0 serves nothing: it reads idle."""
        return IDLE if status == "RUNNING" and self.scaled_to_zero else status

    def _select(self, number: int, timeline: list[str]) -> None:
        self.log_number = number
        self.log_lines, self._log_seq, self.log_done = [], -1, False
        self.timeline = timeline

    @rx.var
    def shown_runtime(self) -> list[str]:
        needle = self.log_filter.strip().lower()
        return (
            [x for x in self.runtime_lines if needle in x.lower()] if needle else self.runtime_lines
        )

    @rx.var
    def shown_build(self) -> list[str]:
        needle = self.log_filter.strip().lower()
        return [x for x in self.log_lines if needle in x.lower()] if needle else self.log_lines

    @rx.event
    async def load_processes(self):
        try:
            data = await self.request("Processes", p=self.name)
        except api.ApiError:
            self.processes = []
            return
        self.processes = [
            ProcRow(
                label=f"{p['processType']}.{p['replica']} (v{p['application']})",
                state=p["state"],
                running=p["running"],
            )
            for p in data["project"]["processes"]
        ]

    @rx.event
    async def show_log(self, number: int):
        """Show (and stream, while it runs) the build log of a release."""
        self.log_pinned = True
        self.tab = "logs"
        self._select(number, [])
        try:
            data = await self.request("StatusHistory", p=self.name, n=number)
            self.timeline = [h["status"] for h in data["application"]["statusHistory"]]
        except api.ApiError:
            pass

    @rx.event
    def set_tab(self, tab: str):
        self.tab = tab if tab in TABS else "overview"
        self.confirming = ""

    @rx.event
    def toggle_tail(self):
        self.tail = not self.tail
        if self.tail:
            self.runtime_lines = []

    @rx.event
    def set_log_filter(self, text: str):
        self.log_filter = text[:200]

    @rx.event
    def download_log(self, which: str):
        lines = self.runtime_lines if which == "runtime" else self.log_lines
        suffix = "runtime" if which == "runtime" else f"v{self.log_number}-build"
        return rx.download(data="\n".join(lines) + "\n", filename=f"{self.name}-{suffix}.log")

    # -- confirmations -----------------------------------------------------------------------

    @rx.event
    def ask(self, action: str):
        """Show the confirmation of `action` (it says what will change) instead of running it."""
        forms.clear(self, action)
        self.confirming = action

    @rx.event
    def cancel(self):
        self.confirming = ""

    def _confirmed(self, action: str) -> bool:
        ok = self.confirming == action
        self.confirming = ""
        return ok

    # -- actions -----------------------------------------------------------------------------

    @rx.event
    async def rollback(self, number: int):
        if not self._confirmed(f"rollback-{number}"):
            return
        async for step in forms.run(
            self,
            "releases",
            "Rollback",
            done=lambda d: f"v{d['rollback']['number']} rolls back to v{number}.",
            busy=f"rollback-{number}",
            reload=self._refresh,
            p=self.name,
            n=number,
        ):
            yield step

    async def _lifecycle(self, action: str, operation: str, done: str):
        if not self._confirmed(action):
            return
        async for step in forms.run(
            self,
            "overview",
            operation,
            done=lambda d: done.format(n=d[operation.lower()]["number"]),
            busy=action,
            reload=self._refresh,
            p=self.name,
        ):
            yield step

    @rx.event
    async def restart(self):
        async for step in self._lifecycle(
            "restart", "Restart", "v{n} replaces every container, one at a time."
        ):
            yield step

    @rx.event
    async def stop(self):
        async for step in self._lifecycle(
            "stop", "Stop", "v{n} is stopped: nothing runs until you start it."
        ):
            yield step

    @rx.event
    async def start(self):
        async for step in forms.run(
            self,
            "overview",
            "Start",
            done=lambda d: f"v{d['start']['number']} starts the stopped release again.",
            reload=self._refresh,
            p=self.name,
        ):
            yield step

    @rx.event
    async def redeploy(self):
        async for step in forms.run(
            self,
            "overview",
            "Deploy",
            done=lambda d: f"v{d['deploy']['number']} builds and releases the current source.",
            reload=self._refresh,
            p=self.name,
        ):
            yield step

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
        problem = rules.env_key(key)
        if problem:
            forms.refuse(self, "env", "env_errors", {"key": problem})
            return
        async for step in forms.run(
            self,
            "env",
            "SetEnvVar",
            done=f"{key} is set.",
            errors="env_errors",
            fields={"key", "value"},
            default="key",
            clear_fields=("key", "value"),
            reload=self._refresh,
            p=self.name,
            k=key,
            v=str(form.get("value", "")),
        ):
            yield step

    @rx.event
    async def unset_env(self, key: str):
        async for step in forms.run(
            self,
            "env",
            "UnsetEnvVar",
            done=f"{key} is removed.",
            reload=self._refresh,
            p=self.name,
            k=[key],
        ):
            yield step

    @rx.event
    async def add_domain(self, form: dict):
        hostname = str(form.get("hostname", "")).strip().lower()
        if "." not in hostname:
            problem = {"hostname": "Enter a hostname like app.example.com."}
            forms.refuse(self, "domains", "domain_errors", problem)
            return
        async for step in forms.run(
            self,
            "domains",
            "AddDomain",
            done=f"{hostname} is added: verify it to route it to {self.name}.",
            errors="domain_errors",
            fields={"hostname"},
            default="hostname",
            clear_fields=("hostname",),
            reload=self._refresh,
            p=self.name,
            h=hostname,
        ):
            yield step

    @rx.event
    async def verify_domain(self, hostname: str):
        async for step in forms.run(
            self,
            "domains",
            "VerifyDomain",
            done=f"{hostname} is verified and routed to {self.name}.",
            reload=self._refresh,
            p=self.name,
            h=hostname,
        ):
            yield step

    @rx.event
    async def remove_domain(self, hostname: str):
        async for step in forms.run(
            self,
            "domains",
            "RemoveDomain",
            done=f"{hostname} is removed.",
            reload=self._refresh,
            p=self.name,
            h=hostname,
        ):
            yield step

    @rx.event
    async def set_scale(self, form: dict):
        process_type = str(form.get("processType", "")).strip() or "web"
        replicas = whole(form.get("replicas", ""))
        if replicas is None or not 0 <= replicas <= 20:
            problem = {"replicas": "Enter a number of replicas from 0 to 20."}
            forms.refuse(self, "scale", "scale_errors", problem)
            return
        action = f"scale-{process_type}"
        # Scaling to 0 takes the process down: it runs only once confirmed.
        if replicas == 0 and not self._confirmed(action):
            forms.clear(self, "scale", "scale_errors")
            self.confirming = action
            return
        self.confirming = ""
        async for step in forms.run(
            self,
            "scale",
            "Scale",
            done=(
                f"{process_type} is scaled to 0: stopped until you scale it up."
                if replicas == 0
                else f"{process_type} runs {replicas} replica(s)."
            ),
            errors="scale_errors",
            fields={"processType", "replicas"},
            default="replicas",
            reload=self._refresh,
            p=self.name,
            t=process_type,
            r=replicas,
        ):
            yield step

    @rx.event
    async def set_resources(self, form: dict):
        # The limits' range is the API's (its VALIDATION error shows next to the field): the
        # page only checks that they are numbers, so there is no second copy of the minimum.
        problems: dict[str, str] = {}
        memory = whole(form.get("memoryMb", ""))
        if memory is None:
            problems["memoryMb"] = "Enter a whole number of megabytes."
        cpu: float | None = None
        try:
            cpu = float(str(form.get("cpu", "")).strip())
        except ValueError:
            problems["cpu"] = "Enter a number of CPUs, like 0.5."
        if problems:
            forms.refuse(self, "resources", "resource_errors", problems)
            return
        async for step in forms.run(
            self,
            "resources",
            "SetResources",
            done=f"Limits set: {memory} MB, {cpu} CPU.",
            errors="resource_errors",
            fields={"memoryMb", "cpu"},
            default="memoryMb",
            reload=self._refresh,
            p=self.name,
            m=memory,
            c=cpu,
        ):
            yield step

    @rx.event
    async def update_settings(self, form: dict):
        port_text = str(form.get("port", "")).strip()
        port = whole(port_text) if port_text else None
        if port_text and port is None:
            forms.refuse(self, "settings", "settings_errors", {"port": "Enter a port number."})
            return
        async for step in forms.run(
            self,
            "settings",
            "UpdateSettings",
            done="Settings saved.",
            errors="settings_errors",
            fields={"port", "healthCheckPath", "deployBranch"},
            reload=self._refresh,
            p=self.name,
            port=port,
            h=str(form.get("healthCheckPath", "")).strip() or None,
            b=str(form.get("deployBranch", "")).strip() or None,
        ):
            yield step

    @rx.event
    async def delete(self, form: dict):
        typed = str(form.get("confirm", "")).strip()
        if typed != self.name:
            forms.refuse(
                self, "delete", "delete_errors", {"confirm": f"Type {self.name} to confirm."}
            )
            return
        forms.clear(self, "delete", "delete_errors")
        try:
            await self.request("DeleteProject", p=self.name)
        except api.ApiError as exc:
            self.delete_errors = {"confirm": exc.message}
            return
        self._watch += 1  # stops the live task
        self._reset_for("")
        yield rx.redirect("/projects")
