"""DockerRuntime against a real Docker engine, with the fixture apps.

Needs a running engine (scripts/docker.sh) and the local base images (scripts/base-images.sh).
Missing ones make these tests fail, never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path

import aiodocker
import httpx
import pytest

from backend.labels import Ownership
from backend.pomegranate.docker_runtime import DockerRuntime, container_name, network_name
from backend.pomegranate.runtime import (
    BuildError,
    BuiltImage,
    ContainerInfo,
    HealthCheckError,
    ProcessSpec,
    Runtime,
)
from backend.settings import Settings
from tests.support.platform import tar_dir

pytestmark = pytest.mark.docker

APPS = Path(__file__).resolve().parents[1] / "fixtures" / "apps"
SETTINGS = Settings()
BASE_IMAGES = (
    SETTINGS.python_base_image,
    SETTINGS.node_base_image,
    SETTINGS.static_base_image,
)


@pytest.fixture(scope="session", autouse=True)
async def base_images_present():
    async with aiodocker.Docker() as docker:
        try:
            await docker.version()
        except aiodocker.DockerError as exc:
            pytest.fail(f"no Docker engine answers (run scripts/docker.sh): {exc}")
        for image in BASE_IMAGES:
            try:
                await docker.images.inspect(image)
            except aiodocker.DockerError:
                pytest.fail(f"base image {image} is missing: run scripts/base-images.sh")


class Logs:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)


async def build(runtime: DockerRuntime, project: str, app: str, application: int = 1, **kw):
    logs = Logs()
    source = kw.pop("source", None) or tar_dir(APPS / app)
    built = await runtime.build(project, application, source, logs)
    return built, logs


def spec(project: str, built: BuiltImage, process: str = "web", **overrides) -> ProcessSpec:
    values = {
        "project": project,
        "application": 1,
        "process_type": process,
        "replica": 1,
        "image": built.image,
        "command": built.plan.processes[process],
        "env": {"GREETING": "hello"},
        "port": built.plan.exposed_port or SETTINGS.default_port,
        "hostnames": [f"{project}.{SETTINGS.base_domain}"],
        "memory_mb": SETTINGS.default_memory_mb,
        "cpu": SETTINGS.default_cpu,
        "pids_limit": SETTINGS.pids_limit,
        "health_path": None,
    }
    values.update(overrides)
    return ProcessSpec(**values)


async def get(info: ContainerInfo, path: str = "/") -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(f"http://127.0.0.1:{info.host_port}{path}")


def test_docker_runtime_implements_the_protocol():
    assert isinstance(DockerRuntime(SETTINGS), Runtime)


async def test_dockerfile_app(runtime: DockerRuntime, project: str, tmp_path: Path):
    # The source handed over as the path of a tar file.
    tar_path = tmp_path / "src.tar"
    tar_path.write_bytes(tar_dir(APPS / "dockerfile"))
    built, logs = await build(runtime, project, "dockerfile", source=tar_path)
    # Pushed to the platform registry and named by digest.
    assert built.image.startswith(f"{SETTINGS.registry_address}/paastech/app-{project}@sha256:")
    assert built.image_id == built.image.partition("@")[2]
    assert built.plan.stack == "dockerfile"
    assert built.plan.dockerfile is None
    assert built.plan.exposed_port == 5000
    assert built.plan.processes == {"web": None}
    assert any(line.startswith("STEP 1/") for line in logs.lines)
    assert any("Successfully tagged" in line for line in logs.lines)

    info = await runtime.start(spec(project, built, health_path="/health"))
    assert info.name == container_name(project, 1, "web", 1, instance=SETTINGS.instance)
    assert info.ownership == Ownership(project, 1, "web", 1)
    assert info.running and info.host_port
    await runtime.wait_healthy(info, "/health", 20)
    body = (await get(info)).json()
    assert body["app"] == "dockerfile"
    assert body["env"] == {
        "GREETING": "hello",
        "PAASTECH_APP": project,
        "PAASTECH_RELEASE": "1",
        "PAASTECH_PROCESS": "web",
        "PAASTECH_REPLICA": "1",
    }

    listed = await runtime.list_containers(project)
    assert [c.id for c in listed] == [info.id]
    assert await runtime.list_images(project) == [built.image]

    await runtime.stop(info.id, timeout=5)
    stopped = await runtime.inspect(info.id)
    assert stopped is not None and not stopped.running and stopped.state == "exited"
    await runtime.remove(info.id)
    assert await runtime.inspect(info.id) is None
    # Already gone: both are no-ops.
    await runtime.stop(info.id)
    await runtime.remove(info.id)


async def test_python_app(runtime: DockerRuntime, project: str):
    built, logs = await build(runtime, project, "python")
    assert built.plan.stack == "python"
    assert built.plan.processes == {"web": "python3 app.py"}
    assert "-----> Python app detected" in logs.lines
    info = await runtime.start(spec(project, built))
    await runtime.wait_healthy(info, "/health", 20)
    response = await get(info)
    assert response.status_code == 200
    assert response.json()["app"] == "python"
    # The generated image runs as a non-root user.
    async with aiodocker.Docker() as docker:
        image = await docker.images.inspect(built.image)
    assert image["Config"]["User"] == "1000:1000"
    # The image carries no ownership labels: only containers do.
    assert not any(k.startswith("paastech.") for k in image["Config"].get("Labels") or {})


async def test_static_app(runtime: DockerRuntime, project: str):
    built, _ = await build(runtime, project, "static")
    assert built.plan.stack == "static"
    info = await runtime.start(spec(project, built))
    await runtime.wait_healthy(info, "/", 20)
    response = await get(info)
    assert response.status_code == 200
    assert "PaaSTech static fixture v1" in response.text
    assert "font-family" in (await get(info, "/style.css")).text


async def test_worker_app(runtime: DockerRuntime, project: str):
    built, _ = await build(runtime, project, "worker")
    assert built.plan.processes == {"web": "python3 web.py", "worker": "python3 worker.py"}
    web = await runtime.start(spec(project, built, "web"))
    worker = await runtime.start(spec(project, built, "worker"))
    assert worker.host_port is None
    assert worker.labels["traefik.enable"] == "false"
    # No path: the TCP check must see the app itself, not just docker-proxy.
    await runtime.wait_healthy(web, None, 20)
    assert (await get(web)).json()["app"] == "worker-web"
    await runtime.wait_healthy(worker, None, 20)
    info = await runtime.inspect(worker.id)
    assert info is not None and info.running
    lines = [line async for line in runtime.logs(worker.id, follow=False, tail=None)]
    assert "worker tick 1" in lines
    listed = await runtime.list_containers(project)
    assert {c.ownership.process for c in listed if c.ownership} == {"web", "worker"}
    # Issue 17: the reconcile cycle's single listing says what the inspects say, running (with
    # and without a published port) and exited.
    assert _listed(await runtime.list_containers(project, detail=False)) == _listed(listed)
    await runtime.stop(worker.id, timeout=1)
    full = await runtime.list_containers(project)
    assert {c.name: c.state for c in full} == {web.name: "running", worker.name: "exited"}
    assert _listed(await runtime.list_containers(project, detail=False)) == _listed(full)


def _listed(infos: list[ContainerInfo]) -> list[tuple[object, ...]]:
    """The fields a listing carries (Runtime.list_containers(detail=False))."""
    fields = ("id", "name", "ownership", "state", "running", "host_port", "image", "labels")
    return [(*(getattr(c, f) for f in fields), c.networks) for c in infos]


async def test_build_failure_names_the_run_step(runtime: DockerRuntime, project: str):
    with pytest.raises(BuildError) as info:
        await build(runtime, project, "build-fails")
    error = info.value
    assert error.step is not None
    assert error.step.startswith("STEP 2/")
    assert "RUN" in error.step and "exit 3" in error.step
    assert error.message == "the step exited with code 3"
    assert "error: fixture build-fails always fails here" in error.last_lines
    assert len(error.last_lines) <= 20
    assert await runtime.list_images(project) == []


async def test_unrecognised_source_fails_clearly(runtime: DockerRuntime, project: str, tmp_path):
    (tmp_path / "README.md").write_text("nothing to run\n")
    with pytest.raises(BuildError, match=r"no Dockerfile, Procfile with requirements\.txt"):
        await build(runtime, project, "", source=tar_dir(tmp_path))


async def test_crash_on_start_fails_fast(runtime: DockerRuntime, project: str):
    built, _ = await build(runtime, project, "crash-on-start")
    info = await runtime.start(spec(project, built))
    with pytest.raises(HealthCheckError) as error:
        await runtime.wait_healthy(info, "/", 30)
    # Fails on the exit, not on the 30 s deadline (that reason would read "not healthy after").
    assert "not healthy after" not in error.value.reason
    assert "boom: missing DATABASE_URL" in error.value.last_lines
    assert "exited with code 1" in error.value.reason or "restarting" in error.value.reason


async def test_never_healthy_times_out(runtime: DockerRuntime, project: str):
    built, _ = await build(runtime, project, "never-healthy")
    info = await runtime.start(spec(project, built))
    with pytest.raises(HealthCheckError) as error:
        await runtime.wait_healthy(info, "/health", 4)
    assert "not healthy after 4s" in error.value.reason
    assert "answered 500" in error.value.reason


async def test_startup_cpu_boost_ends_when_the_container_is_healthy(
    runtime: DockerRuntime, project: str
):
    built, _ = await build(runtime, project, "dockerfile")
    info = await runtime.start(spec(project, built, cpu=0.25, startup_cpu=1.0))
    async with aiodocker.Docker() as docker:
        started = (await docker.containers.get(info.id))._container["HostConfig"]
        assert started["NanoCpus"] == 1_000_000_000
        await runtime.wait_healthy(info, None, 60)
        healthy = (await docker.containers.get(info.id))._container["HostConfig"]
    assert healthy["NanoCpus"] == 250_000_000
    # The engine applied it to the running container's cgroup, not only to its config.
    assert (await get(info)).status_code == 200


async def test_resource_limits_and_hardening(runtime: DockerRuntime, project: str):
    built, _ = await build(runtime, project, "dockerfile")
    info = await runtime.start(spec(project, built, memory_mb=96, cpu=0.25, pids_limit=64))
    async with aiodocker.Docker() as docker:
        data = (await docker.containers.get(info.id))._container
    host = data["HostConfig"]
    assert host["Memory"] == 96 * 1024 * 1024
    assert host["MemorySwap"] == 96 * 1024 * 1024
    assert host["NanoCpus"] == 250_000_000
    assert host["PidsLimit"] == 64
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges=true"]
    assert host["Privileged"] is False
    assert not host.get("Binds")
    network = network_name(project, instance=SETTINGS.instance)
    assert host["NetworkMode"] == network
    assert host["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": "10m", "max-file": "3"},
    }
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert host["PortBindings"] == {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert data["NetworkSettings"]["Ports"]["5000/tcp"][0]["HostIp"] == "127.0.0.1"
    assert list(data["NetworkSettings"]["Networks"]) == [network]
    assert data["Config"]["Labels"]["traefik.docker.network"] == network
    assert data["Config"]["Labels"]["traefik.http.routers." + project + ".rule"] == (
        f"Host(`{project}.{SETTINGS.base_domain}`)"
    )


async def test_memory_hog_is_oom_killed(runtime: DockerRuntime, project: str):
    built, _ = await build(runtime, project, "memory-hog")
    info = await runtime.start(spec(project, built, memory_mb=64))
    await runtime.wait_healthy(info, "/", 20)

    oom_event = asyncio.Event()

    async def watch():
        async for event in runtime.events():
            if event.container_id == info.id and event.kind == "oom":
                assert event.ownership == Ownership(project, 1, "web", 1)
                oom_event.set()
                return

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.sleep(0.3)  # let the event stream open
        with contextlib.suppress(httpx.HTTPError):
            await get(info, "/hog")
        oom_seen = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not oom_seen:
            current = await runtime.inspect(info.id)
            oom_seen = oom_event.is_set() or bool(current and current.oom_killed)
            await asyncio.sleep(0.2)
        assert oom_seen
        async with asyncio.timeout(10):
            await oom_event.wait()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_ticker_logs_follow_in_order(runtime: DockerRuntime, project: str):
    built, _ = await build(runtime, project, "ticker")
    info = await runtime.start(spec(project, built))
    await runtime.wait_healthy(info, "/", 20)
    ticks: list[str] = []
    async with asyncio.timeout(10):
        async for line in runtime.logs(info.id, follow=True, tail=None):
            ticks.append(line)
            if len(ticks) == 8:
                break
    assert ticks == [f"tick {n}" for n in range(1, 9)]
    tail = [line async for line in runtime.logs(info.id, follow=False, tail=3)]
    assert len(tail) == 3 and all(line.startswith("tick ") for line in tail)


async def test_events_report_start_and_die(runtime: DockerRuntime, project: str):
    built, _ = await build(runtime, project, "crash-on-start")
    events = []

    async def watch():
        async for event in runtime.events():
            if event.ownership and event.ownership.project == project:
                events.append(event)
                if event.kind == "die":
                    return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.3)
    await runtime.start(spec(project, built))
    async with asyncio.timeout(15):
        await watcher
    kinds = [e.kind for e in events]
    assert "start" in kinds and kinds[-1] == "die"
    assert events[-1].exit_code == 1
    assert events[-1].ownership == Ownership(project, 1, "web", 1)


async def test_rebuild_reuses_dependency_layer(runtime: DockerRuntime, project: str, tmp_path):
    source = tmp_path / "python"
    shutil.copytree(APPS / "python", source)
    # A real (offline-installable) requirement line, so there is a dependency layer to cache.
    (source / "requirements.txt").write_text("--no-index\nsetuptools\n")
    first, first_logs = await build(runtime, project, "", 1, source=tar_dir(source))
    assert "RUN pip install" in first.plan.dockerfile

    app = source / "app.py"
    app.write_text(app.read_text().replace('"v1"', '"v2"'))
    second, logs = await build(runtime, project, "", 2, source=tar_dir(source))

    def step_output(lines: list[str], needle: str) -> list[str]:
        start = next(
            i for i, line in enumerate(lines) if line.startswith("STEP ") and needle in line
        )
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("STEP ")), len(lines)
        )
        return lines[start + 1 : end]

    def cached(lines: list[str]) -> bool:
        return any(line.startswith("--> Using cache") for line in lines)

    assert not cached(step_output(first_logs.lines, "COPY --chown"))
    assert cached(step_output(logs.lines, "RUN pip install"))
    assert not cached(step_output(logs.lines, "COPY --chown"))
    assert await runtime.list_images(project) == [second.image, first.image]

    info = await runtime.start(spec(project, second, application=2))
    await runtime.wait_healthy(info, "/health", 20)
    assert (await get(info)).json()["version"] == "v2"


async def test_start_replaces_a_leftover_container(runtime: DockerRuntime, project: str):
    built, _ = await build(runtime, project, "python")
    first = await runtime.start(spec(project, built))
    second = await runtime.start(spec(project, built))
    assert second.id != first.id
    assert await runtime.inspect(first.id) is None
    await runtime.wait_healthy(second, "/health", 20)


async def test_build_timeout(project: str, tmp_path: Path):
    (tmp_path / "Dockerfile").write_text(
        f"FROM {SETTINGS.python_base_image}\nRUN echo waiting && sleep 60\n"
    )
    runtime = DockerRuntime(Settings(build_timeout_seconds=3))
    try:
        with pytest.raises(BuildError) as info:
            await build(runtime, project, "", source=tar_dir(tmp_path))
        assert info.value.message == (
            "the build took longer than its time limit (build_timeout_seconds 3s)"
        )
        assert info.value.step is not None and "sleep 60" in info.value.step
        assert "waiting" in info.value.last_lines
    finally:
        await runtime.close()


async def test_generated_dockerfile_does_not_clobber_a_user_file(
    runtime: DockerRuntime, project: str, tmp_path: Path
):
    source = tmp_path / "static"
    shutil.copytree(APPS / "static", source)
    (source / "Dockerfile.paastech").write_text("user file, kept as is\n")
    built, _ = await build(runtime, project, "", source=tar_dir(source))
    info = await runtime.start(spec(project, built))
    await runtime.wait_healthy(info, "/", 20)
    assert (await get(info, "/Dockerfile.paastech")).text == "user file, kept as is\n"
    # The generated Dockerfile lives outside the build context: it never lands in the image.
    assert (await get(info, "/Dockerfile.paastech.1")).status_code == 404


async def test_an_unchanged_push_reuses_its_image(runtime: DockerRuntime, project: str, tmp_path):
    """The same tree and Dockerfile again: no buildah run, the first build's image (tagged for
    the new release in the registry), its stripped labels reported again; a changed file, or
    the image gone from the registry (retention), builds."""
    source = tmp_path / "app"
    shutil.copytree(APPS / "dockerfile", source)
    dockerfile = source / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "LABEL traefik.enable=true\n")
    first, first_logs = await build(runtime, project, "", 1, source=tar_dir(source))
    assert any(line.startswith("STEP 1/") for line in first_logs.lines)
    assert any("Removed labels" in line for line in first_logs.lines)

    second, logs = await build(runtime, project, "", 2, source=tar_dir(source))
    assert second.image == first.image
    assert not any(line.startswith("STEP ") for line in logs.lines), logs.lines
    assert "-----> Same source, Dockerfile and base images as v1: reusing its image" in "\n".join(
        logs.lines
    )
    assert any("Removed labels" in line and "traefik.enable" in line for line in logs.lines)
    tags = await runtime.registry.tags(project)
    assert tags["1"] == tags["2"] == first.image_id

    info = await runtime.start(spec(project, second, application=2, health_path="/health"))
    await runtime.wait_healthy(info, "/health", 20)
    assert (await get(info)).json()["app"] == "dockerfile"
    await runtime.stop(info.id)
    await runtime.remove(info.id)

    (source / "app.py").write_text((source / "app.py").read_text() + "\n# changed\n")
    third, logs = await build(runtime, project, "", 3, source=tar_dir(source))
    assert third.image != first.image
    assert any(line.startswith("STEP ") for line in logs.lines)

    await runtime.images.remove(third.image, force=True)  # what retention does to an old one
    fourth, logs = await build(runtime, project, "", 4, source=tar_dir(source))
    assert any(line.startswith("STEP ") for line in logs.lines)
    assert not any("reusing its image" in line for line in logs.lines)
    assert (await runtime.registry.tags(project)).get("4") == fourth.image_id
