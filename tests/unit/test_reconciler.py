"""Reconciliation decisions and the release switch, over an in-memory fake Runtime."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from backend import labels as L
from backend.labels import Ownership
from backend.pomegranate import release as release_module
from backend.pomegranate.reconciler import DesiredProject, decide, reconcile
from backend.pomegranate.release import Process, ReleaseFailed, ReleasePlan, VolumePlan, release
from backend.pomegranate.runtime import (
    BuiltImage,
    ContainerInfo,
    HealthCheckError,
    Mount,
    NotOwned,
    ProcessSpec,
    Runtime,
    RuntimeEvent,
    VolumeInfo,
    VolumeInUse,
)
from backend.settings import Settings

SETTINGS = Settings(secret_key="unit")


def name_of(project: str, application: int, process: str, replica: int) -> str:
    return L.container_name(project, application, process, replica, instance=SETTINGS.instance)


class FakeRuntime:
    """Containers in a dict; health checks fail for names listed in ``unhealthy`` and hang for
    names in ``slow``."""

    def __init__(self) -> None:
        self.containers: dict[str, ContainerInfo] = {}
        self.unhealthy: dict[str, str] = {}
        self.slow: set[str] = set()
        self.waiting = asyncio.Event()  # set when a slow health check is under way
        self.stopped: list[str] = []
        self.started_specs: list[ProcessSpec] = []
        self.removed_networks: list[str] = []
        self.ran: list[ProcessSpec] = []  # run_once calls
        self.run_exit_code = 0
        self._ids = itertools.count(1)
        # Volumes (issue 15): docker name -> its info; container id -> the volumes it mounts.
        self.volumes: dict[str, VolumeInfo] = {}
        self.mounted: dict[str, list[str]] = {}

    def add(
        self, project: str, application: int, process: str, replica: int, state: str = "running"
    ) -> ContainerInfo:
        info = ContainerInfo(
            id=f"c{next(self._ids)}",
            name=name_of(project, application, process, replica),
            ownership=Ownership(project, application, process, replica),
            state=state,
            running=state == "running",
            host_port=None,
            exit_code=None if state == "running" else 1,
            oom_killed=False,
            started_at=None,
            networks=[L.network_name(project, instance=SETTINGS.instance)],
        )
        self.containers[info.id] = info
        return info

    async def build(self, project, application, source, on_log) -> BuiltImage:
        raise NotImplementedError

    async def start(self, spec: ProcessSpec) -> ContainerInfo:
        name = name_of(spec.project, spec.application, spec.process_type, spec.replica)
        for info in list(self.containers.values()):
            if info.name == name:
                del self.containers[info.id]
        self.started_specs.append(spec)
        info = self.add(spec.project, spec.application, spec.process_type, spec.replica)
        info.image = spec.image
        for mount in spec.mounts:  # created on first use, as the engine's runtime does
            self.volumes.setdefault(
                mount.docker_name, VolumeInfo(spec.project, mount.volume, mount.docker_name, 0)
            )
        self.mounted[info.id] = [m.docker_name for m in spec.mounts]
        return info

    async def start_oneoff(self, spec, command, *, tty, attach, size=None):
        # One-off commands need a real engine (stdin, TTY): tests/cli/test_run.py runs them.
        raise NotImplementedError

    def add_oneoff(self, project: str, application: int, replica: int) -> ContainerInfo:
        info = self.add(project, application, L.ONEOFF_PROCESS, replica)
        info.labels = {L.ONEOFF: L.MANAGED_VALUE}
        return info

    async def run_once(self, spec: ProcessSpec, on_log, timeout) -> int:  # noqa: ASYNC109
        self.ran.append(spec)
        await on_log(f"ran {spec.command} with {len(self.containers)} containers present")
        return self.run_exit_code

    async def wait_healthy(self, container: ContainerInfo, path, timeout) -> None:  # noqa: ASYNC109
        if container.name in self.slow:
            self.waiting.set()
            await asyncio.sleep(3600)
        if container.name in self.unhealthy:
            raise HealthCheckError(self.unhealthy[container.name], ["boom"])

    async def stop(self, container_id: str, timeout: float = 10) -> None:  # noqa: ASYNC109
        info = self.containers.get(container_id)
        if info is not None:
            self.stopped.append(info.name)
            info.state, info.running = "exited", False

    async def restart(
        self,
        container_id: str,
        project: str,
        timeout: float = 10,  # noqa: ASYNC109
    ) -> ContainerInfo:
        info = self.containers.get(container_id)
        if info is None or info.ownership is None or info.ownership.project != project:
            raise NotOwned(container_id)
        info.state, info.running = "running", True
        return info

    async def remove(self, container_id: str) -> None:
        self.containers.pop(container_id, None)

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        return self.containers.get(container_id)

    async def list_containers(
        self, project: str | None = None, *, detail: bool = True
    ) -> list[ContainerInfo]:
        return sorted(
            (
                c
                for c in self.containers.values()
                if project is None or (c.ownership and c.ownership.project == project)
            ),
            key=lambda c: c.name,
        )

    async def logs(self, container_id, *, follow, tail) -> AsyncIterator[str]:
        return
        yield

    async def events(self) -> AsyncIterator[RuntimeEvent]:
        return
        yield

    async def list_images(self, project: str) -> list[str]:
        return []

    async def remove_image(self, tag: str, *, force: bool = False) -> None:
        return None

    async def remove_build_cache(self, project: str) -> None:
        return None

    async def remove_project_network(self, project: str) -> None:
        self.removed_networks.append(project)

    async def list_volumes(
        self, projects: list[str] | None = None, *, sizes: bool = False
    ) -> list[VolumeInfo]:
        return [v for v in self.volumes.values() if projects is None or v.project in projects]

    async def remove_volume(self, project: str, docker_name: str) -> None:
        found = self.volumes.get(docker_name)
        if found is None:
            return
        if found.project != project:
            raise NotOwned(docker_name)
        if any(docker_name in self.mounted.get(c, []) for c in self.containers):
            raise VolumeInUse(docker_name)
        del self.volumes[docker_name]

    async def close(self) -> None:
        return None

    def names(self) -> list[str]:
        return sorted(c.name for c in self.containers.values())


def plan(project: str, application: int, **replicas: int) -> ReleasePlan:
    return ReleasePlan(
        project=project,
        application=application,
        image=f"paastech/app-{project}:{application}",
        processes=[Process(kind, f"run {kind}", n) for kind, n in replicas.items()],
        hostnames=[f"{project}.localhost"],
        health_path="/health",
        health_timeout=5,
    )


class Logs(list):
    async def __call__(self, line: str) -> None:
        self.append(line)


def test_fake_runtime_implements_the_protocol():
    assert isinstance(FakeRuntime(), Runtime)


def test_decide_covers_every_case():
    rt = FakeRuntime()
    adopted = rt.add("live", 3, "web", 1)
    restarting = rt.add("live", 3, "web", 2, state="restarting")
    exited = rt.add("live", 3, "worker", 1, state="exited")
    beyond_scale = rt.add("live", 3, "web", 3)
    unknown_process = rt.add("live", 3, "cron", 1)
    old_release = rt.add("live", 2, "web", 1)
    in_flight = rt.add("live", 4, "web", 1)
    half_started = rt.add("live", 5, "web", 1)
    orphan = rt.add("deleted", 1, "web", 1)
    stopped_project = rt.add("stopped", 7, "web", 1)
    malformed = rt.add("live", 3, "web", 9)
    malformed.ownership = None
    desired = [
        DesiredProject("live", plan("live", 3, web=2, worker=2), in_flight={4}),
        DesiredProject("stopped", None),
        DesiredProject("fresh", plan("fresh", 1, web=1)),
    ]
    decisions = decide(desired, list(rt.containers.values()))
    assert decisions.adopt == [adopted, restarting]
    assert decisions.recreate == [exited]
    # Not a release container (e.g. a legacy-builder intermediate): never touched.
    assert malformed not in decisions.remove and malformed not in decisions.leave
    assert decisions.leave == [in_flight]
    assert sorted(c.name for c in decisions.remove) == sorted(
        c.name
        for c in (
            beyond_scale,
            unknown_process,
            old_release,
            half_started,
            orphan,
            stopped_project,
        )
    )
    assert decisions.missing == [("live", "worker", 2), ("fresh", "web", 1)]


def test_decide_leaves_one_offs_to_their_sessions():
    """Issue 14: a one-off whose session runs in this Pomegranate is left alone (even of an old
    release); one whose session is gone, or of a deleted project, is removed."""
    rt = FakeRuntime()
    web = rt.add("live", 3, "web", 1)
    active = rt.add_oneoff("live", 2, 123456)
    abandoned = rt.add_oneoff("live", 3, 234567)
    orphan = rt.add_oneoff("deleted", 1, 345678)
    desired = [DesiredProject("live", plan("live", 3, web=1))]
    decisions = decide(desired, list(rt.containers.values()), active_oneoffs=frozenset({active.id}))
    assert decisions.adopt == [web]
    assert decisions.leave == [active]
    assert sorted(c.name for c in decisions.remove) == sorted([abandoned.name, orphan.name])
    assert decisions.missing == []


async def test_a_release_switch_leaves_one_offs_running():
    rt = FakeRuntime()
    rt.add("app", 1, "web", 1)
    oneoff = rt.add_oneoff("app", 1, 100001)
    result = await release(rt, plan("app", 2, web=1), Logs(), SETTINGS)
    assert result.stopped_applications == [1]
    names = sorted(c.name for c in rt.containers.values())
    assert names == sorted([oneoff.name, name_of("app", 2, "web", 1)])


async def test_reconcile_applies_the_decisions():
    rt = FakeRuntime()
    rt.add("app", 2, "web", 1)
    rt.add("app", 2, "worker", 1, state="exited")
    rt.add("app", 1, "web", 1)  # the previous release, left by a crash mid-switch
    rt.add("app", 3, "web", 1)  # being deployed right now
    rt.add("gone", 4, "web", 1)
    rt.add("busy", 1, "web", 1)  # a release of it runs in this process: untouched
    desired = [
        DesiredProject("app", plan("app", 2, web=2, worker=1), in_flight={3}),
    ]
    result = await reconcile(rt, desired, SETTINGS, skip={"busy"})
    assert result.adopted == ["paastech.app.2.web.1"]
    assert sorted(result.started) == ["paastech.app.2.web.2", "paastech.app.2.worker.1"]
    assert sorted(result.removed) == ["paastech.app.1.web.1", "paastech.gone.4.web.1"]
    assert rt.removed_networks == ["gone"]  # the deleted project's network, not app's
    assert rt.names() == [
        "paastech.app.2.web.1",
        "paastech.app.2.web.2",
        "paastech.app.2.worker.1",
        "paastech.app.3.web.1",
        "paastech.busy.1.web.1",
    ]
    assert all(c.running for c in rt.containers.values())
    worker = next(s for s in rt.started_specs if s.process_type == "worker")
    assert worker.command == "run worker" and worker.hostnames == [] and worker.health_path is None
    web = next(s for s in rt.started_specs if s.process_type == "web")
    assert web.hostnames == ["app.localhost"] and web.health_path == "/health"
    assert web.pids_limit == SETTINGS.pids_limit

    # Nothing left to do: a second pass only adopts.
    again = await reconcile(rt, desired, SETTINGS, skip={"busy"})
    assert (len(again.adopted), again.started, again.removed) == (3, [], [])


def test_decide_adopts_only_when_name_network_and_labels_agree():
    rt = FakeRuntime()
    good = rt.add("app", 2, "web", 1)
    # Labels of app's live web.2, but the name another project's Procfile could produce.
    forged_name = rt.add("app", 2, "web", 2)
    forged_name.name = "paastech.app-2-web.2.web.2"
    # Right name and labels, but on another project's network.
    wrong_net = rt.add("app", 2, "worker", 1)
    wrong_net.networks = [L.network_name("evil", instance=SETTINGS.instance)]
    # A container of before issue 11: old name, shared network.
    legacy = rt.add("app", 2, "web", 3)
    legacy.name = L.legacy_container_name("app", 2, "web", 3)
    legacy.networks = ["paastech"]
    decisions = decide(
        [DesiredProject("app", plan("app", 2, web=3, worker=1))],
        list(rt.containers.values()),
        instance=SETTINGS.instance,
    )
    assert decisions.adopt == [good]
    assert decisions.migrate == [legacy]
    assert sorted(c.name for c in decisions.remove) == sorted([forged_name.name, wrong_net.name])
    assert decisions.missing == [("app", "web", 2), ("app", "worker", 1)]


async def test_reconcile_migrates_a_legacy_container_once_its_replacement_is_healthy():
    rt = FakeRuntime()
    legacy = rt.add("app", 2, "web", 1)
    legacy.name = L.legacy_container_name("app", 2, "web", 1)
    desired = [DesiredProject("app", plan("app", 2, web=1))]

    # The replacement fails its health check: the old container keeps serving, untouched.
    rt.unhealthy[name_of("app", 2, "web", 1)] = "container exited with code 1"
    result = await reconcile(rt, desired, SETTINGS)
    assert (result.started, result.removed) == ([], [])
    assert rt.names() == [legacy.name] and legacy.running and rt.stopped == []

    # Healthy: the new one replaces it, and the next pass adopts the new one.
    rt.unhealthy.clear()
    result = await reconcile(rt, desired, SETTINGS)
    assert result.started == [name_of("app", 2, "web", 1)]
    assert result.removed == [legacy.name]
    assert rt.names() == [name_of("app", 2, "web", 1)]
    again = await reconcile(rt, desired, SETTINGS)
    assert (again.adopted, again.started, again.removed) == ([name_of("app", 2, "web", 1)], [], [])


@pytest.fixture(autouse=True)
def no_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(release_module, "WEB_DRAIN_SECONDS", 0.0)


async def test_release_switches_and_reports_stopped_applications():
    rt = FakeRuntime()
    rt.add("app", 1, "web", 1)
    rt.add("app", 2, "web", 1, state="exited")  # a failed earlier attempt
    rt.add("other", 1, "web", 1)
    logs = Logs()
    result = await release(rt, plan("app", 3, web=2, worker=1), logs, SETTINGS)
    assert sorted(c.name for c in result.containers) == [
        "paastech.app.3.web.1",
        "paastech.app.3.web.2",
        "paastech.app.3.worker.1",
    ]
    assert result.stopped_applications == [1, 2]
    assert rt.names() == [*sorted(c.name for c in result.containers), "paastech.other.1.web.1"]
    assert logs[:3] == ["Starting web.1", "Starting web.2", "Starting worker.1"]
    assert {"web.1 is healthy", "web.2 is healthy", "worker.1 is healthy"} <= set(logs)
    assert logs[-1] == "Release 3 is live"


async def test_failed_health_check_removes_the_new_containers_only():
    rt = FakeRuntime()
    old = rt.add("app", 1, "web", 1)
    rt.unhealthy["paastech.app.2.web.2"] = "container exited with code 1"
    with pytest.raises(ReleaseFailed) as error:
        await release(rt, plan("app", 2, web=2), Logs(), SETTINGS)
    assert error.value.reason == "web.2 failed its health check: container exited with code 1"
    assert error.value.last_lines == ["boom"]
    assert rt.names() == [old.name] and old.running and rt.stopped == []


async def test_cancelled_release_removes_the_new_containers():
    rt = FakeRuntime()
    old = rt.add("app", 1, "web", 1)
    rt.slow.add("paastech.app.2.web.1")
    task = asyncio.create_task(release(rt, plan("app", 2, web=1), Logs(), SETTINGS))
    await rt.waiting.wait()
    assert "paastech.app.2.web.1" in rt.names()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rt.names() == [old.name] and old.running


async def test_release_phase_runs_once_before_any_new_container():
    rt = FakeRuntime()
    rt.add("app", 1, "web", 1)
    logs = Logs()
    await release(rt, plan("app", 2, web=1, release=0), logs, SETTINGS)
    (spec,) = rt.ran
    assert (spec.process_type, spec.command, spec.hostnames) == ("release", "run release", [])
    # Only the old release's container existed while it ran; nothing of v2 had started.
    assert "release: ran run release with 1 containers present" in logs
    assert logs.index("Release phase done") < logs.index("Starting web.1")
    assert rt.names() == [name_of("app", 2, "web", 1)]


async def test_failed_release_phase_starts_nothing_and_keeps_the_old_release():
    rt = FakeRuntime()
    rt.add("app", 1, "web", 1)
    rt.run_exit_code = 3
    with pytest.raises(ReleaseFailed) as info:
        await release(rt, plan("app", 2, web=2, release=0), Logs(), SETTINGS)
    assert info.value.reason == "the release phase (run release) exited with code 3"
    assert info.value.last_lines == ["ran run release with 1 containers present"]
    assert rt.started_specs == []
    assert rt.names() == [name_of("app", 1, "web", 1)]


def with_volumes(p: ReleasePlan) -> ReleasePlan:
    p.volumes = [
        VolumePlan("data", "k1k1k1", "/data", ("web",)),
        VolumePlan("jobs", "k2k2k2", "/app/jobs", ("web", "worker")),
    ]
    return p


async def test_a_release_mounts_each_volume_into_every_replica_of_its_process_types():
    rt = FakeRuntime()
    await release(rt, with_volumes(plan("app", 1, web=2, worker=1)), Logs(), SETTINGS)
    mounts = {
        f"{s.process_type}.{s.replica}": sorted(m.path for m in s.mounts) for s in rt.started_specs
    }
    assert mounts == {
        "web.1": ["/app/jobs", "/data"],
        "web.2": ["/app/jobs", "/data"],
        "worker.1": ["/app/jobs"],
    }
    # Shared by the replicas: one Docker volume per project volume, named for project and key.
    web = [s for s in rt.started_specs if s.process_type == "web"]
    assert {m.docker_name for s in web for m in s.mounts} == {
        "paastech.app.data.k1k1k1",
        "paastech.app.jobs.k2k2k2",
    }
    assert sorted(rt.volumes) == ["paastech.app.data.k1k1k1", "paastech.app.jobs.k2k2k2"]


async def test_reconcile_recreates_a_replica_with_its_volumes():
    rt = FakeRuntime()
    live = with_volumes(plan("app", 2, web=1))
    rt.add("app", 2, "web", 1, state="exited")
    await reconcile(rt, [DesiredProject("app", live)], SETTINGS)
    (spec,) = rt.started_specs
    assert spec.mounts == [
        Mount("data", "paastech.app.data.k1k1k1", "/data"),
        Mount("jobs", "paastech.app.jobs.k2k2k2", "/app/jobs"),
    ]
