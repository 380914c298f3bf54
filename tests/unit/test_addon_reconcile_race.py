"""Add-ons (issue 15): the API's periodic reconcile brings back a stopped add-on server, but
never one that a removal is taking down at the same moment (a fresh-clone run caught a destroyed
add-on's container re-created by the reconcile that had listed it just before)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from backend.db.models import Addon, Client
from backend.rpc import pomegranate_types as pt
from backend.services import addons
from tests.support.addon_db import addon_db, addon_row, use_pomegranate


class FakePomegranate:
    """The add-on RPCs: the server is never running; a removal waits until released."""

    def __init__(self) -> None:
        self.ensured: list[str] = []
        self.removed: list[str] = []
        self.removing = asyncio.Event()
        self.release_removal = asyncio.Event()

    async def addon_status(self, name: str, kind: str) -> pt.AddonState:
        return pt.AddonState(
            state="exited", running=False, health="", projects=(), started_at="", restart_count=0
        )

    async def ensure_addon(self, spec: pt.AddonSpec) -> pt.AddonState:
        self.ensured.append(spec.name)
        return pt.AddonState(
            state="running", running=True, health="", projects=(), started_at="", restart_count=0
        )

    async def remove_addon(self, name: str, kind: str) -> None:
        self.removing.set()
        await self.release_removal.wait()
        self.removed.append(name)


@pytest.fixture
async def setup(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Client, FakePomegranate]]:
    async with addon_db("racer") as owner:
        fake = FakePomegranate()
        use_pomegranate(monkeypatch, fake)
        yield owner, fake


async def _addon(owner: Client, name: str) -> Addon:
    return await addon_row(owner, name)


async def test_a_stopped_server_is_brought_back(setup: tuple[Client, FakePomegranate]) -> None:
    owner, fake = setup
    await _addon(owner, "redis-back-1")
    await addons.reconcile_all()
    assert fake.ensured == ["redis-back-1"]


async def test_a_server_being_removed_is_not_brought_back(
    setup: tuple[Client, FakePomegranate],
) -> None:
    owner, fake = setup
    addon = await _addon(owner, "redis-gone-1")
    removal = asyncio.create_task(addons.remove_addon(owner, addon.name, addon.name))
    await fake.removing.wait()  # the removal holds the add-on; its server is going away
    reconcile = asyncio.create_task(addons.reconcile_all())
    for _ in range(20):  # let the reconcile run as far as it can while the removal is held
        await asyncio.sleep(0)
    assert fake.ensured == []
    fake.release_removal.set()
    await removal
    await reconcile
    assert fake.removed == ["redis-gone-1"]
    assert fake.ensured == []  # the reconcile found the row gone and left it
    assert not await Addon.filter(name="redis-gone-1").exists()
