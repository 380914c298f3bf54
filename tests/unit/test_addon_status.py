"""Add-on status history (issue 15): every transition is stored with its time and published on
the add-on's topic; a repeated status is not a transition; the history is capped; a reconcile
that finds the server down records the down time and the way back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from backend.db.models import Addon, AddonStatusChange, Client, Project
from backend.errors import PaasError
from backend.events import EventKind, addon_topic, get_bus
from backend.rpc import pomegranate_types as pt
from backend.services import addon_status, addons
from tests.support.addon_db import addon_db, addon_row, use_pomegranate


def addon_state(*, running: bool, state: str) -> pt.AddonState:
    return pt.AddonState(
        state=state, running=running, health="", projects=(), started_at="", restart_count=0
    )


class FakePomegranate:
    """The server is found stopped; an ensure brings it back unless told to fail."""

    def __init__(self) -> None:
        self.state = addon_state(running=False, state="exited")
        self.comes_back = True
        self.ensures = 0
        self.ensuring = asyncio.Event()
        self.finish_ensure: asyncio.Event | None = None  # set: an ensure waits for it

    async def addon_status(self, name: str, kind: str) -> pt.AddonState:
        return self.state

    async def ensure_addon(self, spec: pt.AddonSpec) -> pt.AddonState:
        self.ensures += 1
        self.ensuring.set()
        if self.finish_ensure is not None:
            await self.finish_ensure.wait()
        if self.comes_back:
            self.state = addon_state(running=True, state="running")
        return self.state

    async def remove_addon(self, name: str, kind: str) -> None:
        return None

    async def addon_volume_sizes(self, names: list[str]) -> dict[str, int]:
        return dict.fromkeys(names, 0)


@pytest.fixture
async def setup(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Client, FakePomegranate]]:
    async with addon_db("stat") as owner:
        fake = FakePomegranate()
        use_pomegranate(monkeypatch, fake)
        yield owner, fake


async def _addon(owner: Client, name: str = "redis-hist-1") -> Addon:
    return await addon_row(owner, name, status="creating")


def _statuses(rows: list[AddonStatusChange]) -> list[tuple[str, str]]:
    return [(r.status, r.message) for r in rows]


async def test_transitions_are_stored_in_order_and_repeats_are_not(
    setup: tuple[Client, FakePomegranate],
) -> None:
    owner, _fake = setup
    addon = await _addon(owner)
    assert await addon_status.record(addon, "creating") is not None
    assert await addon_status.record(addon, "available") is not None
    assert await addon_status.record(addon, "available") is None  # not a transition
    rows = await addon_status.history(addon, 20)
    assert _statuses(rows) == [("creating", ""), ("available", "")]
    assert rows[0].at <= rows[1].at
    assert (await Addon.get(id=addon.id)).status == "available"


async def test_the_reconcile_records_the_down_time_and_the_way_back(
    setup: tuple[Client, FakePomegranate],
) -> None:
    owner, _fake = setup
    addon = await _addon(owner)
    await addon_status.record(addon, "available")
    await addons.reconcile_all()
    assert _statuses(await addon_status.history(addon, 20)) == [
        ("available", ""),
        ("down", "server exited"),
        ("available", ""),
    ]


async def test_a_server_that_stays_down_stays_down_in_the_history(
    setup: tuple[Client, FakePomegranate],
) -> None:
    owner, fake = setup
    fake.comes_back = False
    addon = await _addon(owner)
    await addon_status.record(addon, "available")
    await addons.reconcile_all()
    await addons.reconcile_all()  # still down: no new transition
    assert _statuses(await addon_status.history(addon, 20)) == [
        ("available", ""),
        ("down", "server exited"),
    ]
    assert (await Addon.get(id=addon.id)).status == "down"


async def test_the_history_is_capped_and_last_picks_the_newest(
    setup: tuple[Client, FakePomegranate], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, _fake = setup
    monkeypatch.setattr(addon_status, "KEEP", 3)
    addon = await _addon(owner)
    for status in ("creating", "available", "down", "available", "restoring"):
        await addon_status.record(addon, status)
    assert [r.status for r in await addon_status.history(addon, 20)] == [
        "down",
        "available",
        "restoring",
    ]
    assert [r.status for r in await addon_status.history(addon, 1)] == ["restoring"]


async def test_messages_are_cut_to_the_column(setup: tuple[Client, FakePomegranate]) -> None:
    owner, _fake = setup
    addon = await _addon(owner)
    await addon_status.record(addon, "down", "x" * 5000)
    [row] = await addon_status.history(addon, 20)
    assert len(row.message) == addon_status.MESSAGE_MAX


async def test_transitions_and_removal_are_published_on_the_addons_topic(
    setup: tuple[Client, FakePomegranate],
) -> None:
    owner, _fake = setup
    addon = await _addon(owner)
    other = await _addon(owner, "redis-other-2")
    async with get_bus().subscribe(addon_topic(addon.id)) as events:
        await addon_status.record(other, "available")  # another add-on's topic
        await addon_status.record(addon, "available")
        await addons.remove_addon(owner, addon.name, addon.name)
        seen = [await anext(events) for _ in range(3)]
    assert [(e.kind, e.payload["status"]) for e in seen] == [
        (EventKind.ADDON_STATUS, "available"),
        (EventKind.ADDON_STATUS, "removing"),
        (EventKind.ADDON_STATUS, addon_status.REMOVED),
    ]
    assert all(e.payload["name"] == addon.name for e in seen)
    assert not await AddonStatusChange.filter(addon_id=addon.id).exists()  # gone with it


async def test_a_creation_in_progress_is_not_recorded_down_by_the_reconcile(
    setup: tuple[Client, FakePomegranate], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, fake = setup
    project = await Project.create(owner=owner, name="racing")

    async def no_release(*args: object) -> None:
        return None

    monkeypatch.setattr(addons, "_set_var", no_release)
    fake.finish_ensure = asyncio.Event()
    creation = asyncio.create_task(addons.create_addon(owner, project.name, "redis", None))
    await fake.ensuring.wait()  # the creation is starting the server: not running yet
    reconcile = asyncio.create_task(addons.reconcile_all())
    for _ in range(20):  # let the reconcile run as far as it can meanwhile
        await asyncio.sleep(0)
    fake.finish_ensure.set()
    addon = await creation
    await reconcile
    assert fake.ensures == 1  # started once, by the creation
    assert _statuses(await addon_status.history(addon, 20)) == [("creating", ""), ("available", "")]


async def test_an_interrupted_creation_is_taken_up_by_the_reconcile(
    setup: tuple[Client, FakePomegranate],
) -> None:
    owner, fake = setup
    addon = await _addon(owner)  # status "creating": its API was killed before the server ran
    await addon_status.record(addon, "creating")
    await addons.reconcile_all()
    assert fake.ensures == 0  # young: its creation may still be running
    addon.created_at = datetime.now(UTC) - addons.CREATION_GRACE - timedelta(seconds=1)
    await addon.save(update_fields=["created_at"])
    await addons.reconcile_all()
    assert fake.ensures == 1
    assert [r.status for r in await addon_status.history(addon, 20)] == [
        "creating",
        "down",
        "available",
    ]


async def test_a_server_back_on_its_own_is_recorded_available_again(
    setup: tuple[Client, FakePomegranate], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dockerd restart: the reconcile finds the server stopped and cannot ensure it (the engine
    is away); the engine's restart policy brings it back. It stayed 'down' for good before."""
    owner, fake = setup
    addon = await _addon(owner)
    await addon_status.record(addon, "available")

    async def engine_away(spec: pt.AddonSpec) -> pt.AddonState:
        raise PaasError("Docker engine unreachable")

    monkeypatch.setattr(fake, "ensure_addon", engine_away)
    await addons.reconcile_all()
    assert (await Addon.get(id=addon.id)).status == "down"
    fake.state = addon_state(running=True, state="running")
    await addons.reconcile_all()
    await addons.reconcile_all()  # still running: no new transition
    assert _statuses(await addon_status.history(addon, 20)) == [
        ("available", ""),
        ("down", "server exited"),
        ("available", "server running again"),
    ]
    assert (await Addon.get(id=addon.id)).status == "available"
