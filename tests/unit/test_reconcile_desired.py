"""The reconcile cycle's desired state reads every live release in one query (issue 17): the
same live release per project as projects.live_application, and the in-flight numbers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tortoise import Tortoise

from backend.db.models import Application, Client, Project
from backend.db.models import ApplicationStatus as S
from backend.services.applications.controller import Controller
from backend.services.projects import live_application
from backend.settings import Settings


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Controller]:
    await Tortoise.init(
        db_url="sqlite://:memory:", modules={"models": ["backend.db.models"]}, use_tz=True
    )
    await Tortoise.generate_schemas()
    yield Controller(None, Settings(secret_key="unit", data_dir=tmp_path))  # type: ignore[arg-type]
    await Tortoise.close_connections()


async def _releases(project: Project, *statuses: S) -> None:
    for number, status in enumerate(statuses, start=1):
        await Application.create(project=project, number=number, status=status, image=f"i:{number}")


async def test_each_project_gets_its_own_highest_live_release(controller: Controller) -> None:
    owner = await Client.create(email="r@example.com", username="recon", password_hash="x")
    other = await Client.create(email="o@example.com", username="other", password_hash="x")
    blog = await Project.create(owner=owner, name="blog")
    shop = await Project.create(owner=other, name="shop")
    idle = await Project.create(owner=owner, name="idle")
    # blog: v2 running is live over v1 crashed (both LIVE); v3 building is in flight, v4 failed is neither.
    await _releases(blog, S.CRASHED, S.RUNNING, S.BUILDING, S.FAILED)
    # shop: v1 running, v2 deploying; idle: nothing live.
    await _releases(shop, S.RUNNING, S.DEPLOYING)
    await _releases(idle, S.FAILED)

    desired = {d.project: d for d in await controller.desired_state()}

    assert set(desired) == {"blog", "shop", "idle"}
    for project in (blog, shop, idle):
        expected = await live_application(project)
        got = desired[project.name].live
        assert (got.application if got else None) == (expected.number if expected else None)
    assert desired["blog"].live is not None and desired["blog"].live.application == 2
    assert desired["blog"].live.image == "i:2"
    assert desired["shop"].live is not None and desired["shop"].live.application == 1
    assert desired["idle"].live is None
    assert set(desired["blog"].in_flight) == {3}
    assert set(desired["shop"].in_flight) == {2}
    assert desired["idle"].in_flight == ()
