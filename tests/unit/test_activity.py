"""The activity feed's recording, retention and wording; login session devices; what a project
serves (issue 18)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from tortoise import Tortoise

from backend.db.models import Activity, ApplicationStatus, Client, Project, SSHKey
from backend.events import EventKind, activity_topic, get_bus
from backend.services import activity, serving
from backend.services.serving import State

S = ApplicationStatus


@pytest.fixture
async def owner() -> AsyncIterator[Client]:
    await Tortoise.init(
        db_url="sqlite://:memory:", modules={"models": ["backend.db.models"]}, use_tz=True
    )
    await Tortoise.generate_schemas()
    yield await Client.create(email="a@example.com", username="actor", password_hash="x")
    await Tortoise.close_connections()


def test_source_is_the_header_when_known_else_api() -> None:
    assert activity.source_of("cli") == "cli"
    assert activity.source_of(" WEB ") == "web"
    assert activity.source_of("git") == "api"  # only gitd's pushes are git
    assert activity.source_of("<script>") == "api"
    assert activity.source_of(None) == "api"


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("paastech-cli/0.1.0 (Linux)", "paastech-cli 0.1.0"),
        ("", "unknown device"),
        (None, "unknown device"),
        ("x" * 500, "x" * 60),
        ("evil\x1b[31m\nname", "evil[31mname"),
    ],
)
def test_device_names_are_short(user_agent: str | None, device: str) -> None:
    assert activity.device_of(user_agent) == device


async def test_record_takes_the_actor_and_keeps_details_small(owner: Client) -> None:
    project = await Project.create(owner=owner, name="shop")
    activity.set_actor(activity.Actor(owner.id, token_id=7, token_name="ci", source="cli"))
    row = await activity.record(
        owner, "env.set", project=project, keys=["A" * 300, "B"], nested={"x": 1}
    )
    assert (row.source, row.token_id, row.token_name, row.project_name) == ("cli", 7, "ci", "shop")
    assert row.detail["keys"] == ["A" * 200, "B"]
    assert row.detail["nested"] == "{'x': 1}"  # flattened to short text, not stored as is


async def test_record_outside_a_request_is_api_without_token(owner: Client) -> None:
    import contextvars

    # A task as the periodic jobs run: no request, so no actor (the copy has it unset).
    context = contextvars.copy_context()
    context.run(activity.set_actor, activity.Actor())
    row = await asyncio.get_running_loop().create_task(
        activity.record(owner, "project.create"), context=context
    )
    assert (row.source, row.token_id, row.token_name) == ("api", None, "")


async def test_each_record_is_published_to_its_client(owner: Client) -> None:
    async with get_bus().subscribe(activity_topic(owner.id)) as events:
        row = await activity.record(owner, "key.add", title="laptop")
        event = await asyncio.wait_for(anext(aiter(events)), 5)
    assert (event.kind, event.payload) == (EventKind.ACTIVITY, {"id": row.id})


async def test_retention_keeps_the_newest_per_client(
    owner: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = await Client.create(email="b@example.com", username="other", password_hash="x")
    await activity.record(other, "key.add", title="kept")
    monkeypatch.setattr(activity, "MAX_PER_CLIENT", 5)
    for n in range(8):
        await activity.record(owner, "scale", processType="web", replicas=n)
    kept = await Activity.filter(client=owner).order_by("id").values_list("detail", flat=True)
    assert [d["replicas"] for d in kept] == [3, 4, 5, 6, 7]
    assert await Activity.filter(client=other).count() == 1  # another Client's are not touched


async def test_retention_drops_records_older_than_the_age(owner: Client) -> None:
    old = await activity.record(owner, "key.add", title="old")
    new = await activity.record(owner, "key.add", title="new")
    now = datetime.now(UTC)
    await Activity.filter(id=old.id).update(at=now - timedelta(days=activity.MAX_AGE_DAYS + 1))
    await Activity.filter(id=new.id).update(at=now - timedelta(days=activity.MAX_AGE_DAYS - 1))
    assert await activity.prune(owner.id) == 1
    assert await Activity.filter(client=owner).values_list("id", flat=True) == [new.id]


async def test_deleted_project_keeps_its_name(owner: Client) -> None:
    project = await Project.create(owner=owner, name="gone")
    await activity.record(owner, "scale", project=project, processType="web", replicas=1)
    await project.delete()
    row = await Activity.get(client=owner)
    assert (row.project_id, row.project_name) == (None, "gone")  # type: ignore[attr-defined]


async def test_listing_pages_and_filters(owner: Client) -> None:
    project = await Project.create(owner=owner, name="one")
    rows = [await activity.record(owner, "key.add", title=str(n)) for n in range(3)]
    mine = await activity.record(owner, "scale", project=project, processType="web", replicas=2)
    page = await activity.list_activity(owner, None, 2, None)
    assert [r.id for r in page] == [mine.id, rows[2].id]
    page = await activity.list_activity(owner, None, 2, page[-1].id)
    assert [r.id for r in page] == [rows[1].id, rows[0].id]
    assert [r.id for r in await activity.list_activity(owner, project, 10, None)] == [mine.id]
    with pytest.raises(activity.ValidationFailed) as err:
        await activity.list_activity(owner, None, 0, None)
    assert err.value.field == "first"


def test_every_action_has_a_summary() -> None:
    details = {
        "deploy": ({"release": 3, "cause": "push abc1234"}, "deployed v3 (push abc1234)"),
        "restart.processes": ({"processType": "web", "replica": 2}, "restarted web.2"),
        "resources": ({"memoryMb": 512, "cpu": None}, "resources memoryMb=512"),
        "env.unset": ({"keys": ["A", "B"]}, "unset env A, B"),
    }
    for action in activity._SUMMARIES:  # a phrase for people, not the action's name
        text = activity.summary(Activity(action=action, detail={}))
        assert text and text != action, action
    for action, (detail, expected) in details.items():
        assert activity.summary(Activity(action=action, detail=detail)) == expected
    assert activity.summary(Activity(action="future.thing", detail={})) == "future.thing"


# -- what a project serves ----------------------------------------------------------------------


def test_live_release_with_zero_web_is_idle() -> None:
    assert serving.release_state(S.RUNNING, {"web": 0, "worker": 2}) == State.IDLE
    assert serving.release_state(S.RUNNING, {"worker": 1}) == State.IDLE
    assert serving.release_state(S.RUNNING, {"web": 1}) == State.RUNNING
    assert serving.release_state(S.CRASHED, {"web": 1}) == State.CRASHED
    assert serving.release_state(S.STOPPED, {"web": 1}) == State.STOPPED
    assert serving.release_state(S.SUPERSEDED, {"web": 1}) is None
    assert serving.release_state(S.QUEUED, {"web": 1}) is None


def test_project_state() -> None:
    assert serving.project_state((S.RUNNING, {"web": 0}), S.RUNNING) == State.IDLE
    assert serving.project_state((S.RUNNING, {"web": 3}), S.QUEUED) == State.RUNNING
    assert serving.project_state(None, None) == State.NEW
    assert serving.project_state(None, S.BUILDING) == State.DEPLOYING
    assert serving.project_state(None, S.STOPPED) == State.STOPPED
    assert serving.project_state(None, S.FAILED) == State.FAILED
    assert serving.describe(State.IDLE, {"web": 0}) == "idle (0 web)"
    assert serving.describe(State.RUNNING) == "running"


def test_deploy_line_does_not_claim_to_serve_with_zero_web() -> None:
    url = "http://shop.localhost:8080"
    assert serving.deployed_line(4, url, {"web": 1}) == f"=====> Application deployed: {url}"
    line = serving.deployed_line(4, url, {"web": 0, "worker": 1})
    assert "Application deployed" not in line
    assert line.startswith("=====> Released v4 with 0 web replicas: nothing serves")


# -- the deployer's actions are recorded once they are done --------------------------------------


class StoppingPomegranate:
    def __init__(self) -> None:
        self.stopped: list[str] = []

    async def stop_project(self, name: str) -> None:
        self.stopped.append(name)


async def test_stop_and_scale_are_recorded_refusals_are_not(
    owner: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.db.models import Application
    from backend.errors import ValidationFailed
    from backend.services.applications import config_changes
    from backend.services.applications import deployer as deployer_module
    from backend.services.applications.deployer import Deployer

    project = await Project.create(owner=owner, name="shop", replicas={"web": 1})
    fake = StoppingPomegranate()
    deployer = Deployer(fake)  # type: ignore[arg-type]
    # config_changes reaches it through get_deployer(); undone after the test.
    monkeypatch.setattr(deployer_module, "_deployer", deployer)
    activity.set_actor(activity.Actor(owner.id, token_id=3, token_name="laptop", source="web"))
    with pytest.raises(ValidationFailed):
        await deployer.stop_project(project)  # nothing is running: refused
    with pytest.raises(ValidationFailed):
        await config_changes.scale(project, "web", 10_000)
    assert await Activity.filter(client=owner).count() == 0

    await Application.create(
        project=project, number=1, status=S.RUNNING, replicas={"web": 1}, processes={"web": ""}
    )
    await deployer.stop_project(project)
    assert fake.stopped == ["shop"]
    project.replicas = {"web": 1}
    await config_changes.scale(project, "worker", 2)  # nothing live now: saved, no release
    rows = await Activity.filter(client=owner).order_by("id")
    assert [(r.action, r.detail, r.source, r.token_name) for r in rows] == [
        ("stop", {"release": 1}, "web", "laptop"),
        ("scale", {"processType": "worker", "replicas": 2}, "web", "laptop"),
    ]
    assert [activity.summary(r) for r in rows] == ["stopped v1", "scaled worker to 2"]


async def test_a_push_records_the_ssh_key_that_pushed(owner: Client) -> None:
    await SSHKey.create(client=owner, title="laptop", public_key="x", fingerprint="SHA256:abc")
    other = await Client.create(email="b@example.com", username="other", password_hash="x")
    await SSHKey.create(client=other, title="theirs", public_key="y", fingerprint="SHA256:xyz")
    project = await Project.create(owner=owner, name="blog")

    actor = await activity.git_actor(owner.id, "SHA256:abc")
    assert (actor.source, actor.ssh_key_title, actor.ssh_key_fingerprint) == (
        "git",
        "laptop",
        "SHA256:abc",
    )
    token = activity.set_actor(actor)
    try:
        row = await activity.record(
            owner, "deploy", project=project, release=3, cause="push 1234567"
        )
    finally:
        activity._actor.reset(token)
    assert row.source == "git"
    assert row.detail["sshKey"] == "laptop" and row.detail["sshKeyFingerprint"] == "SHA256:abc"
    assert activity.summary(row) == "deployed v3 (push 1234567) with SSH key laptop"

    # Another Client's key never lends its title; a removed key still shows its fingerprint;
    # control characters from the wire are dropped.
    foreign = await activity.git_actor(owner.id, "SHA256:xyz")
    assert (foreign.ssh_key_title, foreign.ssh_key_fingerprint) == ("", "SHA256:xyz")
    odd = await activity.git_actor(owner.id, "SHA256:\x1b[2Jgone")
    assert odd.ssh_key_fingerprint == "SHA256:[2Jgone"
    # No key (a push through an older gitd): nothing added to the detail.
    token = activity.set_actor(await activity.git_actor(owner.id, ""))
    try:
        plain = await activity.record(owner, "deploy", project=project, release=4, cause="push")
    finally:
        activity._actor.reset(token)
    assert "sshKey" not in plain.detail
    assert activity.summary(plain) == "deployed v4 (push)"
