"""DockerRuntime's project volumes (issue 15) against the real engine, with the busybox base image
(no build): created on first use with the project's labels, writable by the non-root user the
container runs as, refused when a same-named volume is not the project's, never removed while in
use nor for another project."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import aiodocker
import pytest

from backend import labels as L
from backend.engine.inspect import inspect_volume
from backend.pomegranate.docker_runtime import DockerRuntime, VolumeError
from backend.pomegranate.runtime import Mount, NotOwned, ProcessSpec, VolumeInUse
from backend.settings import Settings
from tests.support.polling import within

pytestmark = pytest.mark.docker

SETTINGS = Settings(instance=f"test-vol-{secrets.token_hex(3)}")


@pytest.fixture
async def runtime() -> AsyncIterator[DockerRuntime]:
    rt = DockerRuntime(SETTINGS)
    yield rt
    # Whatever a failed test left: containers, then volumes and networks of this instance.
    for info in await rt.list_containers():
        await rt.remove(info.id)
    label = {"label": [f"{L.INSTANCE}={SETTINGS.instance}"]}
    for data in (await rt.docker.volumes.list(filters=label)).get("Volumes") or []:
        with contextlib.suppress(aiodocker.DockerError):
            await aiodocker.volumes.DockerVolume(rt.docker, data["Name"]).delete()
    for network in await rt.docker.networks.list(filters=label):
        with contextlib.suppress(aiodocker.DockerError):
            await (await rt.docker.networks.get(network["Id"])).delete()
    await rt.close()


def mount(project: str, name: str = "data", key: str = "abc123") -> Mount:
    return Mount(name, L.volume_name(project, name, key, instance=SETTINGS.instance), "/data")


def spec(project: str, command: str, *mounts: Mount) -> ProcessSpec:
    return ProcessSpec(
        project=project,
        application=1,
        process_type="worker",
        replica=1,
        image=SETTINGS.static_base_image,  # paastech/busybox: no USER, so it runs as 10001
        command=command,
        env={},
        port=5000,
        hostnames=[],
        memory_mb=64,
        cpu=0.2,
        pids_limit=32,
        mounts=list(mounts),
    )


async def output_of(runtime: DockerRuntime, container_id: str) -> list[str]:
    """The container's output once it has exited."""
    await runtime.docker.containers.container(container_id).wait()
    return [line async for line in runtime.logs(container_id, follow=False)]


async def test_a_volume_is_created_labelled_writable_and_kept(runtime: DockerRuntime) -> None:
    project = f"t-{secrets.token_hex(4)}"
    data = mount(project)
    writer = await runtime.start(
        spec(project, "id -u && echo kept > /data/note && ls -ln /data/note", data)
    )
    lines = await output_of(runtime, writer.id)
    assert lines[0] == "10001", lines  # the platform's non-root user ...
    assert " 10001 " in lines[1], lines  # ... owns what it wrote: the volume's root is its own
    await runtime.remove(writer.id)

    (unmeasured,) = await runtime.list_volumes([project])
    assert unmeasured.size_bytes == -1  # measuring walks every volume: only when asked
    (listed,) = await runtime.list_volumes([project], sizes=True)
    assert (listed.project, listed.volume, listed.docker_name) == (
        project,
        "data",
        data.docker_name,
    )
    assert listed.size_bytes >= len("kept\n")
    volume = await inspect_volume(runtime.docker, data.docker_name)
    assert volume is not None
    assert volume["Labels"][L.PROJECT] == project and volume["Labels"][L.VOLUME] == "data"
    assert await runtime.list_volumes([f"{project}-other"]) == []

    # A new container (another release) finds the data; while it runs the volume stays.
    reader = await runtime.start(spec(project, "cat /data/note; sleep 60", data))
    with pytest.raises(VolumeInUse):
        await runtime.remove_volume(project, data.docker_name)
    with pytest.raises(NotOwned):
        await runtime.remove_volume(f"{project}-other", data.docker_name)
    async with within(30, "the reader's output"):
        while not (lines := [line async for line in runtime.logs(reader.id, follow=False)]):
            await asyncio.sleep(0.1)
    assert lines == ["kept"]
    await runtime.remove(reader.id)
    await runtime.remove_volume(project, data.docker_name)
    assert await runtime.list_volumes([project]) == []
    await runtime.remove_volume(project, data.docker_name)  # a missing one is fine
    await runtime.remove_project_network(project)


async def test_a_same_named_volume_that_is_not_the_projects_is_refused(
    runtime: DockerRuntime,
) -> None:
    project = f"t-{secrets.token_hex(4)}"
    forged = mount(project)
    # Someone else's volume under the name the project's would have (labels of another project).
    await runtime.docker.volumes.create(
        {
            "Name": forged.docker_name,
            "Labels": L.volume_labels("victim", "data", instance=SETTINGS.instance),
        }
    )
    with pytest.raises(VolumeError, match="not project"):
        await runtime.start(spec(project, "true", forged))
    assert await runtime.list_containers(project) == []
    with pytest.raises(NotOwned):
        await runtime.remove_volume(project, forged.docker_name)
    await runtime.remove_project_network(project)
