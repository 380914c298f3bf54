"""The deployer over a fake Pomegranate (services/applications/): the pipeline's stages, the
queue's replacement, a stage's failure, rollback targets, retention and runtime events; fast
(an in-memory database, no Docker). The status table itself: test_application_status.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tortoise import Tortoise

from backend.alerts import triggers as alert_triggers
from backend.db.models import Application, BuildLog, Client, Project, StatusChange
from backend.db.models import ApplicationStatus as S
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.rpc import pomegranate_types as pt
from backend.rpc.pomegranate_client import BuildOutput, DeployFailed, LogSink, ReleaseOutput
from backend.services.applications import config_changes, retention
from backend.services.applications import deployer as deployer_module
from backend.services.applications.deployer import Deployer
from backend.services.applications.status import IllegalTransition, set_status
from backend.settings import Settings
from tests.support.polling import within


class FakePomegranate:
    """Records what the deployer asks; a build can be held, a release made to fail."""

    def __init__(self) -> None:
        self.built: list[int] = []
        self.released: list[pt.ReleaseSpec] = []
        self.pruned: list[list[str]] = []
        self.hold_build: asyncio.Event | None = None
        self.building = asyncio.Event()
        self.stopped: list[str] = []
        self.release_failure: DeployFailed | None = None

    async def build(
        self, project: str, application: int, source: Path, on_log: LogSink
    ) -> BuildOutput:
        self.built.append(application)
        self.building.set()
        await on_log("installing dependencies")
        if self.hold_build is not None:
            await self.hold_build.wait()
        return BuildOutput(
            image=f"registry/{project}@sha256:{application:064d}",
            stack="python",
            processes={"web": "gunicorn app", "worker": "python worker.py"},
            exposed_port=None,
            image_bytes=1024,
        )

    async def release(self, spec: pt.ReleaseSpec, on_log: LogSink) -> ReleaseOutput:
        self.released.append(spec)
        await on_log("starting web.1")
        if self.release_failure is not None:
            raise self.release_failure
        return ReleaseOutput(containers=[])

    async def stop_project(self, project: str) -> None:
        self.stopped.append(project)

    async def prune_images(self, project: str, keep: list[str]) -> list[str]:
        self.pruned.append(keep)
        return []

    async def list_volumes(self, projects: list[str], *, sizes: bool = False) -> list:
        return []

    async def close(self) -> None:
        return None


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Deployer, FakePomegranate, Project]]:
    await Tortoise.init(
        db_url="sqlite://:memory:", modules={"models": ["backend.db.models"]}, use_tz=True
    )
    await Tortoise.generate_schemas()
    owner = await Client.create(email="d@example.com", username="deployer", password_hash="x")
    project = await Project.create(owner=owner, name="blog")
    fake = FakePomegranate()
    settings = Settings(secret_key="unit", data_dir=tmp_path, images_kept_per_project=2)
    deployer = Deployer(fake, settings)  # type: ignore[arg-type]  # the fake has what it uses
    deployer.connected.set()  # as if the watch stream were up
    deployer.queue.tidy_delay = 0  # retention as soon as the queue is idle (one test sets it)
    yield deployer, fake, project
    await deployer.stop()
    await Tortoise.close_connections()


def _source(deployer: Deployer, name: str) -> Path:
    path = deployer.settings.data_dir / "tmp" / f"source-{name}.tar"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"tar")
    return path


async def _push(deployer: Deployer, project: Project, name: str) -> Application:
    return await deployer.deploy_source(
        project, _source(deployer, name), commit_sha="a" * 40, cause="push"
    )


async def _until(app: Application, *statuses: S) -> Application:
    async with within(10, lambda: f"v{app.number} to reach {statuses}, is {app.status.value}"):
        while True:
            await app.refresh_from_db()
            if app.status in statuses:
                return app
            await asyncio.sleep(0.01)


async def _history(app: Application) -> list[S]:
    rows = await StatusChange.filter(application=app).order_by("id")
    return [row.status for row in rows]


async def _log(app: Application) -> list[str]:
    return list(
        await BuildLog.filter(application=app).order_by("seq").values_list("line", flat=True)
    )


async def test_a_push_goes_through_every_stage(setup) -> None:
    deployer, fake, project = setup
    app = await _until(await _push(deployer, project, "one"), S.RUNNING, S.FAILED)
    assert app.status == S.RUNNING
    # The stages after RUNNING (pruning old images, dropping the job file) finish in the
    # project's queue worker: wait for it rather than race it.
    async with within(10, "the queue worker to finish"):
        await asyncio.gather(*deployer.queue.tasks())
    assert await _history(app) == [S.QUEUED, S.BUILDING, S.DEPLOYING, S.RUNNING]
    # The spec is complete: spec.py applied every default, Pomegranate gets no zero value.
    (spec,) = fake.released
    settings = deployer.settings
    assert spec.port == settings.default_port
    assert spec.memory_mb == settings.default_memory_mb and spec.cpu == settings.default_cpu
    assert spec.health_timeout == settings.health_check_timeout_seconds
    assert spec.hostnames == (settings.project_hostname("blog"),)
    # web runs one replica unless scaled; other types only when scaled.
    assert {(p.type, p.replicas) for p in spec.processes} == {("web", 1), ("worker", 0)}
    log = await _log(app)
    assert log[0] == "-----> Building blog (v1)"
    assert "installing dependencies" in log and "starting web.1" in log
    assert log[-1] == "=====> Application deployed: " + settings.app_url(
        settings.project_hostname("blog")
    )
    assert fake.pruned == [[app.image]]
    assert deployer.source_path(project).read_bytes() == b"tar"  # kept for `deploy`
    assert not list((settings.data_dir / "queue").glob("*.json"))  # the job is done


async def _second_queued_behind_a_held_build(
    deployer: Deployer, fake: FakePomegranate, project: Project
) -> tuple[Application, Application]:
    """v1 building (held until fake.hold_build is set), v2 queued behind it."""
    fake.hold_build = asyncio.Event()
    first = await _push(deployer, project, "one")
    async with within(10, "the first build to start"):
        await fake.building.wait()
    return first, await _push(deployer, project, "two")


async def test_a_newer_queued_release_replaces_the_older_one(setup) -> None:
    deployer, fake, project = setup
    first, second = await _second_queued_behind_a_held_build(deployer, fake, project)
    second_source = _source(deployer, "two")
    third = await _push(deployer, project, "three")
    second = await _until(second, S.FAILED)
    assert second.failure_reason == "replaced by v3 before it started"
    assert not second_source.exists()  # the replaced job's source is dropped
    fake.hold_build.set()
    await _until(third, S.RUNNING)
    first = await _until(first, S.SUPERSEDED)
    assert first.failure_reason == "replaced by v3"
    assert fake.built == [1, 3]


async def test_retention_waits_until_the_project_has_no_release_waiting(setup) -> None:
    """A release queued behind another starts right after it; the clean-up runs once, after
    both, in the project's worker (never beside one of its builds)."""
    deployer, fake, project = setup
    first, second = await _second_queued_behind_a_held_build(deployer, fake, project)
    order: list[str] = []
    prune = fake.prune_images

    async def recorded(project_name: str, keep: list[str]) -> list[str]:
        order.append(f"prune after {len(fake.released)} releases")
        return await prune(project_name, keep)

    fake.prune_images = recorded  # type: ignore[method-assign]
    fake.hold_build.set()
    second = await _until(second, S.RUNNING)
    async with within(10, "the queue worker to finish"):
        await asyncio.gather(*deployer.queue.tasks())
    assert order == ["prune after 2 releases"]
    assert fake.pruned == [[second.image, (await _until(first, S.SUPERSEDED)).image]]

    # A release that comes while the clean-up runs waits for it, then it runs again after.
    gate = asyncio.Event()

    async def held(project_name: str, keep: list[str]) -> list[str]:
        order.append(f"prune after {len(fake.released)} releases")
        await gate.wait()
        return []

    fake.prune_images = held  # type: ignore[method-assign]
    await _until(await _push(deployer, project, "three"), S.RUNNING)
    async with within(10, "the clean-up to start"):
        while order[-1:] != ["prune after 3 releases"]:
            await asyncio.sleep(0.01)
    fourth = await _push(deployer, project, "four")
    await asyncio.sleep(0.05)  # a chance to start for a release that would not wait (none)
    await fourth.refresh_from_db()
    assert fourth.status == S.QUEUED and len(fake.released) == 3
    gate.set()
    await _until(fourth, S.RUNNING)
    async with within(10, "the queue worker to finish"):
        await asyncio.gather(*deployer.queue.tasks())
    assert order[-2:] == ["prune after 3 releases", "prune after 4 releases"]


async def test_a_release_soon_after_another_does_not_wait_for_its_clean_up(setup) -> None:
    """The queue waits tidy_delay after its last release before the clean-up: a push, then a
    config change a moment later, go live one after the other with no clean-up between."""
    deployer, fake, project = setup
    deployer.queue.tidy_delay = 3600  # never reached: the test wakes the worker itself
    first = await _until(await _push(deployer, project, "one"), S.RUNNING)
    second = await _until(await _push(deployer, project, "two"), S.RUNNING)
    assert fake.pruned == []  # the worker waits, idle, for another release
    # As if tidy_delay had passed with no release: wake the worker. It may still be finishing
    # v2's job, and clears the signal before it waits: signal until the clean-up ran.
    async with within(10, "the clean-up once the worker is woken"):
        while not fake.pruned:
            deployer.queue._arrived[project.id].set()
            await asyncio.sleep(0.01)
    async with within(10, "the queue worker to finish"):
        await asyncio.gather(*deployer.queue.tasks())
    assert fake.pruned == [[second.image, first.image]]


async def test_a_failing_clean_up_leaves_the_queue_working(setup) -> None:
    deployer, fake, project = setup

    async def broken(project_name: str, keep: list[str]) -> list[str]:
        raise RuntimeError("registry on fire")

    fake.prune_images = broken  # type: ignore[method-assign]
    await _until(await _push(deployer, project, "one"), S.RUNNING)
    async with within(10, "the queue worker to finish"):
        await asyncio.gather(*deployer.queue.tasks())
    await _until(await _push(deployer, project, "two"), S.RUNNING)


async def test_a_failed_stage_fails_the_release_with_its_reason(setup) -> None:
    deployer, fake, project = setup
    live = await _until(await _push(deployer, project, "one"), S.RUNNING)
    fake.release_failure = DeployFailed(
        "web.1 did not answer its health check", ["Traceback", "boom"]
    )
    failed = await _until(await _push(deployer, project, "two"), S.RUNNING, S.FAILED)
    assert failed.status == S.FAILED
    assert failed.failure_reason == "web.1 did not answer its health check\nTraceback\nboom"
    log = await _log(failed)
    assert log[-3:] == [
        "       Traceback",
        "       boom",
        " !     web.1 did not answer its health check",
    ]
    assert not any(line.startswith("=====>") for line in log)
    await live.refresh_from_db()
    assert live.status == S.RUNNING  # the live release is untouched


async def test_a_config_change_reuses_the_live_image(setup) -> None:
    deployer, fake, project = setup
    live = await _until(await _push(deployer, project, "one"), S.RUNNING)
    deployer_module.set_deployer(deployer)
    try:
        app = await config_changes.scale(project, "worker", 2)
        assert app is not None
        app = await _until(app, S.RUNNING, S.FAILED)
        assert app.image == live.image and fake.built == [1]
        assert await _history(app) == [S.QUEUED, S.DEPLOYING, S.RUNNING]
        assert {(p.type, p.replicas) for p in fake.released[-1].processes} == {
            ("web", 1),
            ("worker", 2),
        }
        # The same scale again changes nothing: no release.
        assert await config_changes.scale(project, "worker", 2) is None
        with pytest.raises(ValidationFailed) as caught:
            await config_changes.scale(project, "nope", 1)
        assert caught.value.field == "processType"
        assert await Application.filter(project=project).count() == 2
    finally:
        deployer_module.set_deployer(None)


async def test_nothing_running_makes_no_config_release(setup) -> None:
    deployer, _fake, project = setup
    assert await deployer.release_config(project, "env: set X") is None
    assert await Application.filter(project=project).count() == 0


async def _released(project: Project, number: int, status: S, image: str | None) -> Application:
    return await Application.create(project=project, number=number, status=status, image=image)


async def test_rollback_targets(setup) -> None:
    _deployer, _fake, project = setup
    with pytest.raises(ValidationFailed) as caught:
        await retention.rollback_target(project, None, 2)
    assert caught.value.field == "number"  # nothing runs
    v1 = await _released(project, 1, S.SUPERSEDED, "img:1")
    await _released(project, 2, S.FAILED, None)
    v3 = await _released(project, 3, S.SUPERSEDED, "img:3")
    await _released(project, 4, S.RUNNING, "img:4")
    # Without a number: the release before the live one that ran (v2 never did).
    assert (await retention.rollback_target(project, None, 2)).id == v3.id
    assert (await retention.rollback_target(project, 3, 2)).id == v3.id
    with pytest.raises(ValidationFailed, match="never ran") as caught:
        await retention.rollback_target(project, 2, 2)
    assert caught.value.field == "number"
    with pytest.raises(ValidationFailed, match="was pruned") as caught:
        await retention.rollback_target(project, 1, 2)  # only img:4 and img:3 are kept
    assert caught.value.field == "number"
    assert (await retention.rollback_target(project, 1, 3)).id == v1.id
    with pytest.raises(NotFound) as missing:
        await retention.rollback_target(project, 99, 2)
    assert missing.value.field == "number"


async def test_retention_keeps_the_newest_distinct_released_images(setup) -> None:
    _deployer, _fake, project = setup
    await _released(project, 1, S.SUPERSEDED, "img:a")
    await _released(project, 2, S.SUPERSEDED, "img:b")
    await _released(project, 3, S.FAILED, "img:broken")  # never ran: not kept
    await _released(project, 4, S.SUPERSEDED, "img:b")  # a config change: the same image
    await _released(project, 5, S.RUNNING, "img:c")
    assert await retention.images_to_keep(project, 2) == ["img:c", "img:b"]
    assert await retention.images_to_keep(project, 5) == ["img:c", "img:b", "img:a"]


def _event(kind: str, number: int, **kw: object) -> pt.RuntimeEvent:
    fields: dict = {"exit_code": 0, "oom_killed": False, **kw}
    return pt.RuntimeEvent(
        kind, "blog", number, "web", 1, fields["exit_code"], fields["oom_killed"]
    )


async def test_runtime_events(setup) -> None:
    deployer, _fake, project = setup
    controller = deployer.controller
    app = await _released(project, 1, S.RUNNING, "img:1")
    app.memory_mb = 256
    await app.save()
    # Our own stops (SIGTERM, a clean exit) are not crashes.
    for code in (0, 143):
        await controller.on_runtime_event(_event("die", 1, exit_code=code))
        await app.refresh_from_db()
        assert app.status == S.RUNNING
    # Another project's name, or a release that does not exist: nothing happens.
    await controller.on_runtime_event(pt.RuntimeEvent("die", "other", 1, "web", 1, 1, False))
    await controller.on_runtime_event(_event("die", 7, exit_code=1))
    # A restart on purpose (restart web.1): its exits are not crashes either.
    with controller.restarting(project.id):
        await controller.on_runtime_event(_event("die", 1, exit_code=137))
    await app.refresh_from_db()
    assert app.status == S.RUNNING
    await controller.on_runtime_event(_event("die", 1, exit_code=3))
    await app.refresh_from_db()
    assert (app.status, app.failure_reason) == (S.CRASHED, "web.1 exited with code 3")
    await controller.on_runtime_event(_event("start", 1))
    await app.refresh_from_db()
    assert (app.status, app.failure_reason) == (S.RUNNING, "web.1 restarted")
    await controller.on_runtime_event(_event("oom", 1, exit_code=137, oom_killed=True))
    await app.refresh_from_db()
    assert app.status == S.CRASHED
    assert app.failure_reason == "web.1 ran out of memory (limit 256 MB)"


async def test_the_engines_oom_flag_reaches_the_alert(setup, monkeypatch) -> None:
    """The OOM alert comes from the runtime event's typed flag, not from the crash's text."""
    deployer, _fake, project = setup
    seen: list[tuple[S, bool]] = []

    async def hook(project, number, old, new, reason, *, oom_killed=False) -> None:
        seen.append((new, oom_killed))

    monkeypatch.setattr(alert_triggers, "status_changed", hook)
    controller = deployer.controller
    await _released(project, 1, S.RUNNING, "img:1")
    await controller.on_runtime_event(_event("die", 1, exit_code=137))  # killed, not OOM
    await controller.on_runtime_event(_event("start", 1))
    await controller.on_runtime_event(_event("die", 1, exit_code=137, oom_killed=True))
    assert seen == [(S.CRASHED, False), (S.RUNNING, False), (S.CRASHED, True)]


async def test_a_switch_in_progress_is_not_a_crash(setup) -> None:
    deployer, _fake, project = setup
    live = await _released(project, 1, S.RUNNING, "img:1")
    await _released(project, 2, S.DEPLOYING, "img:2")
    await deployer.controller.on_runtime_event(_event("die", 1, exit_code=1))
    await live.refresh_from_db()
    assert live.status == S.RUNNING


async def test_a_finished_release_never_moves_back(setup) -> None:
    """The pipeline and the controller go through set_status: a refused transition (here a
    start event for a superseded release, or a failed one asked to run) changes nothing."""
    deployer, _fake, project = setup
    old = await _released(project, 1, S.SUPERSEDED, "img:1")
    await deployer.controller.on_runtime_event(_event("start", 1))
    await old.refresh_from_db()
    assert old.status == S.SUPERSEDED
    failed = await _released(project, 2, S.FAILED, None)
    with pytest.raises(IllegalTransition):
        await set_status(failed, S.RUNNING)
    await failed.refresh_from_db()
    assert failed.status == S.FAILED


async def test_stop_is_refused_while_a_release_is_on_its_way(setup) -> None:
    """The release in flight would go live after the stop and undo it: Stop waits for it."""
    deployer, fake, project = setup
    first = await _until(await _push(deployer, project, "one"), S.RUNNING)
    fake.hold_build = asyncio.Event()
    fake.building.clear()
    second = await _push(deployer, project, "two")
    async with within(10, "the second build to start"):
        await fake.building.wait()
    with pytest.raises(Conflict) as refused:
        await deployer.stop_project(project)
    assert refused.value.field == "project"
    assert "v2 is being released (building)" in refused.value.message
    await first.refresh_from_db()
    assert first.status == S.RUNNING and fake.stopped == []  # nothing changed
    fake.hold_build.set()
    await _until(second, S.RUNNING)
    async with within(10, "the queue worker to finish"):
        await asyncio.gather(*deployer.queue.tasks())
    stopped = await deployer.stop_project(project)
    assert (stopped.number, stopped.status) == (2, S.STOPPED)
    assert fake.stopped == ["blog"]
