"""The Reflex app: pages and routes."""

from __future__ import annotations

import reflex as rx

from . import ui
from .account import Account, account_page
from .account_security import Security
from .auth import AuthForm

# ProjectLive is a substate that only ProjectPage.load names (lazily: it builds on ProjectPage):
# imported here so that the compiled page knows it. A state class first imported at run time
# changes the state schema, and Reflex then tells every open page to reload.
from .project_live import ProjectLive  # noqa: F401
from .project_state import ProjectPage
from .project_views import project_page
from .projects import Dashboard, NewProject, dashboard_page, new_project_page
from .session import Session


def signup_page() -> rx.Component:
    return ui.page(
        ui.card(
            rx.heading("Create your account", as_="h1", size="6"),
            rx.form(
                rx.flex(
                    ui.field(
                        "Email",
                        "email",
                        AuthForm.errors,
                        type="email",
                        placeholder="ada@example.com",
                    ),
                    ui.field("Username", "username", AuthForm.errors, placeholder="ada"),
                    ui.field(
                        "Password (10+ characters, not only letters)",
                        "password",
                        AuthForm.errors,
                        type="password",
                    ),
                    ui.form_error(AuthForm.errors),
                    rx.button("Sign up", type="submit", loading=AuthForm.busy, id="submit"),
                    direction="column",
                    spacing="3",
                ),
                on_submit=AuthForm.signup,
            ),
            rx.text("Already have an account? ", rx.link("Log in", href="/login")),
        ),
        max_width="480px",
    )


def login_page() -> rx.Component:
    return ui.page(
        ui.card(
            rx.heading("Log in", as_="h1", size="6"),
            rx.cond(
                Session.farewell != "",
                rx.callout(Session.farewell, color_scheme="gray", id="farewell", role="status"),
            ),
            rx.form(
                rx.flex(
                    ui.field("Email or username", "login", AuthForm.errors),
                    ui.field("Password", "password", AuthForm.errors, type="password"),
                    ui.form_error(AuthForm.errors),
                    rx.button("Log in", type="submit", loading=AuthForm.busy, id="submit"),
                    direction="column",
                    spacing="3",
                ),
                on_submit=AuthForm.login,
            ),
            rx.text("New here? ", rx.link("Create an account", href="/signup")),
        ),
        max_width="480px",
    )


def index() -> rx.Component:
    return ui.page(ui.loading())


def page_not_found() -> rx.Component:
    return ui.page(
        ui.card(
            rx.heading("Page not found", as_="h1", size="6", id="not-found"),
            rx.link("Back to your projects", href="/projects"),
        )
    )


app = rx.App(
    style={"body": {"overflow_x": "hidden"}},
    # The favicon (frontend/assets/favicon.ico): Reflex names none by itself.
    head_components=[rx.el.link(rel="icon", href="/favicon.ico", type="image/x-icon")],
)
app.add_page(index, route="/", on_load=Session.redirect_home, title="PaaSTech")
app.add_page(
    signup_page,
    route="/signup",
    on_load=[Session.redirect_if_signed_in, AuthForm.clear],
    title="Sign up · PaaSTech",
)
app.add_page(
    login_page,
    route="/login",
    on_load=[Session.redirect_if_signed_in, AuthForm.clear],
    title="Log in · PaaSTech",
)
app.add_page(
    dashboard_page,
    route="/projects",
    on_load=[Session.require_login, Dashboard.load],
    title="Projects · PaaSTech",
)
app.add_page(
    new_project_page,
    route="/new",
    on_load=[Session.require_login, NewProject.reset_form],
    title="New project · PaaSTech",
)
app.add_page(
    project_page,
    route="/projects/[pname]",
    on_load=[Session.require_login, ProjectPage.load],
    title="Project · PaaSTech",
)
app.add_page(
    account_page,
    route="/account",
    on_load=[Session.require_login, Account.load, Security.load],
    title="Account · PaaSTech",
)
app.add_page(page_not_found, route="404", title="Not found · PaaSTech")
