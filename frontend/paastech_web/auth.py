"""Sign up and log in."""

from __future__ import annotations

import reflex as rx

from . import api, rules
from .session import Session, field_errors


class AuthForm(Session):
    errors: dict[str, str] = {}
    busy: bool = False

    @rx.event
    def clear(self):
        self.errors = {}
        self.busy = False

    @rx.event
    async def signup(self, form: dict):
        email = str(form.get("email", "")).strip()
        username = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        errors = {
            k: v
            for k, v in {
                "email": rules.email(email),
                "username": rules.username(username),
                "password": rules.password(password),
            }.items()
            if v
        }
        self.errors = errors
        if errors:
            return
        self.busy = True
        yield
        try:
            data = await api.call(
                "Signup",
                client_address=self.router.session.client_ip,
                device=self._device(),
                email=email,
                username=username,
                password=password,
            )
        except api.ApiError as exc:
            # Every VALIDATION and CONFLICT names its field (the sign-up race's too).
            self.errors = field_errors(exc, {"email", "username", "password"})
            self.busy = False
            return
        self._sign_in(data["signup"])
        self.busy = False
        yield rx.redirect("/projects")

    @rx.event
    async def login(self, form: dict):
        login = str(form.get("login", "")).strip()
        password = str(form.get("password", ""))
        errors = {}
        if not login:
            errors["login"] = "Enter your email or username."
        if not password:
            errors["password"] = "Enter your password."
        self.errors = errors
        self.farewell = ""
        if errors:
            return
        self.busy = True
        yield
        try:
            data = await api.call(
                "Login",
                client_address=self.router.session.client_ip,
                device=self._device(),
                login=login,
                password=password,
            )
        except api.ApiError as exc:
            self.errors = field_errors(exc, {"login", "password"})
            self.busy = False
            return
        self._sign_in(data["login"])
        self.busy = False
        yield rx.redirect("/projects")
