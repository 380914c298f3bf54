"""Issue 13's API contract, through the GraphQL schema over a fake Pomegranate (no Docker): a
config mutation answers { project, application } with the release config_changed made (null
when none), and projectEvents sends only the public event kinds."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from backend.api.context import Context
from backend.api.event_kinds import INTERNAL, PUBLIC, ProjectEventKind, public_kind
from backend.api.schema import build_schema
from backend.api.types import ProjectEvent
from backend.db.models import Application, Client, EnvVar, Project
from backend.db.models import ApplicationStatus as S
from backend.events import Event, EventKind, get_bus, project_topic
from backend.services.applications import deployer as deployer_module
from backend.settings import Settings
from tests.unit.test_deployer import _push, _until, setup  # noqa: F401  # setup: a fixture

SCALE = """mutation($p: String!, $n: Int!) { scale(project: $p, processType: "worker", replicas: $n)
  { project { name settings { replicas { processType replicas } } }
    application { number status cause } } }"""
SET_ENV = """mutation($p: String!, $v: String!) { setEnvVars(project: $p, vars: [{key: "K", value: $v}])
  { project { envVars { key } } application { number cause } } }"""
RESOURCES = """mutation($p: String!, $m: Int) { setResources(project: $p, memoryMb: $m)
  { project { settings { memoryMb } } application { number } } }"""
EVENTS = "subscription($p: String!) { projectEvents(project: $p) { kind project } }"


@pytest.fixture
async def api(setup) -> Any:  # noqa: F811  # the fixture imported above
    deployer, _fake, project = setup
    deployer_module.set_deployer(deployer)
    owner = await Client.get(id=project.owner_id)
    schema = build_schema(Settings(secret_key="unit", development=True))

    async def call(query: str, **variables: object) -> Any:
        context = Context(request=SimpleNamespace(headers={}), remote_addr="127.0.0.1")  # type: ignore[arg-type]  # only headers are read
        context.client = owner
        return await schema.execute(query, variable_values=variables, context_value=context)

    yield deployer, project, call, schema, owner
    deployer_module.set_deployer(None)


async def test_a_config_change_answers_the_release_it_made(api) -> None:
    deployer, project, call, _, _ = api
    live = await _until(await _push(deployer, project, "one"), S.RUNNING)
    result = await call(SCALE, p=project.name, n=2)
    assert result.errors is None
    change = result.data["scale"]
    made = await Application.filter(project=project).order_by("-number").first()
    assert made is not None and made.number == live.number + 1
    assert change["application"]["number"] == made.number
    assert change["application"]["cause"] == "scale worker=2"
    assert {"processType": "worker", "replicas": 2} in change["project"]["settings"]["replicas"]
    await _until(made, S.RUNNING)
    # The same scale again changes nothing: no release, and the answer says so.
    again = await call(SCALE, p=project.name, n=2)
    assert again.errors is None and again.data["scale"]["application"] is None
    assert await Application.filter(project=project).count() == 2


async def test_nothing_running_answers_no_release(api) -> None:
    _, project, call, _, _ = api
    result = await call(SET_ENV, p=project.name, v="1")
    assert result.errors is None
    assert result.data["setEnvVars"] == {
        "project": {"envVars": [{"key": "K"}]},
        "application": None,
    }
    assert await Application.filter(project=project).count() == 0


async def test_a_refused_change_answers_an_error_and_changes_nothing(api) -> None:
    deployer, project, call, _, _ = api
    await _until(await _push(deployer, project, "one"), S.RUNNING)
    result = await call(RESOURCES, p=project.name, m=1)
    assert result.data is None
    (error,) = result.errors
    assert error.extensions == {"code": "VALIDATION", "field": "memoryMb"}
    await project.refresh_from_db()
    assert project.memory_mb is None or project.memory_mb != 1
    assert await Application.filter(project=project).count() == 1
    # Another Client's project is not found, and nothing of it changes.
    other = await Client.create(email="o@example.com", username="other", password_hash="x")
    theirs = await Project.create(owner=other, name="theirs")
    refused = await call(SET_ENV, p=theirs.name, v="pwned")
    assert refused.errors[0].extensions["code"] == "NOT_FOUND"
    assert not await EnvVar.filter(project=theirs).exists()


def test_every_internal_kind_is_public_or_internal_by_choice() -> None:
    # A new hub kind must be put on one side: it is not sent to clients by accident.
    assert set(PUBLIC) | INTERNAL == set(EventKind)
    assert not set(PUBLIC) & INTERNAL
    assert {kind.value for kind in PUBLIC.values()} == {k.value for k in ProjectEventKind}
    for kind in INTERNAL:
        assert public_kind(kind) is None
        assert ProjectEvent.of(Event(topic="t", kind=kind, payload={"project": "p"})) is None
    event = ProjectEvent.of(Event(topic="t", kind=EventKind.ENV_CHANGED, payload={"project": "p"}))
    assert event is not None and event.kind is ProjectEventKind.ENV_CHANGED


async def test_project_events_send_only_public_kinds(api) -> None:
    _, project, _, schema, owner = api
    context = Context(request=SimpleNamespace(headers={}), remote_addr="127.0.0.1")  # type: ignore[arg-type]  # only headers are read
    context.client = owner
    stream = await schema.subscribe(
        EVENTS, variable_values={"p": project.name}, context_value=context
    )
    first = await anext(stream)
    assert first.data["projectEvents"] == {"kind": "SUBSCRIBED", "project": project.name}
    topic = project_topic(project.id)  # subscribed before SUBSCRIBED was sent
    await get_bus().publish(topic, EventKind.METRICS, {"project": project.name})
    await get_bus().publish(topic, EventKind.ENV_CHANGED, {"project": project.name})
    nxt = await asyncio.wait_for(anext(stream), 5)
    assert nxt.data["projectEvents"] == {"kind": "ENV_CHANGED", "project": project.name}
    await stream.aclose()
