"""Activity feeds (issue 18): what was done, by which token or session, from where (web app, CLI,
git push, API) and when; live through `activityEvents`.

Two feeds with one view and one follow loop: the project page's Activity tab (ProjectActivity, a
substate of ProjectPage) and the Client's whole feed (ClientActivity, `client_activity_section()`,
mountable on any signed-in page: the projects page mounts it). Each loads when mounted and holds
its own subscription in a background task until it is unmounted or its page is left."""

from __future__ import annotations

from typing import Any

import reflex as rx

from . import api, ui
from .activity_model import ActivityRow, activity_row, with_new
from .project_model import project_from_path
from .project_state import ProjectPage
from .session import Session, connected

FIRST = 50


def _clear(state: Any) -> None:
    """Nothing this browser tab showed before (another project, or the Client signed in before a
    logout on this tab) stays on screen while the new records load."""
    state.feed, state.feed_loaded, state.feed_error, state.feed_owner = [], False, "", ""


async def _load(state: Any, project: str | None) -> bool:
    try:
        data = await state.request("Activity", p=project, first=FIRST)
    except api.ApiError as exc:
        state.feed_error = f"Activity unavailable: {exc.message}"
        state.feed_loaded = True
        return False
    state.feed = [activity_row(a) for a in data["activity"]]
    state.feed_owner = state.username
    state.feed_error = ""
    state.feed_loaded = True
    return True


async def _follow(state: Any, project: str | None) -> None:
    """Live records into `state.feed` while the feed that started it is mounted (its unmount
    bumps `_feed_watch`), on the same websocket, and `state._wanted()` holds.

    Not the page's path as seen when it started: a feed mounted by a client-side navigation
    (the redirect after a login) sends its mount event with the previous page's path, so a
    path taken then named the login page and the task ended at once (issue 18: no live feed
    after a logout and another login on the same tab)."""
    async with state:
        gen, token = state._feed_watch, state._token
        client, sid = state.router.session.client_token, state.router.session.session_id
    try:
        async with api.subscriptions(token) as subs:
            subs.start("activity", "ActivityEvents", p=project)
            async with state:
                if gen == state._feed_watch:
                    state.feed_live = True
            while True:
                events = await subs.next(wait=0.5)
                async with state:
                    if not (
                        gen == state._feed_watch and state._wanted() and connected(client, sid)
                    ):
                        return
                    new: list[dict[str, Any]] = []
                    for ev in events:
                        if ev.error is not None:
                            state.feed_error = f"Live activity stopped: {ev.error.message}"
                            return
                        if ev.done:
                            return
                        if ev.data is not None:
                            new.append(ev.data["activityEvents"])
                    if new:
                        state.feed = with_new(state.feed, new)
    except api.ApiError as exc:
        async with state:
            if gen == state._feed_watch:
                state.feed_error = f"Live activity stopped: {exc.message}"
    finally:
        async with state:
            if gen == state._feed_watch:
                state.feed_live = False


class ProjectActivity(ProjectPage):
    feed: list[ActivityRow] = []
    feed_loaded: bool = False
    feed_live: bool = False
    feed_error: str = ""
    # Whose records `feed` holds: the view shows them only to that Client (a logout and another
    # login on the same browser tab keep this state).
    feed_owner: str = ""
    _feed_watch: int = 0

    def _wanted(self) -> bool:
        return self.tab == "activity" and project_from_path(self.router.url.path) == self.name

    @rx.event
    async def open_feed(self):
        self._feed_watch += 1
        _clear(self)
        yield
        if await _load(self, self.name):
            yield ProjectActivity.follow_feed

    @rx.event
    def close_feed(self):
        self._feed_watch += 1
        _clear(self)
        self.feed_live = False

    @rx.event(background=True)
    async def follow_feed(self):
        await _follow(self, self.name)


class ClientActivity(Session):
    feed: list[ActivityRow] = []
    feed_loaded: bool = False
    feed_live: bool = False
    feed_error: str = ""
    # Whose records `feed` holds: the view shows them only to that Client (a logout and another
    # login on the same browser tab keep this state).
    feed_owner: str = ""
    _feed_watch: int = 0

    def _wanted(self) -> bool:
        # Mounted and unmounted with its section: nothing more to check.
        return True

    @rx.event
    async def open_feed(self):
        if not self._token:
            return
        self._feed_watch += 1
        _clear(self)
        yield
        if await _load(self, None):
            yield ClientActivity.follow_feed

    @rx.event
    def close_feed(self):
        self._feed_watch += 1
        _clear(self)
        self.feed_live = False

    @rx.event(background=True)
    async def follow_feed(self):
        await _follow(self, None)


def activity_item(r: ActivityRow, with_project: bool) -> rx.Component:
    return rx.flex(
        rx.badge(r.source_label, color_scheme=r.color, variant="soft", class_name="source"),
        rx.text(
            rx.cond(r.project != "", r.project + ": ", "") if with_project else "",
            r.summary,
            size="2",
            class_name="summary",
        ),
        rx.spacer(),
        rx.text(
            rx.cond(r.token != "", "by " + r.token + " · ", ""),
            r.when,
            size="1",
            color_scheme="gray",
            class_name="who-when",
        ),
        id="activity-" + r.id.to_string(),
        class_name="activity-row",
        custom_attrs={"data-action": r.action},
        spacing="2",
        align="center",
        wrap="wrap",
        padding_y="0.4rem",
        border_bottom="1px solid var(--gray-a4)",
    )


def feed_view(state: type, title: str, with_project: bool, box_id: str) -> rx.Component:
    """A feed of `state` (ProjectActivity or ClientActivity), newest first."""
    return ui.card(
        rx.flex(
            ui.heading(title),
            rx.cond(
                state.feed_live,  # type: ignore[attr-defined]
                rx.badge("live", color_scheme="green", variant="soft", class_name="feed-live"),
            ),
            spacing="3",
            align="center",
        ),
        rx.cond(
            state.feed_error != "",  # type: ignore[attr-defined]
            rx.callout(state.feed_error, color_scheme="amber", class_name="feed-error"),  # type: ignore[attr-defined]
        ),
        rx.cond(
            ~state.feed_loaded | (state.feed_owner != state.username),  # type: ignore[attr-defined]
            ui.loading("Loading activity..."),
            rx.cond(
                state.feed.length() > 0,  # type: ignore[attr-defined]
                rx.box(
                    rx.foreach(state.feed, lambda r: activity_item(r, with_project)),  # type: ignore[attr-defined]
                    max_height="28rem",
                    overflow_y="auto",
                ),
                ui.empty("Nothing yet: deploys, config changes and logins show here."),
            ),
        ),
        on_mount=state.open_feed,  # type: ignore[attr-defined]
        on_unmount=state.close_feed,  # type: ignore[attr-defined]
        id=box_id,
    )


def activity_tab() -> rx.Component:
    """The project page's Activity tab."""
    return feed_view(ProjectActivity, "Activity", False, "activity-section")


def client_activity_section() -> rx.Component:
    """Everything on the Client's account and projects (for the projects or account page)."""
    return feed_view(ClientActivity, "Recent activity", True, "client-activity")
