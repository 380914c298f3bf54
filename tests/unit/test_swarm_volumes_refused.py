"""Project volumes (issue 15) on the Swarm runtime: its services had no mounts, so an app with a
volume ran there without it and what it wrote did not persist. Until a volume's process type is
pinned to its node, such a release is refused with a clear reason, before any engine is asked."""

from __future__ import annotations

import pytest

from backend.pomegranate.release import Process, ReleaseFailed, ReleasePlan, VolumePlan
from backend.pomegranate.swarm_runtime import SwarmRuntime, refuse_volumes
from backend.settings import Settings

DIGEST = "sha256:" + "b" * 64


def plan(*volumes: VolumePlan) -> ReleasePlan:
    return ReleasePlan(
        project="shop",
        application=3,
        image=f"127.0.0.1:5050/paastech/app-shop@{DIGEST}",
        processes=[Process("web", None, 2), Process("worker", "python w.py", 1)],
        volumes=list(volumes),
    )


def data(*processes: str) -> VolumePlan:
    return VolumePlan("data", "0a1b2c3d4e5f", "/data", processes)


def test_services_mounting_a_volume_are_refused_naming_them() -> None:
    with pytest.raises(ReleaseFailed) as refused:
        refuse_volumes(plan(data("worker", "web")), "paastech")
    assert "not supported on the Swarm runtime" in refused.value.reason
    assert "(mounted by web, worker)" in refused.value.reason


@pytest.mark.parametrize("processes", [(), ("release",), ("run",)])
def test_volumes_no_service_mounts_are_let_through(processes: tuple[str, ...]) -> None:
    refuse_volumes(plan(), "paastech")
    refuse_volumes(plan(data(*processes)), "paastech")  # the release phase, one-offs: host engine


async def test_deploy_refuses_before_asking_any_engine() -> None:
    settings = Settings(
        runtime="swarm",
        swarm_docker_url="unix:///nowhere/docker.sock",
        swarm_registry_address="10.231.7.1:5050",
        registry_port=5050,
    )
    runtime = SwarmRuntime(settings)
    logged: list[str] = []

    async def on_log(line: str) -> None:
        logged.append(line)

    try:
        with pytest.raises(ReleaseFailed, match="volumes are not supported"):
            await runtime.deploy(plan(data("web")), on_log)
    finally:
        await runtime.close()
    assert logged == []
