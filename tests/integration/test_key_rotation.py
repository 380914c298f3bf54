"""`python -m backend rotate-key` on SQLite and PostgreSQL: every env var re-encrypted under the
new master key, nothing lost, the old key no longer reads them; a bad call changes nothing."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import InvalidToken

from backend import security
from tests.conftest import PASSWORD, unique
from tests.support.databases import BACKENDS, RawDb, database
from tests.support.gqlclient import SIGNUP, Api
from tests.support.servers import api_server, base_env, run_backend

OLD, NEW = "test-secret-key-0123456789", "rotated-master-key-9876543210"
VALUES = {"DATABASE_URL": "postgres://u:p@db/x", "EMOJI": "clé ☃ \n two lines", "EMPTY": ""}
SET = """mutation($p: String!, $vars: [EnvVarInput!]!) {
  setEnvVars(project: $p, vars: $vars) { project { name } } }"""
ENV = "query($p: String!) { project(name: $p) { envVars { key value } } }"


def rotate(data_dir: Path, url: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = base_env(data_dir, url)
    env.update(extra)
    return run_backend("rotate-key", env=env)


async def stored(db: RawDb) -> dict[str, str]:
    return dict(await db.fetch("SELECT key, value_encrypted FROM env_var ORDER BY key"))


async def fill(url: str, project: str) -> Api:
    name = unique()
    data = await Api(url)(SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD)
    api = Api(url, data["signup"]["token"])
    await api("mutation($p: String!) { createProject(name: $p) { name } }", p=project)
    await api(SET, p=project, vars=[{"key": k, "value": v} for k, v in VALUES.items()])
    return api


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotate_key_reencrypts_everything(tmp_path: Path, backend: str) -> None:
    # database() runs its own event loop: the test body gets another one.
    with database(backend, tmp_path) as url:
        asyncio.run(rotate_and_check(tmp_path, url))


async def rotate_and_check(tmp_path: Path, url: str) -> None:
    db = RawDb(tmp_path, url)
    project = unique("rot")
    with api_server(tmp_path, url) as api_url:
        api = await fill(api_url, project)
        token = api.token
    before = await stored(db)
    assert len(before) == len(VALUES)

    # A bad call (no new key given) changes nothing.
    refused = rotate(tmp_path, url)
    assert refused.returncode == 2 and "PAASTECH_NEW_SECRET_KEY" in refused.stderr
    assert await stored(db) == before

    done = rotate(tmp_path, url, PAASTECH_NEW_SECRET_KEY=NEW)
    assert done.returncode == 0, done.stderr
    assert f"re-encrypted {len(VALUES)} values" in done.stdout
    after = await stored(db)
    assert set(after) == set(before) and all(after[k] != before[k] for k in after)
    new_cipher, old_cipher = security.env_cipher(NEW), security.env_cipher(OLD)
    for key, sealed in after.items():
        assert new_cipher.decrypt(sealed.encode()).decode() == VALUES[key]
        with pytest.raises(InvalidToken):
            old_cipher.decrypt(sealed.encode())

    with api_server(tmp_path, url, secret_key=NEW) as api_url:
        env = (await Api(api_url, token)(ENV, p=project))["project"]["envVars"]
    assert {e["key"]: e["value"] for e in env} == VALUES


async def test_rotate_key_with_the_key_file(tmp_path: Path) -> None:
    """Without PAASTECH_SECRET_KEY the key lives in DATA_DIR/secret.key: a new one replaces it."""
    project = unique("rotf")
    with api_server(tmp_path, "", secret_key="") as api_url:
        api = await fill(api_url, project)
    key_file = tmp_path / "secret.key"
    old_key = key_file.read_text()
    done = rotate(tmp_path, "", PAASTECH_SECRET_KEY="")
    assert done.returncode == 0, done.stderr
    assert key_file.read_text() != old_key
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert not (tmp_path / "secret.key.new").exists()
    with api_server(tmp_path, "", secret_key="") as api_url:
        env = await Api(api_url, api.token)(ENV, p=project)
    assert {e["key"]: e["value"] for e in env["project"]["envVars"]} == VALUES
