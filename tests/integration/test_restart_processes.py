"""Restarting processes in place (issue 19, `restart web.2`) on the real engine: only the asked
containers restart, and only containers of that project and of this installation, as their
labels say: a name or an id of someone else's container is refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from backend.pomegranate.docker_runtime import DockerRuntime
from backend.pomegranate.release import NothingToRestart, restart_processes
from backend.pomegranate.runtime import ContainerInfo, NotOwned
from backend.settings import Settings
from tests.integration.test_docker_runtime import build, spec

pytestmark = pytest.mark.docker


@pytest.fixture
async def other() -> AsyncIterator[DockerRuntime]:
    """Another installation on the same engine (its own paastech.instance label)."""
    rt = DockerRuntime(Settings(instance=f"other-{uuid.uuid4().hex[:8]}"))
    yield rt
    await rt.close()


async def started_at(runtime: DockerRuntime, info: ContainerInfo) -> object:
    current = await runtime.inspect(info.id)
    assert current is not None and current.running, current
    return current.started_at


async def test_restart_one_replica_of_this_project_only(
    runtime: DockerRuntime, other: DockerRuntime, project: str
) -> None:
    built, _ = await build(runtime, project, "ticker")
    web1 = await runtime.start(spec(project, built, replica=1))
    web2 = await runtime.start(spec(project, built, replica=2))
    # The same project name in another installation: not ours, whatever its labels say.
    foreign = await other.start(spec(project, built, replica=1))
    try:
        for info in (web1, web2, foreign):
            await runtime.wait_healthy(info, None, 20)
        before = {c.id: await started_at(runtime, c) for c in (web1, web2, foreign)}

        restarted = await restart_processes(runtime, project, 1, "web", 2, 20)
        assert [c.id for c in restarted] == [web2.id]  # in place: the same container
        assert await started_at(runtime, web2) != before[web2.id]
        assert await started_at(runtime, web1) == before[web1.id]

        # Every replica: web.1 and web.2 of this installation, never the other's.
        after = {c.id: await started_at(runtime, c) for c in (web1, web2)}
        restarted = await restart_processes(runtime, project, 1, "web", 0, 20)
        assert [(c.ownership.replica if c.ownership else 0) for c in restarted] == [1, 2]
        for info in (web1, web2):
            assert await started_at(runtime, info) != after[info.id]
        assert await started_at(runtime, foreign) == before[foreign.id]

        # Nothing of that process, replica or release: refused, nothing touched.
        for process, replica, application in (("worker", 0, 1), ("web", 3, 1), ("web", 1, 2)):
            with pytest.raises(NothingToRestart):
                await restart_processes(runtime, project, application, process, replica, 20)

        # By id or by name, another project's or installation's container is refused.
        settled = {c.id: await started_at(runtime, c) for c in (web1, web2, foreign)}
        for target, owner in (
            (foreign.id, project),  # right project label, other installation
            (foreign.name, project),
            (web1.id, f"t-{uuid.uuid4().hex[:8]}"),  # this installation, other project
            (web1.name, f"t-{uuid.uuid4().hex[:8]}"),
        ):
            with pytest.raises(NotOwned):
                await runtime.restart(target, owner)
        with pytest.raises(NotOwned):
            await other.restart(web1.id, project)
        assert {c.id: await started_at(runtime, c) for c in (web1, web2, foreign)} == settled
    finally:
        await other.remove(foreign.id)
        await other.remove_project_network(project)
