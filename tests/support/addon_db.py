"""Unit tests of the add-on services: an in-memory database with one Client, and add-on rows."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from tortoise import Tortoise

from backend import security
from backend.db.models import Addon, AddonKind, Client


@contextlib.asynccontextmanager
async def addon_db(username: str = "owner") -> AsyncIterator[Client]:
    """A fresh SQLite database with the models; yields its one Client."""
    await Tortoise.init(
        db_url="sqlite://:memory:", modules={"models": ["backend.db.models"]}, use_tz=True
    )
    try:
        await Tortoise.generate_schemas()
        yield await Client.create(
            email=f"{username}@example.com", username=username, password_hash="x"
        )
    finally:
        await Tortoise.close_connections()


async def addon_row(
    owner: Client, name: str, kind: AddonKind = AddonKind.REDIS, status: str = "available"
) -> Addon:
    """An add-on row as createAddon leaves it (no server: the tests fake Pomegranate)."""
    return await Addon.create(
        client=owner,
        kind=kind,
        plan="mini",
        name=name,
        status=status,
        version="15" if kind == AddonKind.POSTGRES else "7",
        password_encrypted=security.encrypt("pw"),
    )


def use_pomegranate(monkeypatch: pytest.MonkeyPatch, fake: object) -> None:
    """The add-on services talk to ``fake``; backups are not taken (no server to dump)."""
    from backend.services import addon_backups, addons

    async def no_backup(addon: Addon, *, kind: str = "manual", now: object = None) -> None:
        return None

    monkeypatch.setattr(addons, "_pomegranate", lambda: fake)
    monkeypatch.setattr(addon_backups, "capture", no_backup)
