"""The volume_mb quota counts add-on data volumes (issue 15): the space in use is the projects'
volumes plus the add-ons' data volumes; a new add-on is refused once it is reached, with the
quota's message and nothing made (no row, no server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backend.db.models import Addon, AddonKind, Client, ClientQuota, Project
from backend.errors import ValidationFailed
from backend.rpc import pomegranate_types as pt
from backend.services import addons, quotas, volumes
from tests.support.addon_db import addon_db, addon_row

MB = 1024 * 1024


def addon_state(*, running: bool, state: str) -> pt.AddonState:
    return pt.AddonState(
        state=state, running=running, health="", projects=(), started_at="", restart_count=0
    )


class FakePomegranate:
    def __init__(self) -> None:
        self.addon_bytes: dict[str, int] = {}
        self.ensured: list[str] = []

    async def addon_volume_sizes(self, names: list[str]) -> dict[str, int]:
        return {n: self.addon_bytes.get(n, -1) for n in names}

    async def list_volumes(self, projects: list[str], sizes: bool) -> list[pt.VolumeInfo]:
        return []

    async def ensure_addon(self, spec: pt.AddonSpec) -> pt.AddonState:
        self.ensured.append(spec.name)
        return addon_state(running=True, state="running")


@pytest.fixture
async def setup(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Client, Project, FakePomegranate]]:
    async with addon_db("quota") as owner:
        project = await Project.create(owner=owner, name="stateful")
        fake = FakePomegranate()
        monkeypatch.setattr(addons, "_pomegranate", lambda: fake)

        async def no_release(*args: object) -> None:
            return None

        monkeypatch.setattr(addons, "_set_var", no_release)
        yield owner, project, fake


async def _existing(owner: Client, name: str) -> Addon:
    return await addon_row(owner, name, AddonKind.POSTGRES)


async def test_addon_data_volumes_count_in_the_space_used(
    setup: tuple[Client, Project, FakePomegranate],
) -> None:
    owner, _project, fake = setup
    assert await volumes.used_mb(fake, owner) == 0.0  # type: ignore[arg-type]
    await _existing(owner, "postgresql-amber-1")
    await _existing(owner, "postgresql-coral-2")
    fake.addon_bytes = {"postgresql-amber-1": 3 * MB, "postgresql-coral-2": -1}  # one unknown
    assert await volumes.used_mb(fake, owner) == 3.0  # type: ignore[arg-type]


async def test_a_new_addon_over_volume_mb_is_refused_and_nothing_is_made(
    setup: tuple[Client, Project, FakePomegranate],
) -> None:
    owner, project, fake = setup
    await ClientQuota.create(client=owner, name=quotas.VOLUME_MB, limit=2)
    await _existing(owner, "postgresql-amber-1")
    fake.addon_bytes = {"postgresql-amber-1": 2 * MB}
    with pytest.raises(ValidationFailed) as refused:
        await addons.create_addon(owner, project.name, "redis", None)
    assert refused.value.field == "kind"
    assert "quota volume_mb exceeded: limit 2, in use 2" in refused.value.message
    assert await Addon.filter(client=owner).count() == 1
    assert fake.ensured == []


async def test_under_volume_mb_a_new_addon_is_made(
    setup: tuple[Client, Project, FakePomegranate],
) -> None:
    owner, project, fake = setup
    await ClientQuota.create(client=owner, name=quotas.VOLUME_MB, limit=2)
    await _existing(owner, "postgresql-amber-1")
    fake.addon_bytes = {"postgresql-amber-1": MB}
    addon = await addons.create_addon(owner, project.name, "redis", None)
    assert fake.ensured == [addon.name]
    assert addon.status == "available"
