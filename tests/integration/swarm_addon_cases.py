"""Add-ons and Traefik's overlay attachments on the Swarm runtime (issue 16), on the real 3-node
cluster of scripts/cluster.sh: a PostgreSQL add-on runs as a service pinned to one node (its
volume's data stays there), the app's services reach it over their project's overlay through
DATABASE_URL, and another project's services cannot.

Not a test module of its own: the cluster is one per machine and `make test` runs modules in
parallel workers, so these cases run in test_swarm_runtime.py (which imports them) on its cluster
and with its fixtures (cluster, settings, runtime)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiodocker.exceptions import DockerError

from backend import labels as L
from backend.pomegranate import swarm_traefik
from backend.pomegranate.addon_exec import exec_command
from backend.pomegranate.addons import AddonError, AddonSpec
from backend.pomegranate.networks import get_network
from backend.pomegranate.release import Process, ReleasePlan, release
from backend.pomegranate.runtime import BuiltImage, ProcessSpec
from backend.pomegranate.swarm_addon_tools import start_tool
from backend.pomegranate.swarm_addons import NODE_LABEL, SwarmAddons, addon_service_name
from backend.pomegranate.swarm_runtime import SwarmRuntime, overlay_name
from backend.settings import Settings
from tests.support.cluster import SCRIPT, Cluster, bring_back
from tests.support.platform import tar_dir
from tests.support.polling import within

APPS = Path(__file__).resolve().parents[1] / "fixtures" / "apps"


@pytest.fixture(scope="module")
async def addon_app(runtime: SwarmRuntime) -> AsyncIterator[BuiltImage]:
    """The add-ons fixture app (notes in PostgreSQL), built once on this host by the isolated
    builder and pushed to the registry; its image and build cache are removed afterwards."""

    async def ignore(line: str) -> None:
        pass

    owner = f"swarm-addon-app-{uuid.uuid4().hex[:6]}"
    yield await runtime.build(owner, 1, tar_dir(APPS / "addons"), ignore)
    for tag in await runtime.list_images(owner):
        with contextlib.suppress(Exception):
            await runtime.remove_image(tag, force=True)
    await runtime.remove_build_cache(owner)


async def _remove_project(runtime: SwarmRuntime, name: str) -> None:
    for info in await runtime.list_containers(name):
        await runtime.remove(info.id)
    async with within(60, f"the network of {name} to go"):
        while True:
            with contextlib.suppress(Exception):
                await runtime.remove_project_network(name)
            if (
                await get_network(
                    runtime.manager, overlay_name(name, instance=runtime.settings.instance)
                )
                is None
            ):
                break
            await asyncio.sleep(0.5)


@pytest.fixture
async def two_projects(runtime: SwarmRuntime) -> AsyncIterator[list[str]]:
    """Two unique projects (the add-on's, and another Client's); removed afterwards."""
    names = [f"s-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    yield names
    for name in names:
        await _remove_project(runtime, name)


@pytest.fixture
async def swarm_addons(
    runtime: SwarmRuntime, two_projects: list[str]
) -> AsyncIterator[SwarmAddons]:
    """The add-ons of a test, removed (service, data, network) before its projects go."""
    made = SwarmAddons(runtime)
    yield made
    # The cluster is this module's: every add-on service on it is one of these tests'.
    for service in await runtime.manager.services.list(filters={"label": [L.ADDON]}):
        await made.remove(service["Spec"]["Labels"][L.ADDON])
    await made.close()


def app_plan(project: str, built: BuiltImage, database_url: str) -> ReleasePlan:
    return ReleasePlan(
        project=project,
        application=1,
        image=built.image,
        processes=[Process("web", "python3 app.py", 1)],  # its Procfile
        env={"DATABASE_URL": database_url},
        port=5000,
        hostnames=[f"{project}.{Settings().base_domain}"],
        health_path="/health",
        health_timeout=30.0,
    )


async def call(runtime: SwarmRuntime, project: str, method: str, path: str) -> httpx.Response:
    """``method path`` to the project's web task, at its node's published port."""
    running = [c for c in await runtime.list_containers(project) if c.running and c.host_port]
    assert running, f"no running task of {project}"
    node = running[0].labels["paastech.swarm.node"]
    async with httpx.AsyncClient(timeout=20) as client:
        return await client.request(method, f"http://{node}:{running[0].host_port}{path}")


async def test_a_postgres_addon_is_pinned_to_one_node_and_serves_its_project_only(
    runtime: SwarmRuntime,
    addon_app: BuiltImage,
    two_projects: list[str],
    swarm_addons: SwarmAddons,
    settings: Settings,
    cluster: Cluster,
):
    built, addons = addon_app, swarm_addons
    project, other = two_projects
    name = f"postgresql-swarm-{secrets.randbelow(10**6)}"
    password = secrets.token_urlsafe(24)
    spec = AddonSpec(
        name=name,
        kind="postgres",
        image="paastech/postgres:15",
        password=password,
        memory_mb=128,
        projects=[project],
        alias=name,
    )
    state = await addons.ensure(spec)
    assert state.running and state.health == "healthy", state
    assert state.projects == [project]
    # Published to the registry and untagged again on the host: the host's own image keeps
    # its only tag (a cleanup by image id of the registry's copies must not take it along).
    host_tags = {t for i in await runtime.docker.images.list() for t in i.get("RepoTags") or []}
    assert "paastech/postgres:15" in host_tags
    assert not any("/paastech/addon-postgres:" in t for t in host_tags), host_tags

    # One replica, pinned by a placement constraint to the node it was created on.
    service = await addons.service(name)
    assert service is not None
    node = service["Spec"]["Labels"][NODE_LABEL]
    task_template = service["Spec"]["TaskTemplate"]
    assert task_template["Placement"]["Constraints"] == [f"node.id=={node}"]
    assert service["Spec"]["Mode"] == {"Replicated": {"Replicas": 1}}
    assert service["Spec"]["UpdateConfig"]["Order"] == "stop-first"
    assert task_template["ContainerSpec"]["CapabilityDrop"] == ["ALL"]
    mounts = task_template["ContainerSpec"]["Mounts"]
    assert {"Type": "volume", "Target": "/var/lib/paastech/data"}.items() <= mounts[0].items()
    assert mounts[0]["Source"] == f"{settings.instance}.addon.{name}"
    nodes = {n["ID"]: n["Status"]["Addr"] for n in await runtime.manager.nodes.list()}
    assert node in nodes
    running = [t for t in await addons._tasks(name) if t["DesiredState"] == "running"]
    assert [t["NodeID"] for t in running] == [node]
    # Pulled on its node from the platform registry, at the address the nodes reach.
    image = task_template["ContainerSpec"]["Image"]
    assert image.startswith(f"{settings.swarm_registry_address}/paastech/addon-postgres:15")

    # The app's service reaches it over the project's overlay, through DATABASE_URL.
    url = f"postgres://app:{password}@{name}:5432/app"
    await release(runtime, app_plan(project, built, url), _ignore, settings)
    response = await call(runtime, project, "POST", "/notes?body=on-swarm")
    assert response.status_code == 200, response.text
    assert response.json() == {"notes": ["on-swarm"]}
    assert (await call(runtime, project, "GET", "/notes")).json() == {"notes": ["on-swarm"]}

    # Another project (another Client's) is on another overlay: it cannot even resolve the name.
    await release(runtime, app_plan(other, built, url), _ignore, settings)
    refused = await call(runtime, other, "GET", "/notes")
    assert refused.status_code == 500
    assert "OperationalError" in refused.json()["error"], refused.text

    # A new memory size updates the service in place: same node, same volume, the data is there.
    spec.memory_mb = 192
    state = await addons.ensure(spec)
    assert state.running
    service = await addons.service(name)
    assert service["Spec"]["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"] == 192 << 20
    running = [t for t in await addons._tasks(name) if t["DesiredState"] == "running"]
    assert [t["NodeID"] for t in running] == [node]
    body: dict = {}
    async with within(60, lambda: f"the note read back after the update: {body}"):
        while body.get("notes") != ["on-swarm"]:
            with contextlib.suppress(httpx.HTTPError):
                body = (await call(runtime, project, "GET", "/notes")).json()

    # Detached from its project: the overlay is left, the app no longer reaches it.
    spec.projects = []
    state = await addons.ensure(spec)
    assert state.running and state.projects == []
    assert (await call(runtime, project, "GET", "/notes")).status_code == 500

    # Removed: its service and own network go; a second remove is fine.
    await addons.remove(name)
    assert (await addons.status(name)).state == "missing"
    assert await addons.service(name) is None
    assert addons.own_network(name) not in {
        n["Name"] for n in await runtime.manager.networks.list()
    }
    await addons.remove(name)


async def test_bad_addon_input_changes_nothing(runtime: SwarmRuntime, swarm_addons: SwarmAddons):
    addons = swarm_addons
    before = {s["Spec"]["Name"] for s in await runtime.manager.services.list()}
    good = dict(kind="postgres", image="paastech/postgres:15", memory_mb=64, projects=[])
    with pytest.raises(ValueError, match="invalid add-on name"):
        await addons.ensure(AddonSpec(name="../../etc", password="p" * 20, **good))
    with pytest.raises(ValueError, match="password"):
        await addons.ensure(AddonSpec(name="postgresql-bad-1", password="short", **good))
    with pytest.raises(ValueError, match="unknown add-on kind"):
        await addons.ensure(
            AddonSpec(
                name="postgresql-bad-2",
                kind="mysql",
                image="paastech/postgres:15",
                password="p" * 20,
                memory_mb=64,
            )
        )
    with pytest.raises(AddonError, match="not running"):
        await addons.restore("postgresql-bad-3", "postgres", b"")
    assert {s["Spec"]["Name"] for s in await runtime.manager.services.list()} == before
    assert addon_service_name("postgresql-bad-1", instance="paastech").startswith("paastech__")


async def _ignore(line: str) -> None:
    pass


async def test_traefik_s_container_joins_each_project_overlay_and_reaches_its_tasks(
    runtime: SwarmRuntime, addon_app: BuiltImage, two_projects: list[str], settings: Settings
):
    built, projects = addon_app, two_projects
    """Traefik's Swarm provider sends a request to a task at its address on the network named by
    the service's traefik.swarm.network label. Traefik's image is not reachable from here, so a
    container of the app's image stands in its place on the manager (what the label, the network
    and the reachability are does not depend on which program asks)."""
    project, other = projects
    manager = runtime.manager
    image = runtime.node_image(built.image)
    await manager.images.pull(image, auth=SwarmAddons(runtime)._auth())
    name = f"traefik-standin-{uuid.uuid4().hex[:6]}"
    standin = await manager.containers.run(
        {"Image": image, "Cmd": ["sleep", "600"], "Labels": {"paastech.test": "swarm"}},
        name=name,
    )
    wired = SwarmRuntime(settings.replace(swarm_traefik_container=name))
    try:
        plan = app_plan(project, built, "postgres://nowhere/app")
        await release(wired, plan, _ignore, settings)
        network = overlay_name(project, instance=settings.instance)
        service = await wired.service(f"{settings.instance}_{project}_web")
        assert service["Spec"]["Labels"]["traefik.swarm.network"] == network
        # Joined on create (attachable for it), and nothing else: not another project's overlay.
        assert (await (await manager.networks.get(network)).show())["Attachable"] is True
        assert await swarm_traefik.attached(manager, name) == {"bridge", network}
        # As Traefik's provider does: the task's address on that network, and the labelled port.
        tasks = [
            t for t in await wired._tasks(service["Spec"]["Name"]) if t["DesiredState"] == "running"
        ]
        address = next(
            a["Addresses"][0].split("/")[0]
            for a in tasks[0]["NetworksAttachments"]
            if a["Network"]["Spec"]["Name"] == network
        )
        port = service["Spec"]["Labels"][
            f"traefik.http.services.{project}.loadbalancer.server.port"
        ]
        probe = f"import urllib.request as u; print(u.urlopen('http://{address}:{port}/health', timeout=5).status)"
        code, out = await _exec(standin, ["python3", "-c", probe])
        assert (code, out.strip()) == (0, "200"), out
        # The other project's overlay, created without the setting, is not attachable or joined.
        await release(runtime, app_plan(other, built, "postgres://nowhere/app"), _ignore, settings)
        assert overlay_name(other, instance=settings.instance) not in await swarm_traefik.attached(
            manager, name
        )
        # The project goes: Traefik is disconnected first, then its overlay is removed.
        for info in await wired.list_containers(project):
            await wired.remove(info.id)
        async with within(60, f"the overlay of {project} to go"):
            while True:
                with contextlib.suppress(Exception):
                    await wired.remove_project_network(project)
                if await get_network(wired.manager, network) is None:
                    break
                await asyncio.sleep(0.5)
        assert await swarm_traefik.attached(manager, name) == {"bridge"}
    finally:
        await standin.delete(force=True)
        await wired.close()


async def _exec(container: Any, command: list[str]) -> tuple[int, str]:
    execution = await container.exec(command, stdout=True, stderr=True)
    out = bytearray()
    async with execution.start(detach=False) as stream:
        while (message := await stream.read_out()) is not None:
            out.extend(message.data)
    return int((await execution.inspect()).get("ExitCode") or 0), out.decode(errors="replace")


# ---------------------------------------------------------------------------------------------
# Backups, restores and volume sizes through the engine of the add-on's node (a worker here;
# the module's settings list the workers' engines in swarm_node_docker_urls).


async def _create(addons: SwarmAddons, kind: str, label: str) -> str:
    name = f"{'postgresql' if kind == 'postgres' else 'redis'}-{label}-{secrets.randbelow(10**6)}"
    await addons.ensure(
        AddonSpec(
            name=name,
            kind=kind,
            image="paastech/postgres:15" if kind == "postgres" else "paastech/redis:7",
            password=secrets.token_urlsafe(24),
            memory_mb=128,
            projects=[],
            alias=name,
        )
    )
    return name


async def _on_worker(runtime: SwarmRuntime, addons: SwarmAddons, name: str) -> str:
    """The add-on's node, checked to be a worker, and its engine (the one server() found) to be
    that node's: the manager's API could not have done what the caller checks."""
    node = await addons.node_of(name)
    assert (await runtime.manager.nodes.inspect(node_id=node))["Spec"]["Role"] == "worker"
    engine, _container = await addons.server(name)
    assert engine is not runtime.manager
    assert (await engine.system.info())["Swarm"]["NodeID"] == node
    return node


async def _in_server(addons: SwarmAddons, name: str, *command: str) -> str:
    engine, container = await addons.server(name)
    code, out, err = await exec_command(engine, container, list(command))
    assert code == 0, err.decode(errors="replace")
    return out.decode().strip()


async def test_a_postgres_addon_on_a_worker_is_backed_up_destroyed_and_restored(
    runtime: SwarmRuntime, swarm_addons: SwarmAddons
):
    addons = swarm_addons
    first = await _create(addons, "postgres", "backup")
    await _on_worker(runtime, addons, first)
    sql = "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('one'), ('two')"
    await _in_server(addons, first, "psql", "-d", "app", "-Atc", sql)

    # Its volume's size, from its node's disk usage report; an unknown add-on's is not reported.
    sizes = await addons.volume_sizes([first, "postgresql-unknown-1"])
    assert sizes[first] > 1_000_000, sizes  # an initialised PostgreSQL data directory
    assert sizes["postgresql-unknown-1"] == -1

    backup = b"".join([chunk async for chunk in addons.backup(first, "postgres")])
    assert backup.startswith(b"PGDMP"), backup[:20]  # pg_dump's custom format

    # Destroyed: the service and its data go; nothing is left to back up.
    await addons.remove(first)
    assert (await addons.status(first)).state == "missing"
    with pytest.raises(AddonError, match="not running"):
        [chunk async for chunk in addons.backup(first, "postgres")]
    with pytest.raises(AddonError, match="not running"):
        await addons.restore(first, "postgres", backup)

    # Restored into a new add-on: a damaged backup is refused and changes nothing, then the
    # backup brings the same rows back.
    second = await _create(addons, "postgres", "restored")
    await _on_worker(runtime, addons, second)
    await _in_server(
        addons,
        second,
        "psql",
        "-d",
        "app",
        "-Atc",
        "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('before')",
    )
    with pytest.raises(AddonError, match=f"restore of {second} failed"):
        await addons.restore(second, "postgres", backup[: len(backup) // 2] + b"garbage")
    select = ("psql", "-d", "app", "-Atc", "SELECT body FROM notes ORDER BY body")
    assert await _in_server(addons, second, *select) == "before"
    await addons.restore(second, "postgres", backup)
    assert await _in_server(addons, second, *select) == "one\ntwo"


async def test_a_redis_addon_on_a_worker_is_backed_up_and_restored_into_a_new_one(
    runtime: SwarmRuntime, swarm_addons: SwarmAddons
):
    addons = swarm_addons
    first = await _create(addons, "redis", "backup")
    await _on_worker(runtime, addons, first)
    assert await _in_server(addons, first, "redis-cli", "SET", "greeting", "hello") == "OK"
    backup = b"".join([chunk async for chunk in addons.backup(first, "redis")])
    assert backup.startswith(b"REDIS"), backup[:20]  # an RDB snapshot
    await addons.remove(first)

    second = await _create(addons, "redis", "restored")
    node = await _on_worker(runtime, addons, second)
    assert await _in_server(addons, second, "redis-cli", "GET", "greeting") == ""
    before = {t["ID"] for t in await addons._tasks(second)}
    await addons.restore(second, "redis", backup)
    # Loaded at the server's next start: a new task, on the same node (its volume is there).
    running = [t for t in await addons._tasks(second) if t["DesiredState"] == "running"]
    assert [t["NodeID"] for t in running] == [node]
    assert running[0]["ID"] not in before
    assert (await addons.status(second)).running
    assert await _in_server(addons, second, "redis-cli", "GET", "greeting") == "hello"


async def test_an_addon_whose_node_engine_is_not_reachable_is_a_clear_failure(
    runtime: SwarmRuntime, swarm_addons: SwarmAddons, settings: Settings, cluster: Cluster
):
    addons = swarm_addons
    name = await _create(addons, "postgres", "unreached")
    node = await _on_worker(runtime, addons, name)
    await _in_server(addons, name, "psql", "-d", "app", "-Atc", "CREATE TABLE kept (n int)")
    backup = b"".join([chunk async for chunk in addons.backup(name, "postgres")])
    missing = "unix:///nonexistent/paastech/docker.sock"
    cases = {
        # The node's engine is not listed (only the manager's is known).
        "unlisted": ([], "no engine in swarm_node_docker_urls is this node"),
        # Listed, but it does not answer.
        "dead": ([missing], f"not answering: {missing}"),
    }
    for urls, reason in cases.values():
        blind_runtime = SwarmRuntime(settings.replace(swarm_node_docker_urls=urls))
        blind = SwarmAddons(blind_runtime)
        try:
            with pytest.raises(AddonError) as refused:
                [chunk async for chunk in blind.backup(name, "postgres")]
            message = str(refused.value)
            assert reason in message, message
            assert f"node {node} (" in message and "PAASTECH_SWARM_NODE_DOCKER_URLS" in message
            with pytest.raises(AddonError, match="swarm_node_docker_urls"):
                await blind.restore(name, "postgres", backup)
            # Sizes are not reported rather than failing the whole listing.
            assert await blind.volume_sizes([name]) == {name: -1}
        finally:
            await blind.close()
            await blind_runtime.close()
    # Nothing changed: the table is there, and the add-on still runs.
    assert (await addons.status(name)).running
    kept = "SELECT count(*) FROM kept"
    assert await _in_server(addons, name, "psql", "-d", "app", "-Atc", kept) == "0"

    # The setting's former name (stats only until now) reaches the node as well.
    former = SwarmRuntime(
        settings.replace(swarm_node_docker_urls=[], swarm_stats_docker_urls=cluster.worker_urls)
    )
    former_addons = SwarmAddons(former)
    try:
        again = b"".join([chunk async for chunk in former_addons.backup(name, "postgres")])
        assert again.startswith(b"PGDMP")
    finally:
        await former_addons.close()
        await former.close()
    with pytest.raises(ValueError, match="invalid add-on name"):
        await addons.volume_sizes(["../etc"])
    with pytest.raises(ValueError, match="invalid add-on name"):
        [chunk async for chunk in addons.backup("../etc", "postgres")]


async def _tool(
    addons: SwarmAddons, name: str, url_var: dict[str, str], command: list[str], stdin: bytes
) -> tuple[int, str, dict]:
    """Run the add-on's client tool as pg:psql / redis:cli do (attached, ``stdin`` then EOF):
    its exit code, output, and its container as the node's engine saw it while it ran."""
    spec = ProcessSpec(
        project="tools",
        application=1,
        process_type=L.ONEOFF_PROCESS,
        replica=0,
        image="paastech/postgres:15",  # the API's choice; the node uses the add-on's own image
        command=None,
        env={**url_var, "HOME": "/tmp"},
        port=5000,
        hostnames=[],
        memory_mb=128,
        cpu=0.5,
        pids_limit=64,
    )
    handle = await start_tool(addons, name, spec, command, tty=False, attach=True)
    try:
        engine, _server = await addons.server(name)
        seen = await engine.containers.container(handle.id).show()
        await handle.write(stdin)
        await handle.close_stdin()
        out = bytearray()
        while (chunk := await handle.read()) is not None:
            out.extend(chunk[1])
        code = await handle.wait()
    finally:
        await handle.remove()
    with pytest.raises(DockerError) as gone:
        await engine.containers.container(handle.id).show()
    assert gone.value.status == 404
    return code, out.decode(errors="replace").strip(), seen


async def test_psql_and_redis_cli_run_beside_the_addon_on_its_node(
    runtime: SwarmRuntime, swarm_addons: SwarmAddons, two_projects: list[str], settings: Settings
):
    addons = swarm_addons
    project = two_projects[0]
    password = secrets.token_urlsafe(24)
    pg = f"postgresql-tool-{secrets.randbelow(10**6)}"
    await addons.ensure(
        AddonSpec(pg, "postgres", "paastech/postgres:15", password, 128, [project], pg)
    )
    await _on_worker(runtime, addons, pg)
    _engine, server = await addons.server(pg)
    url = f"postgres://app:{password}@{pg}:5432/app"
    code, out, seen = await _tool(
        addons, pg, {"DATABASE_URL": url}, ["psql", url, "-At"], b"SELECT 40 + 2;\n"
    )
    assert (code, out) == (0, "42"), out
    # In the server's network namespace on its node, hardened as any one-off, not root.
    assert seen["HostConfig"]["NetworkMode"] == f"container:{server}"
    assert seen["HostConfig"]["CapDrop"] == ["ALL"]
    assert seen["Config"]["User"] not in ("", "0", "root")
    assert seen["Config"]["Labels"][L.ONEOFF] == L.MANAGED_VALUE
    # A failing command's exit code and error come back as they are.
    code, out, _seen = await _tool(
        addons,
        pg,
        {"DATABASE_URL": url},
        ["psql", url, "-At", "-v", "ON_ERROR_STOP=1"],
        b"SELECT nonsense;\n",
    )
    assert code == 3 and 'column "nonsense" does not exist' in out, (code, out)

    redis_password = secrets.token_urlsafe(24)
    rd = f"redis-tool-{secrets.randbelow(10**6)}"
    await addons.ensure(
        AddonSpec(rd, "redis", "paastech/redis:7", redis_password, 128, [project], rd)
    )
    command = ["redis-cli", "-h", rd, "-p", "6379"]
    code, out, _seen = await _tool(
        addons, rd, {"REDISCLI_AUTH": redis_password}, command, b"PING\n"
    )
    assert (code, out) == (0, "PONG"), out

    # Its node's engine not reachable: a clear error, and no container is left anywhere.
    blind_runtime = SwarmRuntime(settings.replace(swarm_node_docker_urls=[]))
    blind = SwarmAddons(blind_runtime)
    try:
        with pytest.raises(AddonError, match="swarm_node_docker_urls"):
            await _tool(blind, pg, {}, ["psql", url], b"")
    finally:
        await blind.close()
        await blind_runtime.close()
    with pytest.raises(AddonError, match="not running"):
        await _tool(addons, "postgresql-missing-1", {}, ["psql", url], b"")
    engine, _server = await addons.server(pg)
    left = await engine.containers.list(all=True, filters={"label": [L.ONEOFF]})
    assert left == [], [c["Names"] for c in left]


async def test_an_addon_whose_node_is_lost_waits_there_with_its_data(
    runtime: SwarmRuntime, swarm_addons: SwarmAddons, cluster: Cluster
):
    """Its node dies: Swarm cannot start it elsewhere (pinned with its volume), the backup says
    why, naming the node; the node comes back: so does the add-on, with its data."""
    addons = swarm_addons
    name = await _create(addons, "postgres", "lost")
    node = await _on_worker(runtime, addons, name)
    sql = "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)"
    await _in_server(addons, name, "psql", "-d", "app", "-Atc", sql)
    address = (await runtime.manager.nodes.inspect(node_id=node))["Status"]["Addr"]
    number = cluster.node_addresses.index(address) + 1
    message = ""
    try:
        subprocess.run([str(SCRIPT), "kill-node", str(number)], check=True, timeout=60)
        async with within(90, lambda: f"the backup refused for the lost node: {message}"):
            while "not running: its node" not in message:
                # First its engine does not answer; then the manager marks the node down.
                try:
                    [chunk async for chunk in addons.backup(name, "postgres")]
                    message = "a backup was taken"
                except AddonError as exc:
                    message = str(exc)
                await asyncio.sleep(0.5)
        assert f"node {node} (" in message and "pinned there with its data" in message, message
        # Nothing runs it anywhere else, and its size is not reported.
        running = [
            t
            for t in await addons._tasks(name)
            if (t.get("Status") or {}).get("State") == "running"
        ]
        assert {t["NodeID"] for t in running} <= {node}
        assert not (await addons.status(name)).running
        assert await addons.volume_sizes([name]) == {name: -1}
    finally:
        bring_back()
    async with within(120, "the add-on running again on its node"):
        while not (await addons.status(name)).running:
            await asyncio.sleep(0.5)
    assert [t["NodeID"] for t in await addons._tasks(name) if t["DesiredState"] == "running"] == [
        node
    ]
    assert await _in_server(addons, name, "psql", "-d", "app", "-Atc", "SELECT n FROM kept") == "7"
