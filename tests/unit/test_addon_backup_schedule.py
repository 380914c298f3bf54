"""Scheduled add-on backups (issue 15) as the API's reconcile loop runs them
(``addon_backups.run_schedule``), with given times and a fake Pomegranate streaming the dump:
taken once due, written whole under the data dir, the newest ``addon_backup_retention`` scheduled
ones kept (files and rows), manual ones never dropped, and a failed backup leaves nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from backend.db.models import Addon, AddonBackup, AddonKind, Client
from backend.errors import PaasError
from backend.services import addon_backups
from backend.settings import get_settings
from tests.support.addon_db import addon_db, addon_row

DAY = timedelta(hours=24)


class FakePomegranate:
    """BackupAddon: streams ``chunks`` (raising ``fail`` after the first one, when set)."""

    def __init__(self) -> None:
        self.chunks = [b"PGDMP", b"-rows"]
        self.fail: PaasError | None = None
        self.asked: list[str] = []

    async def backup_addon(self, name: str, kind: str) -> AsyncIterator[bytes]:
        self.asked.append(name)
        for n, chunk in enumerate(self.chunks):
            if n == 1 and self.fail is not None:
                raise self.fail
            yield chunk


@pytest.fixture
async def setup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[tuple[Client, Addon, FakePomegranate]]:
    settings = get_settings()
    monkeypatch.setattr(settings, "data_dir", tmp_path)
    monkeypatch.setattr(settings, "addon_backup_interval_hours", 24.0)
    monkeypatch.setattr(settings, "addon_backup_retention", 3)
    fake = FakePomegranate()
    monkeypatch.setattr(addon_backups, "_pomegranate", lambda: fake)
    async with addon_db("scheduler") as owner:
        yield owner, await addon_row(owner, "postgresql-sched-1", AddonKind.POSTGRES), fake


def files(client: Client) -> list[str]:
    directory = addon_backups.backups_dir(client.id)
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def test_a_backup_is_taken_once_due_and_written_whole(
    setup: tuple[Client, Addon, FakePomegranate],
) -> None:
    owner, addon, fake = setup
    created = addon.created_at
    assert await addon_backups.run_schedule(created + DAY - timedelta(minutes=1)) == []
    assert fake.asked == [] and files(owner) == []

    [taken] = await addon_backups.run_schedule(created + DAY)
    assert (taken.kind, taken.size_bytes, taken.created_at) == ("scheduled", 10, created + DAY)
    assert files(owner) == [taken.file_name] and taken.file_name.endswith(".dump")
    assert addon_backups.path_of(taken).read_bytes() == b"PGDMP-rows"
    # The next one is due a day after this one, not after the creation.
    assert await addon_backups.run_schedule(created + DAY + timedelta(hours=23)) == []
    assert len(await addon_backups.run_schedule(created + 2 * DAY)) == 1
    assert fake.asked == [addon.name, addon.name]


async def test_the_newest_scheduled_are_kept_and_manual_ones_never_dropped(
    setup: tuple[Client, Addon, FakePomegranate],
) -> None:
    owner, addon, _ = setup
    manual = await addon_backups.capture(addon, now=addon.created_at + timedelta(hours=1))
    taken = [
        (await addon_backups.run_schedule(addon.created_at + day * DAY))[0] for day in range(1, 6)
    ]
    kept = taken[-3:]  # retention 3
    rows = await AddonBackup.filter(addon=addon).order_by("created_at")
    assert [(b.id, b.kind) for b in rows] == [(manual.id, "manual")] + [
        (b.id, "scheduled") for b in kept
    ]
    assert files(owner) == sorted(b.file_name for b in [manual, *kept])


async def test_a_failed_or_empty_backup_records_nothing_and_leaves_no_file(
    setup: tuple[Client, Addon, FakePomegranate],
) -> None:
    owner, addon, fake = setup
    fake.fail = PaasError("the server went away mid-dump")
    assert await addon_backups.run_schedule(addon.created_at + DAY) == []
    fake.fail, fake.chunks = None, []
    assert await addon_backups.run_schedule(addon.created_at + DAY) == []
    assert await AddonBackup.all().count() == 0 and files(owner) == []
    # Still due: the next round takes it.
    fake.chunks = [b"PGDMP"]
    assert len(await addon_backups.run_schedule(addon.created_at + DAY)) == 1
