"""Failure limiter, event bus and the crypto helpers."""

from __future__ import annotations

import asyncio

import pytest

from backend.events import EventKind, InProcessEventBus
from backend.ratelimit import FailureLimiter


def test_failure_limiter_window() -> None:
    now = [0.0]
    limiter = FailureLimiter(60, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("k", 3) == 0
        limiter.fail("k")
    assert limiter.retry_after("k", 3) == 61
    now[0] = 30
    assert 0 < limiter.retry_after("k", 3) <= 31
    now[0] = 61
    assert limiter.retry_after("k", 3) == 0
    limiter.fail("k")
    limiter.reset("k")
    assert limiter.retry_after("k", 1) == 0
    assert limiter.retry_after("other", 1) == 0


async def test_bus_delivers_to_every_subscriber_of_a_topic_only() -> None:
    bus = InProcessEventBus()
    async with (
        bus.subscribe("a") as first,
        bus.subscribe("a") as second,
        bus.subscribe("b") as other,
    ):
        await bus.publish("a", EventKind.ENV_CHANGED, {"project": "p"})
        assert (await anext(first)).kind == EventKind.ENV_CHANGED
        assert (await anext(second)).payload == {"project": "p"}
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(other), 0.05)
    assert bus.subscriber_count("a") == 0


async def test_slow_subscriber_drops_oldest_without_blocking() -> None:
    bus = InProcessEventBus(queue_size=2)
    async with bus.subscribe("t") as events:
        for i in range(5):
            await bus.publish("t", EventKind.BUILD_LOG, {"i": i})
        assert [(await anext(events)).payload["i"] for _ in range(2)] == [3, 4]


def test_encryption_round_trip_and_tokens(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from backend import security
    from backend.settings import get_settings

    monkeypatch.setenv("PAASTECH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PAASTECH_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    security._fernet.cache_clear()
    try:
        secret = "p@ss wörd"
        sealed = security.encrypt(secret)
        assert secret not in sealed and security.decrypt(sealed) == secret
        key_file = tmp_path / "secret.key"
        assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
        token = security.new_token()
        assert token.startswith("pt_") and len(security.token_digest(token)) == 64
        assert security.verify_password(security.hash_password("x-123456789"), "x-123456789")
        assert not security.verify_password(security.hash_password("x-123456789"), "nope")
        assert not security.verify_password("not-a-hash", "nope")
    finally:
        get_settings.cache_clear()
        security._fernet.cache_clear()
