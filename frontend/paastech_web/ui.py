"""Shared layout and widgets. Every page fits a 390 px wide phone: nothing has a fixed width,
long words break, and logs scroll inside their own box."""

from __future__ import annotations

import reflex as rx

from .session import Session

STATUS_COLORS = {
    "RUNNING": "green",
    "QUEUED": "gray",
    "BUILDING": "amber",
    "DEPLOYING": "blue",
    "SUPERSEDED": "gray",
    "FAILED": "red",
    "CRASHED": "red",
    "STOPPED": "gray",
}


def status_badge(status: rx.Var | str, **props) -> rx.Component:
    """A release status (QUEUED ... CRASHED, or NONE before the first push) as a coloured badge."""
    color = rx.match(
        status,
        *[(k, v) for k, v in STATUS_COLORS.items()],
        "gray",
    )
    label = rx.cond(status == "NONE", "not deployed", status.lower())  # type: ignore[union-attr]
    return rx.badge(label, color_scheme=color, variant="soft", class_name="status-badge", **props)


def nav() -> rx.Component:
    return rx.flex(
        rx.link(rx.heading("PaaSTech", size="5"), href="/projects", underline="none"),
        rx.spacer(),
        rx.cond(
            Session.signed_in,
            rx.flex(
                rx.link("Projects", href="/projects", id="nav-projects"),
                rx.link("New project", href="/new", id="nav-new"),
                rx.link("Account", href="/account", id="nav-account"),
                rx.button(
                    "Log out",
                    on_click=Session.logout,
                    variant="soft",
                    size="1",
                    id="logout",
                ),
                spacing="3",
                align="center",
                wrap="wrap",
            ),
            rx.flex(
                rx.link("Log in", href="/login"),
                rx.link("Sign up", href="/signup"),
                spacing="3",
            ),
        ),
        align="center",
        wrap="wrap",
        spacing="3",
        padding_y="0.75rem",
        border_bottom="1px solid var(--gray-a5)",
        margin_bottom="1.25rem",
    )


def page(*children: rx.Component, max_width: str = "960px") -> rx.Component:
    return rx.box(
        rx.box(
            nav(),
            *children,
            max_width=max_width,
            width="100%",
            margin_x="auto",
            padding_x="1rem",
            padding_bottom="3rem",
        ),
        width="100%",
        overflow_wrap="anywhere",
    )


def field(
    label: str,
    name: str,
    errors: rx.Var,
    *,
    type: str = "text",
    placeholder: str = "",
    textarea: bool = False,
    **props,
) -> rx.Component:
    """A labelled input with its error (from the client-side check or extensions.field) below."""
    control = (
        rx.text_area(name=name, id=f"field-{name}", placeholder=placeholder, rows="4", **props)
        if textarea
        else rx.input(
            name=name, id=f"field-{name}", type=type, placeholder=placeholder, width="100%", **props
        )
    )
    return rx.box(
        rx.text(label, as_="label", size="2", weight="medium", html_for=f"field-{name}"),
        control,
        rx.cond(
            errors.contains(name),  # type: ignore[attr-defined]
            rx.text(errors[name], color="red", size="2", id=f"error-{name}", class_name="error"),
        ),
        width="100%",
    )


def form_error(errors: rx.Var) -> rx.Component:
    return rx.cond(
        errors.contains("form"),  # type: ignore[attr-defined]
        rx.callout(
            errors["form"], color_scheme="red", icon="triangle_alert", id="error-form", size="1"
        ),
    )


def card(*children: rx.Component, **props) -> rx.Component:
    return rx.card(rx.flex(*children, direction="column", spacing="3"), width="100%", **props)


def loading(text: str = "Loading...") -> rx.Component:
    return rx.flex(rx.spinner(), rx.text(text, color_scheme="gray"), spacing="2", align="center")


def empty(text: str, *children: rx.Component) -> rx.Component:
    return rx.flex(
        rx.text(text, color_scheme="gray"),
        *children,
        direction="column",
        spacing="2",
        align="start",
        padding="1rem",
        border="1px dashed var(--gray-a6)",
        border_radius="8px",
        width="100%",
        class_name="empty",
    )


def log_box(lines: rx.Var, box_id: str, empty_text: str) -> rx.Component:
    return rx.box(
        rx.cond(
            lines.length() > 0,  # type: ignore[attr-defined]
            rx.foreach(lines, lambda line: rx.text(line, as_="div", class_name="log-line")),
            rx.text(empty_text, color_scheme="gray"),
        ),
        id=box_id,
        font_family="var(--code-font-family, monospace)",
        font_size="12px",
        white_space="pre-wrap",
        word_break="break-all",
        background="var(--gray-a2)",
        border="1px solid var(--gray-a5)",
        border_radius="6px",
        padding="0.5rem",
        max_height="360px",
        overflow_y="auto",
        width="100%",
    )
