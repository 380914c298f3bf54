"""Backups of add-ons (issue 15): files under data_dir/addon-backups/<client id>/.

PostgreSQL backups are ``pg_dump -Fc`` archives (restored with pg_restore), Redis ones RDB
snapshots. Pomegranate streams the file out of the server's container; the API writes it to a
temporary name and renames it once complete, so a listed backup is always whole. A backup
belongs to its Client: another Client's backup id is NOT_FOUND, for restore and download alike.

The schedule (``due``/``expired``) is pure and takes the time as an argument; the API's periodic
reconcile loop calls ``run_schedule`` with the current time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backend.db.models import Addon, AddonBackup, AddonKind, Client
from backend.errors import NotFound, PaasError, ValidationFailed
from backend.rpc.pomegranate_client import PomegranateClient
from backend.services import activity, addon_status
from backend.settings import get_settings

log = logging.getLogger(__name__)

SUFFIX = {AddonKind.POSTGRES: ".dump", AddonKind.REDIS: ".rdb"}
SCHEDULED = "scheduled"
MANUAL = "manual"
FINAL = "final"


def backups_dir(client_id: int) -> Path:
    return get_settings().data_dir / "addon-backups" / str(int(client_id))


def path_of(backup: AddonBackup) -> Path:
    return backups_dir(backup.client_id) / backup.file_name


def _pomegranate() -> PomegranateClient:
    from backend.services.applications.deployer import get_deployer

    return get_deployer().pomegranate


async def capture(addon: Addon, *, kind: str = MANUAL, now: datetime | None = None) -> AddonBackup:
    """Take a backup of ``addon`` now and record it."""
    now = now or datetime.now(UTC)
    directory = backups_dir(addon.client_id)
    directory.mkdir(parents=True, exist_ok=True)
    file_name = f"{addon.name}-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}{SUFFIX[addon.kind]}"
    final = directory / file_name
    partial = directory / f".partial-{file_name}"
    size = 0
    try:
        with partial.open("wb") as fh:
            async for chunk in _pomegranate().backup_addon(addon.name, addon.kind.value):
                fh.write(chunk)
                size += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        if size == 0:
            raise PaasError(f"the backup of {addon.name} came back empty")
        partial.rename(final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    backup = await AddonBackup.create(
        client_id=addon.client_id,
        addon=addon,
        addon_name=addon.name,
        addon_kind=addon.kind,
        file_name=file_name,
        size_bytes=size,
        kind=kind,
        # The time the schedule (or the caller) took it at: the file's name and the next due
        # time both read it.
        created_at=now,
    )
    if kind == MANUAL:  # scheduled and final backups are not someone's action
        await activity.record(
            addon.client_id,
            "addon.backup",
            addon=addon.name,
            backup=backup.id,
        )
    return backup


async def list_backups(addon: Addon) -> list[AddonBackup]:
    return await AddonBackup.filter(addon=addon).order_by("-created_at", "-id")


async def list_client_backups(client: Client) -> list[AddonBackup]:
    return await AddonBackup.filter(client=client).order_by("-created_at", "-id")


async def get_owned_backup(client: Client, backup_id: int) -> AddonBackup:
    backup = await AddonBackup.get_or_none(id=backup_id, client=client)
    if backup is None or not path_of(backup).is_file():
        raise NotFound(f"backup {backup_id} not found", field="backupId")
    return backup


async def restore(client: Client, name: str, backup_id: int) -> AddonBackup:
    """Replace the add-on's data with the backup's (the add-on's own, or another add-on of the
    same Client and kind, e.g. the final backup of a removed one)."""
    from backend.services.addons import ensure_server, get_owned_addon, server_lock

    addon = await get_owned_addon(client, name)
    backup = await get_owned_backup(client, backup_id)
    if backup.addon_kind != addon.kind:
        raise ValidationFailed(
            f"backup {backup.id} is a {backup.addon_kind.value} backup; {addon.name} is "
            f"{addon.kind.value}",
            field="backupId",
        )
    async with server_lock(addon):  # its restart is not a stopped server to bring back
        await addon_status.record(addon, "restoring", f"from backup {backup.id}")
        try:
            await _pomegranate().restore_addon(addon.name, addon.kind.value, path_of(backup))
        finally:
            # Available again, or down with the engine's state after a failed restore.
            try:
                await ensure_server(addon)
            except PaasError as exc:
                log.warning("add-on %s not ensured after a restore: %s", addon.name, exc.message)
    await activity.record(client, "addon.restore", addon=addon.name, backup=backup.id)
    return backup


async def delete_files_of(client_id: int) -> None:
    """Remove the Client's backup files (the Client's account is being deleted)."""
    import shutil

    shutil.rmtree(backups_dir(client_id), ignore_errors=True)


# ---------------------------------------------------------------------------------- schedule


def due(last: datetime | None, created_at: datetime, now: datetime, interval: timedelta) -> bool:
    """Whether a scheduled backup is due: ``interval`` after the last scheduled one, or after
    the add-on was created when it has none yet."""
    return now - (last or created_at) >= interval


def expired(scheduled: Sequence[AddonBackup], retention: int) -> list[AddonBackup]:
    """The scheduled backups beyond the newest ``retention`` (manual and final ones are kept)."""
    newest_first = sorted(
        (b for b in scheduled if b.kind == SCHEDULED),
        key=lambda b: (b.created_at, b.id),
        reverse=True,
    )
    return newest_first[retention:]


async def run_schedule(now: datetime) -> list[AddonBackup]:
    """Take the scheduled backups that are due at ``now`` and drop the expired ones."""
    s = get_settings()
    interval = timedelta(hours=s.addon_backup_interval_hours)
    taken: list[AddonBackup] = []
    for addon in await Addon.all():
        scheduled = await AddonBackup.filter(addon=addon, kind=SCHEDULED).order_by("-created_at")
        last = scheduled[0].created_at if scheduled else None
        if not due(last, addon.created_at, now, interval):
            continue
        try:
            backup = await capture(addon, kind=SCHEDULED, now=now)
        except PaasError as exc:
            log.warning("scheduled backup of %s failed: %s", addon.name, exc.message)
            continue
        taken.append(backup)
        for old in expired([backup, *scheduled], s.addon_backup_retention):
            with contextlib.suppress(FileNotFoundError):
                path_of(old).unlink()
            await old.delete()
    return taken
