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
    "IDLE": "gray",  # RUNNING but scaled to 0: serves nothing (status.py)
}

# Log boxes follow new lines unless the user scrolled up (then they stay where the user is).
# Run once per page (on mount): it hooks every .follow-log box, now and later.
FOLLOW_LOGS_JS = """(function () {
  if (window.__paastechFollow) { return; }
  window.__paastechFollow = true;
  const hooked = new WeakSet();
  function hook(box) {
    if (hooked.has(box)) { return; }
    hooked.add(box);
    // At bottom before the new lines came (the height recorded at the last change, against
    // where the user is now): follow; scrolled up: stay. No scroll event is awaited, so a
    // line arriving right after the user scrolled never pulls the box back down.
    let height = box.scrollHeight;
    box.scrollTop = height;
    new MutationObserver(function () {
      const atBottom = height - box.scrollTop - box.clientHeight < 24;
      height = box.scrollHeight;
      if (atBottom) { box.scrollTop = height; }
    }).observe(box, {childList: true, subtree: true, characterData: true});
  }
  function scan() { document.querySelectorAll(".follow-log").forEach(hook); }
  scan();
  new MutationObserver(scan).observe(document.body, {childList: true, subtree: true});
})();"""


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
        # The brand is not a heading: each page has one h1, its own title.
        rx.link(rx.text("PaaSTech", size="5", weight="bold"), href="/projects", underline="none"),
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


def heading(text: rx.Var | str, level: int = 2, **props) -> rx.Component:
    """A heading at its document level (one h1 per page: the page's title)."""
    sizes = {1: "7", 2: "4", 3: "3"}
    props.setdefault("size", sizes.get(level, "3"))
    return rx.heading(text, as_=f"h{level}", **props)


def feedback(state: type, where: rx.Var | str) -> rx.Component:
    """The outcome of the last action of section `where` (forms.run()), shown beside it, as
    #<where>-notice or #<where>-error."""
    here = state.notice_at == where  # type: ignore[attr-defined]
    return rx.fragment(
        rx.cond(
            here & (state.action_error != ""),  # type: ignore[attr-defined]
            rx.callout(
                state.action_error,  # type: ignore[attr-defined]
                color_scheme="red",
                icon="triangle_alert",
                size="1",
                id=where + "-error",
                role="alert",
            ),
        ),
        rx.cond(
            here & (state.notice != ""),  # type: ignore[attr-defined]
            rx.callout(
                state.notice,  # type: ignore[attr-defined]
                color_scheme="green",
                icon="check",
                size="1",
                id=where + "-notice",
                role="status",
            ),
        ),
    )


def confirm(
    shown: rx.Var,
    text: rx.Var | str,
    on_confirm: rx.EventHandler,
    on_cancel: rx.EventHandler,
    confirm_id: rx.Var | str,
    label: str = "Confirm",
) -> rx.Component:
    """An inline confirmation: what the action will change, then Confirm or Cancel."""
    return rx.cond(
        shown,
        rx.callout.root(
            rx.flex(
                rx.text(text, size="2", class_name="confirm-text"),
                rx.flex(
                    # type="button": inside a form (scale), a default submit button would
                    # submit it too.
                    rx.button(
                        label,
                        size="1",
                        color_scheme="red",
                        on_click=on_confirm,
                        id=confirm_id,
                        type="button",
                    ),
                    rx.button(
                        "Cancel",
                        size="1",
                        variant="soft",
                        on_click=on_cancel,
                        class_name="cancel",
                        type="button",
                    ),
                    spacing="2",
                ),
                direction="column",
                spacing="2",
            ),
            color_scheme="orange",
            class_name="confirm",
            width="100%",
        ),
    )


def confirmed_row(
    info: rx.Component,
    *,
    state: type,
    key: rx.Var | str,
    verb: str,
    button: rx.Var | str,
    question: rx.Var | str,
    on_confirm: rx.EventHandler,
    confirm_label: str,
    **props,
) -> rx.Component:
    """A listed item (`info`) with a red action button that asks first (confirm). `state` mixes
    in forms.Feedback; `key` ("<kind>-<id>") names the item, and its buttons are #<verb>-<key>
    and #confirm-<verb>-<key>."""
    return rx.box(
        rx.flex(
            info,
            rx.spacer(),
            rx.button(
                button,
                size="1",
                variant="soft",
                color_scheme="red",
                on_click=state.ask(key),  # type: ignore[attr-defined]
                id=verb + "-" + key,
            ),
            spacing="2",
            align="center",
        ),
        confirm(
            state.confirming == key,  # type: ignore[attr-defined]
            question,
            on_confirm,
            state.cancel,  # type: ignore[attr-defined]
            "confirm-" + verb + "-" + key,
            confirm_label,
        ),
        padding_y="0.25rem",
        **props,
    )


def action_form(
    *fields: rx.Component,
    errors: rx.Var,
    on_submit: rx.EventHandler,
    submit: str,
    submit_id: str,
    busy: rx.Var,
    **button_props,
) -> rx.Component:
    """The fields, the form-wide error and the submit button (busy while its request runs).
    The inputs keep their text on submit: forms.run() empties them once the API accepted it."""
    return rx.form(
        rx.flex(
            *fields,
            form_error(errors),
            rx.button(submit, type="submit", loading=busy, id=submit_id, **button_props),
            direction="column",
            spacing="2",
        ),
        on_submit=on_submit,
        reset_on_submit=False,
    )


def copy_button(value: rx.Var | str, button_id: str) -> rx.Component:
    """Copies `value` to the clipboard; the button then reads "Copied" for two seconds (in the
    browser only: the label is not state, so the copy needs no round trip)."""
    said = (
        f"(function () {{ const l = document.querySelector('#{button_id} .copy-label');"
        " if (!l) { return; } l.textContent = 'Copied'; clearTimeout(l.__reset);"
        " l.__reset = setTimeout(function () { l.textContent = 'Copy'; }, 2000); })()"
    )
    return rx.button(
        rx.icon("copy", size=14),
        rx.el.span("Copy", class_name="copy-label", aria_live="polite"),
        size="1",
        variant="soft",
        on_click=[rx.set_clipboard(value), rx.call_script(said)],
        id=button_id,
        class_name="copy",
        type="button",
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
    """Scrolls inside itself and follows new lines unless scrolled up (FOLLOW_LOGS_JS)."""
    return rx.box(
        rx.cond(
            lines.length() > 0,  # type: ignore[attr-defined]
            rx.foreach(lines, lambda line: rx.text(line, as_="div", class_name="log-line")),
            rx.text(empty_text, color_scheme="gray"),
        ),
        id=box_id,
        class_name="follow-log",
        on_mount=rx.call_script(FOLLOW_LOGS_JS),
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
