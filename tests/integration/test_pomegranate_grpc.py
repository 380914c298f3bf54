"""Pomegranate's gRPC contract against the real process (`python -m backend pomegranate`) and a
real Docker engine, with the fixture apps.

Needs a running engine (scripts/docker.sh) and the local base images (scripts/base-images.sh).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiodocker
import grpc
import httpx
import pytest

from backend.labels import parse_labels
from backend.pomegranate.registry import Registry
from backend.rpc import pomegranate_pb2 as pb
from backend.rpc.pomegranate_pb2_grpc import PomegranateStub
from backend.security import internal_secret
from backend.settings import Settings
from tests.support.platform import light_tar, tar_dir
from tests.support.polling import within
from tests.support.servers import ROOT, base_env, free_port, stop_process

pytestmark = pytest.mark.docker

APPS = ROOT / "tests" / "fixtures" / "apps"
SECRET_KEY = "pomegranate-test-secret-0123456789"
# The server derives its gRPC secret from the secret key exactly like backend.security does.
SECRET = internal_secret(SECRET_KEY)  # derived by purpose from the master key (issue 12)
MD = (("x-paastech-secret", SECRET),)
MAX_SOURCE_BYTES = 4 * 1024 * 1024
CHUNK = 64 * 1024


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The real process on a free port; yields (address, data dir)."""
    data_dir = tmp_path_factory.mktemp("pomegranate")
    leftover = data_dir / "tmp" / "build-crashed-1-abcd.tar"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"left by a crash mid-build")
    port = free_port()
    env = base_env(
        data_dir,
        pomegranate_port=port,
        secret_key=SECRET_KEY,
        max_source_bytes=MAX_SOURCE_BYTES,
        health_check_timeout_seconds=20,
        max_concurrent_builds=1,
    )
    log = (data_dir / "pomegranate.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend", "pomegranate"], env=env, cwd=ROOT, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"pomegranate exited with {proc.returncode}: see {log.name}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                pytest.fail("pomegranate did not listen within 30 s")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}", data_dir
    finally:
        stop_process(proc)
        log.close()


@pytest.fixture
async def stub(server: tuple[str, Path]) -> AsyncIterator[PomegranateStub]:
    async with grpc.aio.insecure_channel(server[0]) as channel:
        yield PomegranateStub(channel)


@pytest.fixture
async def docker() -> AsyncIterator[aiodocker.Docker]:
    async with aiodocker.Docker() as client:
        yield client


def new_project() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def project(stub: PomegranateStub) -> AsyncIterator[str]:
    name = new_project()
    yield name
    await stub.RemoveProject(pb.ProjectRef(project=name), metadata=MD)


@pytest.fixture
async def other_project(stub: PomegranateStub) -> AsyncIterator[str]:
    name = new_project()
    yield name
    await stub.RemoveProject(pb.ProjectRef(project=name), metadata=MD)


# ------------------------------------------------------------------------------------ helpers


async def chunks_of(project: str, application: int, source: bytes) -> AsyncIterator[pb.BuildChunk]:
    yield pb.BuildChunk(header=pb.BuildHeader(project=project, application=application))
    for start in range(0, len(source), CHUNK):
        yield pb.BuildChunk(data=source[start : start + CHUNK])


def source_of(app: str) -> bytes:
    """A fixture's tar. Procfile apps come with LIGHT_DOCKERFILE: this module is about
    Pomegranate's contract, and the Python stack's first build in each project (a virtualenv)
    is the slowest step of a push (the stack is tested in tests/unit and test_deployments)."""
    if (APPS / app / "Procfile").exists() and not (APPS / app / "Dockerfile").exists():
        return light_tar(app)
    return tar_dir(APPS / app)


async def build(
    stub: PomegranateStub, project: str, app: str, application: int = 1, source: bytes = b""
) -> tuple[list[str], pb.BuildEvent]:
    """(log lines, final event) of a Build; the final event is a result or a failure."""
    events = [
        e
        async for e in stub.Build(
            chunks_of(project, application, source or source_of(app)), metadata=MD
        )
    ]
    assert events, "Build streamed nothing"
    *lines, last = events
    assert all(e.WhichOneof("event") == "log" for e in lines)
    assert last.WhichOneof("event") in ("result", "failure")
    return [e.log for e in lines], last


async def built(stub: PomegranateStub, project: str, app: str, application: int) -> pb.BuildResult:
    _, last = await build(stub, project, app, application)
    assert last.WhichOneof("event") == "result", last.failure
    return last.result


def release_spec(
    project: str,
    application: int,
    image: pb.BuildResult,
    replicas: int = 1,
    health_path: str = "/health",
    **kw: object,
) -> pb.ReleaseSpec:
    return pb.ReleaseSpec(
        project=project,
        application=application,
        image=image.image,
        processes=[
            pb.Process(type=kind, command=command, replicas=replicas)
            for kind, command in image.processes.items()
        ],
        hostnames=[f"{project}.localhost"],
        health_path=health_path,
        health_timeout=kw.pop("health_timeout", 20),
        **{**COMPLETE, **kw},
    )


# What the API's spec.py fills in: Pomegranate refuses a spec without them.
COMPLETE: dict[str, object] = {"port": 5000, "memory_mb": 256, "cpu": 0.5}


async def release(stub: PomegranateStub, spec: pb.ReleaseSpec) -> tuple[list[str], pb.ReleaseEvent]:
    events = [e async for e in stub.Release(spec, metadata=MD)]
    *lines, last = events
    assert all(e.WhichOneof("event") == "log" for e in lines)
    assert last.WhichOneof("event") in ("done", "failure")
    return [e.log for e in lines], last


async def deploy(
    stub: PomegranateStub, project: str, app: str, application: int, **kw: object
) -> pb.ReleaseDone:
    image = await built(stub, project, app, application)
    _, last = await release(stub, release_spec(project, application, image, **kw))
    assert last.WhichOneof("event") == "done", last.failure
    return last.done


async def get(port: int, path: str = "/") -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(f"http://127.0.0.1:{port}{path}")


async def processes(stub: PomegranateStub, project: str) -> list[pb.Container]:
    reply = await stub.ListProcesses(pb.ProjectRef(project=project), metadata=MD)
    return list(reply.containers)


async def other_projects_left_alone(docker: aiodocker.Docker, *exclude: str) -> list:
    """Desired entries that leave every other managed container on this engine untouched.

    The engine is shared with other test runs; Reconcile treats projects missing from the desired
    state as deleted, so each one found is declared with all its Applications in flight.
    """
    found = await docker.containers.list(all=True, filters={"label": ["paastech.managed=true"]})
    apps: dict[str, set[int]] = {}
    for container in found:
        own = parse_labels(container._container.get("Labels"))
        if own is not None and own.project not in exclude:
            apps.setdefault(own.project, set()).add(own.application)
    return [pb.DesiredProject(project=p, in_flight=sorted(a)) for p, a in apps.items()]


# ------------------------------------------------------------------------------------ tests


async def test_shared_secret_is_required(stub: PomegranateStub, server: tuple[str, Path]):
    ref = pb.ProjectRef(project="t-00000000")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ListProcesses(ref)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ListProcesses(ref, metadata=(("x-paastech-secret", "wrong"),))
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in stub.Watch(pb.WatchRequest(), metadata=(("x-paastech-secret", "x"),)):
            pass
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert list(await processes(stub, "t-00000000")) == []
    # Spooled sources left by a crash were removed when the server started.
    assert list((server[1] / "tmp").iterdir()) == []


async def test_build_streams_logs_then_result(stub: PomegranateStub, project: str):
    lines, last = await build(stub, project, "dockerfile")
    assert "-----> Building with the repository's Dockerfile" in lines
    assert any(line.startswith("STEP 1/") for line in lines)
    assert last.WhichOneof("event") == "result"
    # Pushed to the platform registry, named by digest.
    assert f"/paastech/app-{project}@sha256:" in last.result.image
    assert last.result.stack == "dockerfile"
    assert dict(last.result.processes) == {"web": ""}
    assert last.result.exposed_port == 5000


async def test_build_logs_arrive_live(
    stub: PomegranateStub, project: str, tmp_path: Path, server: tuple[str, Path]
):
    (tmp_path / "Dockerfile").write_text(
        f"FROM paastech/busybox:latest\nRUN echo started-{project} && sleep 2 && echo finished\n"
    )
    arrivals: dict[str, float] = {}
    async for event in stub.Build(chunks_of(project, 1, tar_dir(tmp_path)), metadata=MD):
        kind = event.WhichOneof("event")
        arrivals.setdefault(event.log if kind == "log" else kind, time.monotonic())
    assert "result" in arrivals
    # The line printed before the sleep arrived while the build was still running.
    assert arrivals["result"] - arrivals[f"started-{project}"] > 1.5
    assert list((server[1] / "tmp").iterdir()) == []


async def test_builds_wait_for_a_slot(stub: PomegranateStub, project: str, tmp_path: Path):
    async def slow_build(n: int) -> list[str]:
        source = tmp_path / str(n)
        source.mkdir()
        (source / "Dockerfile").write_text(
            f"FROM paastech/busybox:latest\nRUN echo {project}-{n} && sleep 1\n"
        )
        lines, last = await build(stub, project, "", n, source=tar_dir(source))
        assert last.WhichOneof("event") == "result", last.failure
        return lines

    # The test server allows one build at a time.
    first, second = await asyncio.gather(slow_build(1), slow_build(2))
    waited = [lines for lines in (first, second) if "waiting for a build slot" in lines[0]]
    assert len(waited) == 1


async def test_build_failure_names_the_run_step(stub: PomegranateStub, project: str):
    lines, last = await build(stub, project, "build-fails")
    assert last.WhichOneof("event") == "failure"
    assert "STEP 2/" in last.failure.reason and "RUN" in last.failure.reason
    assert "exited with code 3" in last.failure.reason
    assert "error: fixture build-fails always fails here" in last.failure.last_lines
    assert "error: fixture build-fails always fails here" in lines


async def test_unrecognised_source_fails_clearly(
    stub: PomegranateStub, project: str, tmp_path: Path
):
    (tmp_path / "README.md").write_text("nothing to run\n")
    _, last = await build(stub, project, "", source=tar_dir(tmp_path))
    assert "no Dockerfile, Procfile" in last.failure.reason


async def test_build_bad_messages_are_invalid_argument(stub: PomegranateStub, project: str):
    async def data_first():
        yield pb.BuildChunk(data=b"not a header")

    async def two_headers():
        yield pb.BuildChunk(header=pb.BuildHeader(project=project, application=1))
        yield pb.BuildChunk(header=pb.BuildHeader(project=project, application=1))

    async def nothing():
        return
        yield  # an empty request stream

    async def bad_project():
        yield pb.BuildChunk(header=pb.BuildHeader(project="../etc", application=1))

    for requests in (data_first, two_headers, nothing, bad_project):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            async for _ in stub.Build(requests(), metadata=MD):
                pass
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, requests.__name__


async def test_build_source_size_is_limited(stub: PomegranateStub, project: str):
    big = b"\0" * (MAX_SOURCE_BYTES + CHUNK)
    _, last = await build(stub, project, "", source=big)
    assert last.failure.reason == "the source archive is larger than 4 MB"


async def test_release_switches_to_the_new_application(stub: PomegranateStub, project: str):
    v1 = await deploy(stub, project, "python", 1)
    assert [(c.process, c.replica, c.application) for c in v1.containers] == [("web", 1, 1)]
    assert list(v1.stopped_applications) == []
    old_port = v1.containers[0].host_port
    assert (await get(old_port)).json()["version"] == "v1"

    image = await built(stub, project, "python", 2)
    spec = release_spec(project, 2, image, replicas=2, env={"VERSION": "v2"})
    lines, last = await release(stub, spec)
    assert last.WhichOneof("event") == "done", last.failure
    assert "Starting web.1" in lines and "Starting web.2" in lines
    assert "web.1 is healthy" in lines and "web.2 is healthy" in lines
    assert list(last.done.stopped_applications) == [1]
    assert sorted(c.replica for c in last.done.containers) == [1, 2]
    for container in last.done.containers:
        body = (await get(container.host_port)).json()
        assert body["version"] == "v2"
        assert body["env"]["PAASTECH_RELEASE"] == "2"
    with pytest.raises(httpx.HTTPError):
        await get(old_port)

    listed = await processes(stub, project)
    assert [(c.application, c.process, c.replica) for c in listed] == [(2, "web", 1), (2, "web", 2)]
    assert all(c.running and c.state == "running" and c.started_at for c in listed)
    assert {c.id for c in listed} == {c.id for c in last.done.containers}

    await stub.StopProject(pb.ProjectRef(project=project), metadata=MD)
    assert await processes(stub, project) == []


async def test_failed_release_keeps_the_old_one_live(stub: PomegranateStub, project: str):
    v1 = await deploy(stub, project, "python", 1)
    image = await built(stub, project, "crash-on-start", 2)
    lines, last = await release(stub, release_spec(project, 2, image, health_path="/"))
    assert last.WhichOneof("event") == "failure"
    assert last.failure.reason.startswith("web.1 failed its health check: ")
    assert any("boom" in line for line in last.failure.last_lines)
    assert "Starting web.1" in lines
    assert (await get(v1.containers[0].host_port)).json()["version"] == "v1"
    listed = await processes(stub, project)
    assert [(c.application, c.id) for c in listed] == [(1, v1.containers[0].id)]


async def test_cancelled_release_leaves_no_new_containers(stub: PomegranateStub, project: str):
    v1 = await deploy(stub, project, "python", 1)
    image = await built(stub, project, "never-healthy", 2)
    call = stub.Release(release_spec(project, 2, image, health_timeout=60), metadata=MD)
    async for event in call:
        if event.log == "Starting web.1":
            break
    # The new container exists (polled: it is created just after that line) and is being
    # health-checked; the API goes away.
    async with within(30, "the new release's container to appear"):
        while {c.application for c in await processes(stub, project)} != {1, 2}:
            await asyncio.sleep(0.2)
    call.cancel()
    async with within(15, "the cancelled release's containers to go"):
        while {c.application for c in await processes(stub, project)} != {1}:
            await asyncio.sleep(0.2)
    assert (await get(v1.containers[0].host_port)).json()["version"] == "v1"


async def test_release_of_a_missing_image_fails_to_start(stub: PomegranateStub, project: str):
    image = pb.BuildResult(image=f"paastech/app-{project}:9", processes={"web": ""})
    lines, last = await release(stub, release_spec(project, 9, image))
    assert lines == ["Starting web.1"]
    assert last.failure.reason.startswith("web.1 failed to start: ")
    assert await processes(stub, project) == []


async def test_bad_release_spec_is_invalid_argument(stub: PomegranateStub, project: str):
    for spec in (
        pb.ReleaseSpec(project="Not_A_Name", application=1, image="x"),
        pb.ReleaseSpec(project=project, application=0, image="x"),
        pb.ReleaseSpec(project=project, application=1, image=""),
        pb.ReleaseSpec(
            project=project, application=1, image="x", processes=[pb.Process(type="web")] * 2
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            async for _ in stub.Release(spec, metadata=MD):
                pass
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_runtime_logs_follow_in_order_and_pick_up_new_releases(
    stub: PomegranateStub, project: str
):
    await deploy(stub, project, "ticker", 1, health_path="/")
    call = stub.RuntimeLogs(pb.LogsRequest(project=project, tail=100_000, follow=True), metadata=MD)
    received: list[pb.LogLine] = []
    new_release: asyncio.Task | None = None
    try:
        async with asyncio.timeout(90):
            async for line in call:
                received.append(line)
                if len(received) == 30:
                    # Containers started while following are attached too.
                    new_release = asyncio.create_task(deploy(stub, project, "ticker", 2))
                if line.application == 2:
                    break
    finally:
        call.cancel()
    assert new_release is not None
    await new_release
    first = [(line.process, line.replica, line.application, line.line) for line in received[:3]]
    assert first == [("web", 1, 1, "tick 1"), ("web", 1, 1, "tick 2"), ("web", 1, 1, "tick 3")]
    v1 = [line.line for line in received if line.application == 1]
    assert v1 == [f"tick {n}" for n in range(1, len(v1) + 1)]
    assert received[-1].application == 2 and received[-1].line.startswith("tick ")


async def test_runtime_logs_without_follow_end(stub: PomegranateStub, project: str):
    done = await deploy(stub, project, "ticker", 1, health_path="/")
    async with within(30, "the ticker to print 6 ticks"):  # more than the tail of 3
        while (await get(done.containers[0].host_port)).json()["ticks"] < 6:
            await asyncio.sleep(0.1)
    async with asyncio.timeout(15):
        lines = [
            line
            async for line in stub.RuntimeLogs(
                pb.LogsRequest(project=project, tail=3, follow=False), metadata=MD
            )
        ]
    assert len(lines) == 3 and all(line.line.startswith("tick ") for line in lines)
    assert [int(line.line.split()[1]) for line in lines] != [1, 2, 3]  # the last three


async def test_watch_reports_oom_kill(stub: PomegranateStub, project: str):
    done = await deploy(stub, project, "memory-hog", 1, health_path="/", memory_mb=64)
    container = done.containers[0]
    call = stub.Watch(pb.WatchRequest(), metadata=MD)
    events: list[pb.RuntimeEvent] = []

    async def collect() -> pb.RuntimeEvent:
        async for event in call:
            if event.project == project:
                events.append(event)
                if event.kind == "die":
                    return event
        raise AssertionError("Watch ended")

    watcher = asyncio.create_task(collect())
    try:
        await asyncio.sleep(0.5)  # let the event stream open
        with contextlib.suppress(httpx.HTTPError):
            await get(container.host_port, "/hog")
        async with asyncio.timeout(30):
            died = await watcher
    finally:
        call.cancel()
        watcher.cancel()
    assert died.oom_killed
    assert died.container_id == container.id
    assert (died.application, died.process, died.replica) == (1, "web", 1)
    assert died.exit_code == 137


async def test_reconcile(
    stub: PomegranateStub, project: str, other_project: str, docker: aiodocker.Docker
):
    image = await built(stub, project, "python", 1)
    _, last = await release(stub, release_spec(project, 1, image, replicas=2))
    assert last.WhichOneof("event") == "done", last.failure
    await deploy(stub, other_project, "python", 1)  # a project about to be "deleted"
    (doomed,) = await processes(stub, other_project)
    assert doomed.name.endswith(f".{other_project}.1.web.1")
    listed = await processes(stub, project)
    web1, web2 = sorted(listed, key=lambda c: c.replica)
    await docker.containers.container(web2.id).delete(force=True)  # docker rm -f

    desired = pb.DesiredState(
        projects=[
            pb.DesiredProject(project=project, live=release_spec(project, 1, image, replicas=2)),
            *await other_projects_left_alone(docker, project, other_project),
        ]
    )
    report = await stub.Reconcile(desired, metadata=MD)
    assert list(report.adopted) == [web1.name]
    assert list(report.started) == [web2.name]
    assert list(report.removed) == [doomed.name]
    assert await processes(stub, other_project) == []

    listed = await processes(stub, project)
    assert [(c.replica, c.running) for c in listed] == [(1, True), (2, True)]
    restarted = next(c for c in listed if c.replica == 2)
    assert restarted.id != web2.id
    async with within(20, "the re-started replica to answer"):
        while True:
            try:
                if (await get(restarted.host_port, "/health")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)

    # Scaled down to one replica in the desired state: the extra one goes; a second run adopts.
    desired = pb.DesiredState(
        projects=[
            pb.DesiredProject(project=project, live=release_spec(project, 1, image, replicas=1)),
            *await other_projects_left_alone(docker, project),
        ]
    )
    report = await stub.Reconcile(desired, metadata=MD)
    assert (list(report.adopted), list(report.started)) == ([web1.name], [])
    assert list(report.removed) == [web2.name]


async def test_prune_images_keeps_only_listed_tags(
    stub: PomegranateStub, project: str, docker: aiodocker.Docker
):
    tags = []
    for n in (1, 2, 3):
        # A different tree each time: an identical rebuild is the identical image (same digest).
        source = tar_dir(APPS / "static", {"index.html": f"<p>v{n}</p>\n"})
        _, last = await build(stub, project, "static", n, source)
        assert last.WhichOneof("event") == "result", last.failure
        tags.append(last.result.image)
    assert len(set(tags)) == 3
    reply = await stub.PruneImages(pb.PruneRequest(project=project, keep=[tags[2]]), metadata=MD)
    assert sorted(reply.removed) == sorted(tags[:2])
    # Gone from the platform registry too (issue 10): only v3's manifest is left.
    left = await Registry(Settings()).tags(project)
    assert list(left) == ["3"] and left["3"] == tags[2].partition("@")[2]


async def test_remove_project_removes_its_network(
    stub: PomegranateStub, project: str, docker: aiodocker.Docker
):
    """Issue 11: a project's own network lives as long as the project (its subnet returns to the
    pool)."""
    done = await deploy(stub, project, "dockerfile", 1)
    (container,) = done.containers
    data = (await docker.containers.get(container.id))._container
    (network,) = data["NetworkSettings"]["Networks"]
    assert network.endswith(f".{project}")
    assert (await (await docker.networks.get(network)).show())["Name"] == network
    await stub.RemoveProject(pb.ProjectRef(project=project), metadata=MD)
    with pytest.raises(aiodocker.DockerError) as error:
        await docker.networks.get(network)
    assert error.value.status == 404
    assert await processes(stub, project) == []


async def test_restart_processes_in_place(stub: PomegranateStub, project: str):
    """Issue 19: RestartProcesses restarts the asked replica in place (same container, started
    again, healthy); bad requests are INVALID_ARGUMENT, nothing to restart FAILED_PRECONDITION."""
    done = await deploy(stub, project, "dockerfile", 1, replicas=2)
    before = {c.replica: c for c in done.containers}
    assert sorted(before) == [1, 2]
    request = pb.RestartRequest(project=project, application=1, process="web", replica=2)
    (restarted,) = (await stub.RestartProcesses(request, metadata=MD)).containers
    assert (restarted.id, restarted.replica, restarted.running) == (before[2].id, 2, True)
    assert restarted.started_at != before[2].started_at
    now = {c.replica: c for c in await processes(stub, project)}
    assert now[1].started_at == before[1].started_at
    assert now[2].started_at == restarted.started_at
    assert (await get(now[2].host_port, "/health")).status_code == 200

    bad = [
        (pb.RestartRequest(project="Not_A_Project", application=1, process="web"), "INVALID"),
        (pb.RestartRequest(project=project, application=0, process="web"), "INVALID"),
        (pb.RestartRequest(project=project, application=1, process="Web"), "INVALID"),
        (pb.RestartRequest(project=project, application=1, process="web", replica=-1), "INVALID"),
        (pb.RestartRequest(project=project, application=1, process="worker"), "PRECONDITION"),
        (
            pb.RestartRequest(project=project, application=1, process="web", replica=3),
            "PRECONDITION",
        ),
        (pb.RestartRequest(project=project, application=2, process="web"), "PRECONDITION"),
    ]
    codes = {
        "INVALID": grpc.StatusCode.INVALID_ARGUMENT,
        "PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
    }
    for request, code in bad:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.RestartProcesses(request, metadata=MD)
        assert error.value.code() == codes[code], (request, error.value.details())
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.RestartProcesses(
            pb.RestartRequest(project=project, application=1, process="web")
        )
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert {c.replica: c.started_at for c in await processes(stub, project)} == {
        1: now[1].started_at,
        2: now[2].started_at,
    }


async def test_run_bad_messages_are_invalid_argument(stub: PomegranateStub, project: str):
    """Issue 14: Run refuses a stream that does not start with a usable start message, before
    any container exists."""
    spec = pb.ReleaseSpec(project=project, application=1, image="x")

    def start(**fields: object) -> pb.RunInput:
        return pb.RunInput(start=pb.RunStart(**fields))  # type: ignore[arg-type]

    async def stdin_first():
        yield pb.RunInput(stdin=b"ls\n")

    async def nothing():
        return
        yield  # an empty request stream

    async def empty_command():
        yield start(spec=spec, command=[])

    async def blank_command():
        yield start(spec=spec, command=[""])

    async def bad_project():
        yield start(spec=pb.ReleaseSpec(project="../etc", application=1, image="x"), command=["ls"])

    async def no_image():
        yield start(spec=pb.ReleaseSpec(project=project, application=1), command=["ls"])

    for requests in (stdin_first, nothing, empty_command, blank_command, bad_project, no_image):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            async for _ in stub.Run(requests(), metadata=MD):
                pass
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, requests.__name__
    assert await processes(stub, project) == []


async def test_run_of_a_missing_image_fails_cleanly(stub: PomegranateStub, project: str):
    spec = pb.ReleaseSpec(
        project=project,
        application=9,
        image=f"paastech/app-{project}:9",
        hostnames=[f"{project}.localhost"],
        health_timeout=20,
        **COMPLETE,  # type: ignore[arg-type]
    )

    async def requests():
        yield pb.RunInput(start=pb.RunStart(spec=spec, command=["echo", "hi"]))

    events = [event async for event in stub.Run(requests(), metadata=MD)]
    assert [e.WhichOneof("event") for e in events] == ["failure"]
    assert events[0].failure.reason.startswith("the command could not start: ")
    assert await processes(stub, project) == []
