"""The release status machine (backend/services/applications/status.py): the table as specified in
docs/architecture.md 2.4.5, every allowed transition persisted and published by set_status, every
other one refused with nothing changed."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from tortoise import Tortoise

from backend.db.models import Application, Client, Project, StatusChange
from backend.db.models import ApplicationStatus as S
from backend.events import EventKind, get_bus, project_topic
from backend.services.applications import status

# The specification, written out apart from the code: a change to the code's table must change
# this too (and the doc).
ALLOWED = {
    (S.QUEUED, S.BUILDING),
    (S.QUEUED, S.DEPLOYING),
    (S.QUEUED, S.FAILED),
    (S.BUILDING, S.DEPLOYING),
    (S.BUILDING, S.FAILED),
    (S.BUILDING, S.QUEUED),
    (S.DEPLOYING, S.RUNNING),
    (S.DEPLOYING, S.FAILED),
    (S.DEPLOYING, S.QUEUED),
    (S.RUNNING, S.CRASHED),
    (S.RUNNING, S.STOPPED),
    (S.RUNNING, S.SUPERSEDED),
    (S.CRASHED, S.RUNNING),
    (S.CRASHED, S.STOPPED),
    (S.CRASHED, S.SUPERSEDED),
    (S.STOPPED, S.SUPERSEDED),
}
ALL_PAIRS = list(itertools.product(S, S))
REFUSED = [pair for pair in ALL_PAIRS if pair not in ALLOWED]


def _id(pair: tuple[S, S]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def test_the_table_is_the_specified_one() -> None:
    assert set(status.TRANSITIONS) == set(S), "every status has a row"
    table = {(old, new) for old, targets in status.TRANSITIONS.items() for new in targets}
    assert table == ALLOWED
    for old, new in ALL_PAIRS:
        assert status.can_change(old, new) == ((old, new) in ALLOWED)


def test_the_groups() -> None:
    assert set(status.IN_PROGRESS) | set(status.FINISHED) == set(S)
    assert not set(status.IN_PROGRESS) & set(status.FINISHED)
    assert set(status.LIVE) <= set(status.FINISHED)
    assert set(status.FAILED) <= set(status.FINISHED)
    assert set(status.RELEASED) <= set(status.FINISHED)
    assert S.FAILED not in status.RELEASED
    assert status.INITIAL == S.QUEUED
    # Final statuses leave nothing; in-progress ones can always fail.
    for s in S:
        assert (not status.TRANSITIONS[s]) == (s in (S.FAILED, S.SUPERSEDED))
        if s in status.IN_PROGRESS:
            assert S.FAILED in status.TRANSITIONS[s]
    # Every status is reachable from the initial one.
    seen, todo = {status.INITIAL}, [status.INITIAL]
    while todo:
        for new in status.TRANSITIONS[todo.pop()]:
            if new not in seen:
                seen.add(new)
                todo.append(new)
    assert seen == set(S)


def test_is_finished_takes_values_and_members() -> None:
    assert status.is_finished("running") and status.is_finished(S.FAILED)
    assert not status.is_finished("queued") and not status.is_finished(S.DEPLOYING)
    with pytest.raises(ValueError):
        status.is_finished("RUNNING")  # a GraphQL name is not a stored value


@pytest.fixture(scope="module")
async def db() -> AsyncIterator[Project]:
    await Tortoise.init(
        db_url="sqlite://:memory:", modules={"models": ["backend.db.models"]}, use_tz=True
    )
    await Tortoise.generate_schemas()
    owner = await Client.create(email="s@example.com", username="status", password_hash="x")
    project = await Project.create(owner=owner, name="machine")
    yield project
    await Tortoise.close_connections()


async def _app_in(project: Project, old: S) -> Application:
    number = await Application.filter(project=project).count() + 1
    return await Application.create(project=project, number=number, status=old)


@pytest.mark.parametrize("pair", sorted(ALLOWED), ids=_id)
async def test_an_allowed_transition_is_persisted_then_published(
    db: Project, pair: tuple[S, S]
) -> None:
    old, new = pair
    app = await _app_in(db, old)
    async with get_bus().subscribe(project_topic(db.id)) as events:
        await status.set_status(app, new, "why")
        event = await anext(events)
    stored = await Application.get(id=app.id)
    assert stored.status == new
    assert stored.failure_reason == "why"
    assert (stored.finished_at is not None) == (new in status.FINISHED)
    history = await StatusChange.filter(application_id=app.id).values_list("status", "message")
    assert history == [(new, "why")]
    assert event.kind == EventKind.APPLICATION_STATUS
    assert event.payload == {
        "project": "machine",
        "number": app.number,
        "status": new.value,
        "message": "why",
    }


@pytest.mark.parametrize("pair", REFUSED, ids=_id)
async def test_an_illegal_transition_is_refused_and_changes_nothing(
    db: Project, pair: tuple[S, S]
) -> None:
    old, new = pair
    app = await _app_in(db, old)
    async with get_bus().subscribe(project_topic(db.id)) as events:
        with pytest.raises(status.IllegalTransition) as refused:
            await status.set_status(app, new, "should not be kept")
        await get_bus().publish(project_topic(db.id), EventKind.SUBSCRIBED, {"marker": True})
        assert (await anext(events)).payload == {"marker": True}, "nothing else was published"
    assert f"v{app.number} cannot go from {old.value} to {new.value}" in str(refused.value)
    assert app.status == old
    stored = await Application.get(id=app.id)
    assert (stored.status, stored.failure_reason, stored.finished_at) == (old, None, None)
    assert not await StatusChange.filter(application_id=app.id).exists()
