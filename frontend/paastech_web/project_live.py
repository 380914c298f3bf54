"""The project page's live updates: one background task (`watch`) opens one websocket to the API
and multiplexes on it `applicationStatus` (always), `buildLogs` of the selected release (until it
finishes) and `runtimeLogs` (while the tail is on). Every event is applied to ProjectPage's vars
under the state's lock, and Reflex sends the changed vars to the browser over its own websocket.
The task ends when the page is left, reloaded or disconnected."""

from __future__ import annotations

import datetime as dt
from typing import Any

import reflex as rx

from . import api
from .project_model import LIVE_STATUSES, project_from_path
from .project_state import ProjectPage
from .session import connected

MAX_RUNTIME_LINES = 300
MAX_LOG_LINES = 5000


def received_at() -> str:
    """The runtime log's timestamp: when the line reached the page (the API sends none), UTC."""
    return dt.datetime.now(dt.UTC).strftime("%H:%M:%S")


class ProjectLive(ProjectPage):
    @rx.event(background=True)
    async def watch(self):
        async with self:
            gen, token, name = self._watch, self._token, self.name
            device = self._device()
            client = self.router.session.client_token
            self.live_error = ""
        log_key: str | None = None
        tail_on = False
        try:
            async with api.subscriptions(token, device) as subs:
                subs.start("status", "ApplicationStatus", p=name)
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
                            subs.start(key, "BuildLogs", p=name, n=want_log)
                        log_key = key
                    if want_tail != tail_on:
                        if want_tail:
                            subs.start("tail", "RuntimeLogs", p=name)
                        else:
                            subs.stop("tail")
                        tail_on = want_tail
                    if refetch:
                        try:
                            data = await api.call("Project", token, device=device, p=name)
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
                    f"{received_at()} {r['processType']}.{r['replica']} v{r['application']}"
                    f" | {r['line']}"
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
        known.failed = status in ("FAILED", "CRASHED")
        if e["live"] and number >= self.live_number:
            # The new live release: the header and the list say so at once.
            self.live_number = number
            self.live_status = self._shown(status)
            for r in self.releases:
                r.live = r.number == number
        elif number == self.live_number:
            # The live release stops being live (superseded, stopped): never show a switch's
            # transient "superseded" on the header; the refetch names what serves now.
            known.live = status in LIVE_STATUSES
            if status == "STOPPED":
                self.live_status = status
        elif not self.live_number and number == newest:
            self.live_status = status  # nothing live yet: the first release's progress
        self.releases = list(self.releases)
        return "finished" if e["finished"] else ""  # the API says which statuses are final
