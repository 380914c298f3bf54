"""`rotate-key` (backend/keyrotation.py) re-encrypts the add-on passwords (issue 15) with the env
vars: before, they stayed under the old master key, and after a rotation the API could no longer
read them (no server ensured, rotated or reached by pg:psql). A value the old key cannot read
stops the rotation with nothing changed."""

from __future__ import annotations

import pytest
from cryptography.fernet import InvalidToken

from backend import security
from backend.db.models import Addon, AddonKind
from backend.keyrotation import reencrypt_all
from tests.support.addon_db import addon_db, addon_row

OLD, NEW = "old-master-key-0123456789", "new-master-key-9876543210"


async def test_addon_passwords_are_reencrypted_under_the_new_key() -> None:
    async with addon_db("rotator") as owner:
        for name, kind in (
            ("postgresql-rot-1", AddonKind.POSTGRES),
            ("redis-rot-2", AddonKind.REDIS),
        ):
            addon = await addon_row(owner, name, kind)
            addon.password_encrypted = security.env_cipher(OLD).encrypt(name.encode()).decode()
            await addon.save()
        assert await reencrypt_all(OLD, NEW) == 2
        for addon in await Addon.all():
            sealed = addon.password_encrypted.encode()
            assert security.env_cipher(NEW).decrypt(sealed).decode() == addon.name
            with pytest.raises(InvalidToken):
                security.env_cipher(OLD).decrypt(sealed)


async def test_a_password_the_old_key_cannot_read_changes_nothing() -> None:
    async with addon_db("rotator") as owner:
        good = await addon_row(owner, "postgresql-rot-3", AddonKind.POSTGRES)
        good.password_encrypted = security.env_cipher(OLD).encrypt(b"kept").decode()
        await good.save()
        stranger = await addon_row(owner, "redis-rot-4")
        stranger.password_encrypted = (
            security.env_cipher("another-key-000000").encrypt(b"x").decode()
        )
        await stranger.save()
        before = dict(await Addon.all().values_list("name", "password_encrypted"))
        with pytest.raises(InvalidToken):
            await reencrypt_all(OLD, NEW)
        assert dict(await Addon.all().values_list("name", "password_encrypted")) == before
