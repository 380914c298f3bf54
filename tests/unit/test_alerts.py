"""Alerts (issue 18): webhook URLs validated, deliveries to a local HTTP receiver with retries and
a bounded log, private addresses refused, and each trigger: release failed, release live, OOM
kill, crash loop, memory above 90% of the limit for 5 minutes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from tortoise import Tortoise

from backend.alerts import delivery, triggers, webhooks
from backend.alerts.triggers import Alerts
from backend.db.models import ApplicationStatus as S
from backend.db.models import Client, Project, Webhook, WebhookDelivery
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.settings import Settings
from tests.support.webhook_receiver import Receiver, webhook_receiver

LOCAL = Settings(webhook_allow_private=True, webhook_retry_seconds=0, webhook_attempts=3)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as rec:
        yield rec


@pytest.fixture
async def owner() -> AsyncIterator[Client]:
    await Tortoise.init(
        db_url="sqlite://:memory:", modules={"models": ["backend.db.models"]}, use_tz=True
    )
    await Tortoise.generate_schemas()
    client = await Client.create(email="a@example.com", username="alerter", password_hash="x")
    await Project.create(owner=client, name="blog")
    yield client
    await Tortoise.close_connections()


# ---------------------------------------------------------------------------------- webhooks


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/x",
        "javascript:alert(1)",
        "http://",
        "https://user:pw@example.com/",
        "http://exa mple.com/",
        "http://example.com/\x00",
        "https://example.com:99999/",
        "https://example.com/" + "a" * 2000,
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        webhooks.check_url(url)
    assert exc.value.field == "url"


async def test_add_remove_and_limits(owner: Client) -> None:
    hook = await webhooks.add(owner, "blog", "https://hooks.example.com/a")
    with pytest.raises(Conflict) as dup:
        await webhooks.add(owner, "blog", "https://hooks.example.com/a")
    assert dup.value.field == "url"
    for i in range(webhooks.MAX_PER_PROJECT - 1):
        await webhooks.add(owner, "blog", f"https://hooks.example.com/{i}")
    with pytest.raises(Conflict):
        await webhooks.add(owner, "blog", "https://hooks.example.com/one-too-many")
    other = await Client.create(email="b@example.com", username="other", password_hash="x")
    with pytest.raises(NotFound):
        await webhooks.add(other, "blog", "https://evil.example.com/")
    with pytest.raises(NotFound):
        await webhooks.remove(other, "blog", hook.id)
    await Project.create(owner=other, name="theirs")
    with pytest.raises(NotFound) as foreign:  # their project, but our webhook's id
        await webhooks.remove(other, "theirs", hook.id)
    assert foreign.value.field == "id"
    assert await Webhook.filter(project__name="blog").count() == webhooks.MAX_PER_PROJECT
    await webhooks.remove(owner, "blog", hook.id)
    assert not await Webhook.filter(id=hook.id).exists()


# ---------------------------------------------------------------------------------- delivery


async def test_delivery_retries_until_accepted(owner: Client, receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    await webhooks.add(owner, "blog", receiver.url + "/hook")
    alerts = Alerts(LOCAL)
    assert await alerts.notify("blog", triggers.RELEASE_LIVE, "Release v2 is live", release=2) == 1
    await alerts.drain()
    assert len(receiver.received) == 3
    assert receiver.received[-1]["text"] == "[blog] Release v2 is live"
    assert receiver.received[-1]["event"] == "release_live"
    [row] = await WebhookDelivery.all()
    assert (row.ok, row.attempts, row.status_code, row.error) == (True, 3, 200, "")
    assert row.finished_at is not None


async def test_delivery_gives_up_and_logs_why(owner: Client, receiver: Receiver) -> None:
    receiver.statuses = [500] * 5
    await webhooks.add(owner, "blog", receiver.url + "/hook")
    await webhooks.add(owner, "blog", receiver.url + "/moved")  # redirects are not followed
    alerts = Alerts(LOCAL)
    await alerts.notify("blog", triggers.RELEASE_FAILED, "Release v3 failed: boom")
    await alerts.drain()
    rows = {r.error: r for r in await WebhookDelivery.all()}
    assert set(rows) == {"HTTP 500", "HTTP 302"}
    assert all(not r.ok and r.attempts == 3 for r in rows.values())


async def test_private_addresses_are_refused_by_default(owner: Client, receiver: Receiver) -> None:
    await webhooks.add(owner, "blog", receiver.url + "/hook")
    alerts = Alerts(Settings(webhook_retry_seconds=0))
    await alerts.notify("blog", triggers.RELEASE_LIVE, "Release v1 is live")
    await alerts.drain()
    assert receiver.received == []
    [row] = await WebhookDelivery.all()
    assert not row.ok and row.attempts == 1 and "non-public address" in row.error


async def test_delivery_log_is_bounded(owner: Client, receiver: Receiver) -> None:
    await webhooks.add(owner, "blog", receiver.url + "/hook")
    alerts = Alerts(LOCAL)
    for i in range(delivery.KEEP_PER_WEBHOOK + 5):
        await alerts.notify("blog", triggers.RELEASE_LIVE, f"Release v{i} is live")
        await alerts.drain()
    rows = await WebhookDelivery.all().order_by("id")
    assert len(rows) == delivery.KEEP_PER_WEBHOOK
    assert rows[-1].text.endswith(f"v{delivery.KEEP_PER_WEBHOOK + 4} is live")


# ---------------------------------------------------------------------------------- triggers


async def test_release_statuses_fire_their_alerts(owner: Client, receiver: Receiver) -> None:
    await webhooks.add(owner, "blog", receiver.url + "/hook")
    alerts = Alerts(LOCAL)
    project = await Project.get(name="blog")
    await alerts.status_changed(project, 4, S.DEPLOYING, S.RUNNING, None)
    await alerts.status_changed(project, 5, S.BUILDING, S.FAILED, "the build failed")
    await alerts.status_changed(project, 4, S.CRASHED, S.RUNNING, "web.1 restarted")  # no alert
    # The crash text alone is no OOM kill (an app may print anything): only the engine's flag.
    await alerts.status_changed(
        project, 4, S.RUNNING, S.CRASHED, "web.1 exited with code 1: ran out of memory"
    )
    await alerts.status_changed(
        project, 4, S.RUNNING, S.CRASHED, "web.1 ran out of memory (limit 128 MB)", oom_killed=True
    )
    await alerts.drain()
    events = [r["event"] for r in receiver.received]
    assert events == ["release_live", "release_failed", "oom_kill"]
    assert receiver.received[1]["text"] == "[blog] Release v5 failed: the build failed"
    assert receiver.received[2]["release"] == 4
    assert (
        receiver.received[2]["text"] == "[blog] Release v4: web.1 ran out of memory (limit 128 MB)"
    )


async def test_crash_loop_fires_once_per_window(owner: Client, receiver: Receiver) -> None:
    await webhooks.add(owner, "blog", receiver.url + "/hook")
    alerts = Alerts(LOCAL)
    start = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    for minute in (0, 1, 2, 3, 4):
        await alerts._crashed("blog", 7, start + timedelta(minutes=minute))
    # Crashes spread over more than the window: not a loop.
    await alerts._crashed("other", 1, start)
    await alerts._crashed("other", 1, start + timedelta(minutes=8))
    await alerts._crashed("other", 1, start + timedelta(minutes=16))
    await alerts.drain()
    assert [r["event"] for r in receiver.received] == ["crash_loop"]
    # A later loop, once the window has passed, is reported again.
    for minute in (20, 21, 22):
        await alerts._crashed("blog", 8, start + timedelta(minutes=minute))
    await alerts.drain()
    assert [r["event"] for r in receiver.received] == ["crash_loop", "crash_loop"]


async def test_memory_high_for_five_minutes(owner: Client, receiver: Receiver) -> None:
    await webhooks.add(owner, "blog", receiver.url + "/hook")
    alerts = Alerts(LOCAL)
    start = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    limit = 256 * 2**20
    high = {("blog", "web"): (int(0.95 * limit), limit)}
    for second in range(0, 290, 10):  # 4 min 50 s above 90%: nothing yet
        await alerts.memory_sampled(high, start + timedelta(seconds=second))
    # One sample below resets the clock.
    await alerts.memory_sampled(
        {("blog", "web"): (limit // 2, limit)}, start + timedelta(seconds=290)
    )
    for second in range(300, 600, 10):
        await alerts.memory_sampled(high, start + timedelta(seconds=second))
    await alerts.drain()
    assert receiver.received == []
    for second in range(600, 700, 10):  # 5 minutes above since 300 s: once
        await alerts.memory_sampled(high, start + timedelta(seconds=second))
    await alerts.drain()
    assert [r["event"] for r in receiver.received] == ["memory_high"]
    assert receiver.received[0]["process"] == "web"
    assert "243 of 256 MiB" in receiver.received[0]["text"]
    # No limit known (0): never an alert.
    await alerts.memory_sampled({("blog", "worker"): (10**9, 0)}, start)
    await alerts.memory_sampled({("blog", "worker"): (10**9, 0)}, start + timedelta(hours=1))
    await alerts.drain()
    assert len(receiver.received) == 1


async def test_a_project_without_webhooks_costs_nothing(owner: Client) -> None:
    alerts = Alerts(LOCAL)
    assert await alerts.notify("blog", triggers.RELEASE_LIVE, "Release v1 is live") == 0
    assert await WebhookDelivery.all().count() == 0
