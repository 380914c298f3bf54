"""Client-side input checks, so that forms answer before anything is sent.

A deliberate, minimal duplicate of a few rules of the platform's backend/validation.py (the web
app is a separate client of the public API and does not import `backend`). The API checks
everything again and its VALIDATION errors are shown next to the field they name.
"""

from __future__ import annotations

import re

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{2,31}$")
PROJECT_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PASSWORD_MIN = 10


def email(value: str) -> str:
    return "" if EMAIL_RE.fullmatch(value.strip()) else "Enter an email like name@example.com."


def username(value: str) -> str:
    if USERNAME_RE.fullmatch(value):
        return ""
    return "3-32 characters: lowercase letters, digits, '-' or '_'."


def password(value: str) -> str:
    if len(value) < PASSWORD_MIN:
        return f"At least {PASSWORD_MIN} characters."
    if value.isalpha() or value.isdigit():
        return "Mix letters with digits or symbols."
    return ""


def project_name(value: str) -> str:
    if PROJECT_NAME_RE.fullmatch(value) and "--" not in value:
        return ""
    return (
        "2-40 characters: lowercase letters, digits and '-', starting with a letter "
        "and not ending with '-'."
    )


def env_key(value: str) -> str:
    if not value:
        return "Enter a name."
    if len(value) > 128 or not ENV_KEY_RE.fullmatch(value):
        return "Use letters, digits and '_', not starting with a digit."
    return ""
