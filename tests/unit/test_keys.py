"""Keys by purpose (HKDF from the master key), the master key file, gitd's environment."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken

from backend import security
from backend.ratelimit import FailureLimiter
from backend.settings import Settings, get_settings, write_private_file

MASTER = "master-key-for-tests-0123456789"


def test_each_purpose_gets_its_own_key() -> None:
    keys = {p: security.derive_key(p, MASTER) for p in security.PURPOSES}
    assert len(set(keys.values())) == len(security.PURPOSES)
    assert all(len(k) == 32 for k in keys.values())
    assert security.derive_key(security.INTERNAL_RPC, MASTER) == keys[security.INTERNAL_RPC]
    assert security.derive_key(security.INTERNAL_RPC, MASTER + "x") != keys[security.INTERNAL_RPC]
    assert security.internal_secret(MASTER) == keys[security.INTERNAL_RPC].hex()
    with pytest.raises(ValueError):
        security.derive_key("anything-else", MASTER)


def test_values_encrypted_before_the_split_still_decrypt() -> None:
    legacy = hmac.new(MASTER.encode(), b"encryption-at-rest", hashlib.sha256).digest()
    old = Fernet(base64.urlsafe_b64encode(legacy)).encrypt(b"s3cret")
    cipher = security.env_cipher(MASTER)
    assert cipher.decrypt(old) == b"s3cret"
    # New values use the purpose key, not the legacy one.
    new = cipher.encrypt(b"s3cret")
    with pytest.raises(InvalidToken):
        Fernet(base64.urlsafe_b64encode(legacy)).decrypt(new)


def test_private_file_is_0600_from_the_start_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        assert write_private_file(path, "first")
        assert not write_private_file(path, "second")
    finally:
        os.umask(old_umask)
    assert path.read_text() == "first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert write_private_file(path, "third", replace=True)
    assert path.read_text() == "third" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # no temporary left


def test_generated_master_key_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="")
    key = settings.resolved_secret_key()
    assert len(key) > 40 and settings.resolved_secret_key() == key
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


async def test_gitd_gives_git_a_minimal_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitd.server import Gitd, drop_master_key

    monkeypatch.setenv("PAASTECH_SECRET_KEY", MASTER)
    monkeypatch.setenv("PAASTECH_DATABASE_URL", "postgres://u:db-password@h/db")
    monkeypatch.setenv("PAASTECH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PAASTECH_INTERNAL_KEY", raising=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unrelated")
    get_settings.cache_clear()
    try:
        drop_master_key()
        assert "PAASTECH_SECRET_KEY" not in os.environ
        assert get_settings().secret_key == ""
        # Gitd opens its gRPC channel on construction, which needs the running loop.
        gitd = Gitd(get_settings())
        env = gitd.git_env({"PAASTECH_PUSH_PROJECT": "p"})
        await gitd.access.close()
    finally:
        get_settings.cache_clear()
    assert env["PAASTECH_INTERNAL_KEY"] == security.internal_secret(MASTER)
    assert MASTER not in env.values()
    assert not any("db-password" in v for v in env.values())
    assert "AWS_SECRET_ACCESS_KEY" not in env and "PAASTECH_DATABASE_URL" not in env
    assert {k for k in env if k.startswith("PAASTECH_")} == {
        "PAASTECH_DATA_DIR",
        "PAASTECH_HOST",
        "PAASTECH_API_GRPC_PORT",
        "PAASTECH_INTERNAL_KEY",
        "PAASTECH_PUSH_PROJECT",
    }


def test_login_delay_grows_and_ends() -> None:
    now = [0.0]
    limiter = FailureLimiter(900, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.delay("k", 3, 5, 60) == 0
        limiter.fail("k")
    assert limiter.delay("k", 3, 5, 60) == 5
    limiter.fail("k")
    assert limiter.delay("k", 3, 5, 60) == 10
    for _ in range(10):
        limiter.fail("k")
    assert limiter.delay("k", 3, 5, 60) == 60  # capped
    now[0] = 60.5
    assert limiter.delay("k", 3, 5, 60) == 0  # after the wait, one more try is allowed


async def test_hashing_refuses_when_the_queue_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "_waiting", get_settings().password_hash_queue)
    with pytest.raises(security.HashingBusy):
        await security.hash_password_async("whatever-123")
    monkeypatch.setattr(security, "_waiting", 0)
    assert security.verify_password(await security.hash_password_async("x-12345678"), "x-12345678")


def test_password_hash_profiles_verify_each_others_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hash carries its parameters: switching the profile keeps every account able to log in."""
    hashes = {}
    for name in ("cheapest", "rfc_9106_low_memory"):
        monkeypatch.setenv("PAASTECH_PASSWORD_HASH_PROFILE", name)
        get_settings.cache_clear()
        security._hasher.cache_clear()
        hashes[name] = security.hash_password("correct-horse-7")
    get_settings.cache_clear()
    security._hasher.cache_clear()
    assert hashes["cheapest"].startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert hashes["rfc_9106_low_memory"].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    for h in hashes.values():
        assert security.verify_password(h, "correct-horse-7")
        assert not security.verify_password(h, "correct-horse-8")
