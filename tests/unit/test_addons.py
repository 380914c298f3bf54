"""Add-ons (issue 15), the parts without a server: the backup schedule (an injected clock), plans,
kinds, names and URLs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from backend.errors import ValidationFailed
from backend.pomegranate import addons as runtime_addons
from backend.services import addon_backups, addons

T0 = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class Backup:  # the fields of AddonBackup the schedule reads
    id: int
    created_at: datetime
    kind: str = addon_backups.SCHEDULED


def test_the_first_scheduled_backup_is_due_an_interval_after_creation() -> None:
    assert not addon_backups.due(None, T0, T0 + DAY - timedelta(seconds=1), DAY)
    assert addon_backups.due(None, T0, T0 + DAY, DAY)


def test_the_next_one_is_due_an_interval_after_the_last() -> None:
    last = T0 + 5 * DAY
    assert not addon_backups.due(last, T0, last + timedelta(hours=23), DAY)
    assert addon_backups.due(last, T0, last + DAY, DAY)
    # A platform that was down for days takes one backup, not one per missed day.
    assert addon_backups.due(last, T0, last + 10 * DAY, DAY)


def test_retention_keeps_the_newest_scheduled_backups_only() -> None:
    scheduled = [Backup(i, T0 + i * DAY) for i in range(1, 10)]
    manual = [Backup(100, T0, "manual"), Backup(101, T0, "final")]
    expired = addon_backups.expired([*manual, *scheduled], retention=3)  # type: ignore[list-item]
    assert sorted(b.id for b in expired) == [1, 2, 3, 4, 5, 6]
    assert addon_backups.expired(scheduled[:2], retention=3) == []  # type: ignore[arg-type]


def test_same_second_backups_are_ordered_by_id() -> None:
    scheduled = [Backup(7, T0), Backup(8, T0)]
    assert [b.id for b in addon_backups.expired(scheduled, retention=1)] == [7]  # type: ignore[arg-type]


def test_plans_come_from_settings_the_first_is_the_default() -> None:
    assert addons.plans()["mini"] == 128
    assert addons.check_plan(None) == "mini"
    assert addons.check_plan("standard") == "standard"
    with pytest.raises(ValidationFailed) as caught:
        addons.check_plan("enormous")
    assert caught.value.field == "plan"


@pytest.mark.parametrize("kind", ["mysql", "", "POSTGRES", "postgres ", "redis\x00"])
def test_unknown_kinds_are_refused(kind: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        addons.check_kind(kind)
    assert caught.value.field == "kind"
    with pytest.raises(ValueError):
        runtime_addons.check_kind(kind)


@pytest.mark.parametrize("name", ["postgresql-amber-1", "redis-teal-99999"])
def test_generated_names_are_valid_everywhere(name: str) -> None:
    assert addons.NAME_RE.fullmatch(name)
    assert runtime_addons.check_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "postgresql", "postgresql-amber-1.evil", "../postgresql-a-1", "mysql-amber-1",
     "postgresql-AMBER-1", "redis-teal-1\n", "x" * 300],
)  # fmt: skip
def test_names_that_could_reach_other_objects_are_refused(name: str) -> None:
    assert not addons.NAME_RE.fullmatch(name)
    with pytest.raises(ValueError):
        runtime_addons.check_name(name)


def test_the_backup_dir_is_per_client_under_the_data_dir(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from backend.settings import get_settings

    monkeypatch.setattr(get_settings(), "data_dir", tmp_path)
    assert addon_backups.backups_dir(7) == tmp_path / "addon-backups" / "7"
