"""`python -m backend rotate-key`: re-encrypt every secret at rest under a new master key.

Run it with the platform stopped: a process still holding the old key cannot read what was
re-encrypted. Everything is re-encrypted in one transaction, so a failure changes nothing.
"""

from __future__ import annotations

from tortoise.transactions import in_transaction

from backend import security
from backend.db.models import Addon, Application, EnvVar


async def reencrypt_all(old_master: str, new_master: str) -> int:
    """Decrypt every env var, env snapshot and add-on password with the old key, encrypt with
    the new one.

    Returns how many values were re-encrypted. Raises before writing anything if one value
    cannot be decrypted with the old key."""
    old = security.env_cipher(old_master)
    new = security.env_cipher(new_master)
    count = 0
    async with in_transaction():
        for row in await EnvVar.all():
            row.value_encrypted = new.encrypt(old.decrypt(row.value_encrypted.encode())).decode()
            await row.save(update_fields=["value_encrypted"])
            count += 1
        for app in await Application.exclude(env_snapshot=""):
            app.env_snapshot = new.encrypt(old.decrypt(app.env_snapshot.encode())).decode()
            await app.save(update_fields=["env_snapshot"])
            count += 1
        # Add-on passwords (issue 15): left under the old key, the servers could no longer be
        # ensured, rotated or reached by pg:psql after the rotation.
        for addon in await Addon.all():
            sealed = addon.password_encrypted.encode()
            addon.password_encrypted = new.encrypt(old.decrypt(sealed)).decode()
            await addon.save(update_fields=["password_encrypted"])
            count += 1
    return count
