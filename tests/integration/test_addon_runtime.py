"""Add-on servers on Docker (issue 15, backend/pomegranate/addons.py), driven directly: data
survives a dockerd restart (on a private engine: the shared one is never restarted), a restore
that fails leaves the data as it was, and objects that are not the add-on's are never adopted."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import AsyncIterator

import pytest

from backend.pomegranate.addons import AddonError, AddonSpec, DockerAddons
from backend.pomegranate.docker_runtime import DockerRuntime
from backend.settings import Settings
from tests.support.private_engine import private_engine

pytestmark = pytest.mark.docker

PG_IMAGE = "paastech/postgres:15"
REDIS_IMAGE = "paastech/redis:7"
PASSWORD = "p" + secrets.token_hex(12)


def specs(project: str) -> tuple[AddonSpec, AddonSpec]:
    n = secrets.randbelow(99_999) + 1
    pg = AddonSpec(f"postgresql-test-{n}", "postgres", PG_IMAGE, PASSWORD, 128, [project])
    redis = AddonSpec(f"redis-test-{n}", "redis", REDIS_IMAGE, PASSWORD, 64, [project])
    pg.alias, redis.alias = pg.name, redis.name
    return pg, redis


async def psql(addons: DockerAddons, name: str, sql: str) -> str:
    data = await addons._container(name)
    assert data is not None
    code, out, err = await addons.exec(data["Id"], ["psql", "-d", "app", "-Atc", sql])
    assert code == 0, err
    return out.decode().strip()


async def redis(addons: DockerAddons, name: str, *command: str) -> str:
    data = await addons._container(name)
    assert data is not None
    code, out, err = await addons.exec(data["Id"], ["redis-cli", *command])
    assert code == 0, err
    return out.decode().strip()


@pytest.fixture
async def shared() -> AsyncIterator[tuple[DockerAddons, str]]:
    settings = Settings(instance=f"pt{secrets.token_hex(3)}")
    runtime = DockerRuntime(settings)
    addons = DockerAddons(runtime)
    project = f"a-{secrets.token_hex(4)}"
    try:
        yield addons, project
    finally:
        for name in list(addons._locks):
            await addons.remove(name)
        await runtime.remove_project_network(project)
        await runtime.close()


async def test_the_data_survives_a_dockerd_restart() -> None:
    with private_engine() as engine:
        await asyncio.to_thread(engine.load_images, PG_IMAGE, REDIS_IMAGE)
        settings = Settings(
            instance=f"pt{secrets.token_hex(3)}",
            docker_url=engine.url,
            **engine.network_settings,
        )
        runtime = DockerRuntime(settings)
        addons = DockerAddons(runtime)
        try:
            pg, rd = specs(f"a-{secrets.token_hex(4)}")
            await addons.ensure(pg)
            await addons.ensure(rd)
            await psql(addons, pg.name, "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)")
            assert await redis(addons, rd.name, "SET", "k", "kept") == "OK"

            await asyncio.to_thread(engine.stop)
            await asyncio.to_thread(engine.start)
            await runtime.close()  # a fresh connection to the restarted engine

            # The restart policy brings both back on its own: no ensure, same data.
            async with asyncio.timeout(90):
                while not all([(await addons.status(s.name)).running for s in (pg, rd)]):
                    await asyncio.sleep(0.3)
                for spec in (pg, rd):
                    data = await addons._container(spec.name)
                    assert data is not None
                    await addons._wait_ready(data["Id"], spec.kind)
            assert await psql(addons, pg.name, "SELECT sum(x) FROM t") == "3"
            assert await redis(addons, rd.name, "GET", "k") == "kept"
        finally:
            await runtime.close()


async def test_a_failed_restore_leaves_the_data_as_it_was(
    shared: tuple[DockerAddons, str],
) -> None:
    addons, project = shared
    pg, _ = specs(project)
    await addons.ensure(pg)
    await psql(addons, pg.name, "CREATE TABLE t (x int); INSERT INTO t VALUES (7)")
    backup = b"".join([chunk async for chunk in addons.backup(pg.name, "postgres")])
    assert backup[:5] == b"PGDMP"
    with pytest.raises(AddonError, match="restore of"):
        await addons.restore(pg.name, "postgres", backup[: len(backup) // 2] + b"garbage")
    assert await psql(addons, pg.name, "SELECT x FROM t") == "7"
    # The whole backup restores, replacing what changed since.
    await psql(addons, pg.name, "UPDATE t SET x = 8")
    await addons.restore(pg.name, "postgres", backup)
    assert await psql(addons, pg.name, "SELECT x FROM t") == "7"


async def test_a_same_named_container_that_is_not_the_addons_is_refused(
    shared: tuple[DockerAddons, str],
) -> None:
    addons, project = shared
    pg, _ = specs(project)
    squatter = addons.object_name(pg.name)
    subprocess.run(
        ["docker", "create", "--name", squatter, "paastech/busybox:latest", "true"],
        check=True,
        capture_output=True,
    )
    try:
        with pytest.raises(AddonError, match="is not add-on"):
            await addons.ensure(pg)
        with pytest.raises(AddonError, match="is not add-on"):
            await addons.remove(pg.name)
    finally:
        subprocess.run(["docker", "rm", "-f", squatter], capture_output=True)


@pytest.mark.parametrize("password", ["short", "has'quote-0123456789", "a" * 200])
async def test_passwords_the_entrypoint_could_misread_are_refused(
    shared: tuple[DockerAddons, str], password: str
) -> None:
    addons, project = shared
    pg, _ = specs(project)
    pg.password = password
    with pytest.raises(ValueError, match="password"):
        await addons.ensure(pg)
    assert (await addons.status(pg.name)).state == "missing"


async def test_logs_and_sizes_refuse_bad_names_and_know_nothing_of_missing_addons(
    shared: tuple[DockerAddons, str],
) -> None:
    addons, project = shared
    pg, _ = specs(project)
    for bad in ("../etc", "postgresql-amber-1; rm", "", "redis-x-1"):
        with pytest.raises(ValueError, match="invalid add-on name"):
            [line async for line in addons.logs(bad, tail=10, follow=False)]
        with pytest.raises(ValueError, match="invalid add-on name"):
            await addons.volume_sizes([pg.name, bad])
    assert [line async for line in addons.logs(pg.name, tail=10, follow=True)] == []
    assert await addons.volume_sizes([pg.name]) == {pg.name: -1}
    assert await addons.volume_sizes([]) == {}
    assert (await addons.status(pg.name)).state == "missing"  # nothing was made
