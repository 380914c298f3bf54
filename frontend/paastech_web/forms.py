"""One form helper for every page: busy → request → errors (next to their field) or the notice →
reload. Old errors and notices are cleared at each submit, so a page never shows a stale or
contradictory message, and the feedback shows in the section of the action (`where`).

A state using it declares the str vars `busy` (the pressed button), `notice`, `notice_at` (the
section the outcome belongs to) and `action_error` (or mixes in `Feedback`, which declares them
with the confirmation of ui.confirmed_row); ui.feedback(state, where) shows them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import reflex as rx

from . import api
from .session import field_errors


def clear(state: Any, where: str, errors: str = "") -> None:
    """Before anything else happens in `where`: no old notice, error or field errors."""
    state.notice = state.action_error = ""
    state.notice_at = where
    if errors:
        setattr(state, errors, {})


def refuse(state: Any, where: str, errors: str, problems: dict[str, str]) -> None:
    """A client-side check failed: its messages next to their fields, nothing sent."""
    clear(state, where, errors)
    setattr(state, errors, problems)


async def run(
    state: Any,
    where: str,
    operation: str,
    *,
    done: str | Callable[[dict[str, Any]], str],
    errors: str = "",
    fields: Iterable[str] = (),
    default: str = "",
    busy: str = "",
    clear_fields: Iterable[str] = (),
    reload: Callable[[], Awaitable[Any]] | None = None,
    **variables: Any,
) -> AsyncIterator[Any]:
    """Send `operation` for the form or button in `where`; yields what the event handler yields.

    The API's error goes next to its extensions.field when `errors` names the state's dict of
    field errors (else `default`, else the form), or to `action_error` without one."""
    clear(state, where, errors)
    state.busy = busy or where
    yield  # the button shows busy now
    try:
        data = await state.request(operation, **variables)
    except api.ApiError as exc:
        if errors:
            setattr(state, errors, field_errors(exc, set(fields), default))
        else:
            state.action_error = exc.message
        state.busy = ""
        return
    state.notice = done(data) if callable(done) else done
    state.busy = ""
    for name in clear_fields:
        yield rx.set_value(f"field-{name}", "")
    yield  # the outcome shows now; the reload follows
    if reload is not None:
        with contextlib.suppress(api.ApiError):
            await reload()


class Feedback(rx.State, mixin=True):
    """forms.run()'s vars, and the row action waiting for its confirmation (ui.confirmed_row):
    `confirming` names it as "<kind>-<id>" ("key-3", "session-7"); asking clears the feedback
    of its section, "<kind>s"."""

    busy: str = ""
    notice: str = ""
    notice_at: str = ""
    action_error: str = ""
    confirming: str = ""

    @rx.event
    def ask(self, action: str):
        clear(self, action.split("-", 1)[0] + "s")
        self.confirming = action

    @rx.event
    def cancel(self):
        self.confirming = ""
