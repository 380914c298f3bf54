"""The project page's Metrics tab (issue 18): memory against its limit, CPU, requests by status
class and latency p50/p95/p99 as Recharts charts (Reflex's built-in rx.recharts), with the
releases marked on the time axis; a range selector (the API's ranges); live points from
`metricsLive` while the tab is open.

A substate of ProjectPage (it reads the project's name and the session's token from it). The tab
loads when mounted; its background task (`watch_metrics`) holds its own subscription and ends
when the tab closes (unmounted), another range or project is chosen, or the page is left."""

from __future__ import annotations

from typing import Any

import reflex as rx

from . import api, ui
from .metrics_model import DEFAULT_RANGE, RANGES, apply_update, markers, rows_from, summary
from .project_model import project_from_path
from .project_state import ProjectPage
from .session import connected

COLORS = {
    "memory": "var(--indigo-9)",
    "limit": "var(--red-9)",
    "cpu": "var(--teal-9)",
    "2xx": "var(--green-9)",
    "3xx": "var(--blue-9)",
    "4xx": "var(--amber-9)",
    "5xx": "var(--red-9)",
    "p50": "var(--green-9)",
    "p95": "var(--amber-9)",
    "p99": "var(--red-9)",
}


class MetricsTab(ProjectPage):
    m_range: str = DEFAULT_RANGE
    m_rows: list[dict[str, Any]] = []
    m_markers: list[dict[str, str]] = []
    m_summary: dict[str, str] = {}
    m_loaded: bool = False
    m_live: bool = False
    m_error: str = ""
    _m_resolution: int = 10
    _m_releases: list[dict[str, Any]] = []
    _m_watch: int = 0

    @rx.event
    async def open_metrics(self):
        """The tab is shown: its points, then live ones (nothing of another project's first)."""
        self.m_rows, self.m_markers, self.m_summary = [], [], {}
        self.m_loaded, self.m_error = False, ""
        yield
        if await self._reload():
            yield MetricsTab.watch_metrics

    @rx.event
    def close_metrics(self):
        self._m_watch += 1  # the live task sees it and ends
        self.m_live = False

    @rx.event
    async def set_range(self, range_: str):
        if range_ not in RANGES or range_ == self.m_range:
            return
        self.m_range = range_
        if await self._reload():
            yield MetricsTab.watch_metrics

    async def _reload(self) -> bool:
        """The range's points, and a new generation (the running live task ends); True when
        they loaded (then live points can follow)."""
        self._m_watch += 1
        await self._load_metrics()
        return self.m_error == ""

    async def _load_metrics(self) -> None:
        try:
            data = await self.request("Metrics", p=self.name, r=self.m_range)
        except api.ApiError as exc:
            self.m_error = f"Metrics unavailable: {exc.message}"
            self.m_loaded = True
            return
        answer = data["metrics"]
        self._m_resolution = answer["resolutionSeconds"]
        self._m_releases = data["project"]["applications"]
        self._show(rows_from(answer, self.m_range))
        self.m_error = ""
        self.m_loaded = True

    def _show(self, rows: list[dict[str, Any]]) -> None:
        self.m_rows = rows
        self.m_markers = markers(rows, self._m_releases)
        self.m_summary = summary(rows)

    def _wanted(self, gen: int, name: str, client: str) -> bool:
        return (
            gen == self._m_watch
            and self.tab == "metrics"
            and project_from_path(self.router.url.path) == name
            and connected(client)
        )

    @rx.event(background=True)
    async def watch_metrics(self):
        async with self:
            gen, token, name = self._m_watch, self._token, self.name
            client = self.router.session.client_token
        try:
            async with api.subscriptions(token) as subs:
                subs.start("metrics", "MetricsLive", p=name)
                async with self:
                    if gen == self._m_watch:
                        self.m_live = True
                while True:
                    events = await subs.next(wait=0.5)
                    async with self:
                        if not self._wanted(gen, name, client):
                            return
                        if self._on_events(events):
                            return
        except api.ApiError as exc:
            async with self:
                if gen == self._m_watch:
                    self.m_error = f"Live metrics stopped: {exc.message}"
        finally:
            async with self:
                if gen == self._m_watch:
                    self.m_live = False

    def _on_events(self, events: list[api.Event]) -> bool:
        """Apply live points; True when the subscription ended."""
        rows = self.m_rows
        for ev in events:
            if ev.error is not None:
                self.m_error = f"Live metrics stopped: {ev.error.message}"
                return True
            if ev.done:
                return True
            if ev.data is not None:
                update = ev.data["metricsLive"]
                rows = apply_update(rows, update, self.m_range, self._m_resolution)
        if events:
            self._show(rows)
        return False


M = MetricsTab


def range_selector() -> rx.Component:
    return rx.flex(
        *[
            rx.button(
                r,
                size="1",
                variant=rx.cond(M.m_range == r, "solid", "soft"),
                on_click=M.set_range(r),
                id=f"range-{r}",
                class_name="metrics-range",
            )
            for r in RANGES
        ],
        spacing="1",
        wrap="wrap",
        id="metrics-ranges",
    )


def _markers() -> rx.Component:
    return rx.foreach(
        M.m_markers,
        lambda m: rx.recharts.reference_line(
            x=m["t"],
            stroke="var(--gray-10)",
            stroke_dasharray="4 3",
            label=m["label"],
            class_name="release-marker",
        ),
    )


def _axes() -> list[rx.Component]:
    return [
        rx.recharts.cartesian_grid(stroke_dasharray="3 3", stroke="var(--gray-a5)"),
        rx.recharts.x_axis(
            data_key="t", min_tick_gap=40, tick_size=4, custom_attrs={"fontSize": 11}
        ),
        rx.recharts.y_axis(width=52, custom_attrs={"fontSize": 11}),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(icon_size=10, custom_attrs={"wrapperStyle": {"fontSize": "12px"}}),
    ]


def _line(key: str, name: str, color: str, **props: Any) -> rx.Component:
    props.setdefault("dot", False)
    return rx.recharts.line(
        data_key=key,
        name=name,
        stroke=color,
        is_animation_active=False,
        connect_nulls=True,
        type_="monotone",
        **props,
    )


def chart(title: str, key: str, value: rx.Var, plot: rx.Component) -> rx.Component:
    return rx.box(
        rx.flex(
            ui.heading(title, 3),
            rx.text(value, size="1", color_scheme="gray", id=f"metric-{key}"),
            justify="between",
            align="baseline",
            wrap="wrap",
            gap="2",
        ),
        plot,
        id=f"chart-{key}",
        class_name="metrics-chart",
        width="100%",
        min_width="0",
    )


def charts() -> rx.Component:
    memory = rx.recharts.composed_chart(
        rx.recharts.area(
            data_key="memory_mb",
            name="memory (MB)",
            stroke=COLORS["memory"],
            fill="var(--indigo-a5)",
            is_animation_active=False,
            connect_nulls=True,
            type_="monotone",
        ),
        _line("limit_mb", "limit (MB)", COLORS["limit"], stroke_dasharray="6 3"),
        *_axes(),
        _markers(),
        data=M.m_rows,
        width="100%",
        height=220,
    )
    cpu = rx.recharts.line_chart(
        _line("cpu", "CPU (cores)", COLORS["cpu"]),
        *_axes(),
        _markers(),
        data=M.m_rows,
        width="100%",
        height=220,
    )
    requests = rx.recharts.bar_chart(
        *[
            rx.recharts.bar(
                data_key=f"req_{k}",
                name=k,
                stack_id="requests",
                fill=COLORS[k],
                is_animation_active=False,
            )
            for k in ("2xx", "3xx", "4xx", "5xx")
        ],
        *_axes(),
        _markers(),
        data=M.m_rows,
        width="100%",
        height=220,
    )
    latency = rx.recharts.line_chart(
        # Dots: latency exists only in intervals with requests, often a single one.
        *[_line(k, k, COLORS[k], dot={"r": 2}) for k in ("p50", "p95", "p99")],
        *_axes(),
        _markers(),
        data=M.m_rows,
        width="100%",
        height=220,
    )
    return rx.grid(
        chart("Memory and its limit", "memory", M.m_summary["memory"], memory),
        chart("CPU", "cpu", M.m_summary["cpu"], cpu),
        chart("Requests by status", "requests", M.m_summary["requests"], requests),
        chart("Latency (ms)", "latency", M.m_summary["latency"], latency),
        columns=rx.breakpoints(initial="1", md="2"),
        spacing="4",
        width="100%",
    )


def metrics_tab() -> rx.Component:
    return ui.card(
        rx.flex(
            ui.heading("Metrics"),
            rx.cond(
                M.m_live,
                rx.badge("live", color_scheme="green", variant="soft", id="metrics-live"),
            ),
            rx.spacer(),
            range_selector(),
            align="center",
            spacing="3",
            wrap="wrap",
        ),
        rx.text(
            "All process types together; dashed lines mark the releases.",
            size="1",
            color_scheme="gray",
        ),
        rx.cond(
            M.m_error != "",
            rx.callout(M.m_error, color_scheme="amber", id="metrics-error"),
        ),
        rx.cond(
            ~M.m_loaded,
            ui.loading("Loading metrics..."),
            rx.cond(
                M.m_rows.length() > 0,
                charts(),
                ui.empty("No points in this range yet: they come every 10 s while the app runs."),
            ),
        ),
        on_mount=M.open_metrics,
        on_unmount=M.close_metrics,
        id="metrics-section",
    )
