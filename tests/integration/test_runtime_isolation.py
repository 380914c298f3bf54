"""Tenant isolation at run time (issue 11), on the real engine through DockerRuntime: a second
project (the attacker, tests/fixtures/apps/prober) tries from inside its container to reach the
victim by name and by address, to take over its container name, and to act as root.

Each negative result has a positive control in the same test (the same probe from a container of
the victim's own project succeeds), so the test fails if the probe itself is broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiodocker
import httpx
import pytest

from backend import labels as L
from backend.pomegranate.container_config import app_config
from backend.pomegranate.docker_runtime import DockerRuntime, container_name, network_name
from backend.pomegranate.networks import create_network
from backend.pomegranate.reconciler import DesiredProject, reconcile
from backend.pomegranate.release import Process, ReleasePlan
from backend.pomegranate.runtime import ContainerInfo
from backend.settings import Settings
from tests.integration.test_docker_runtime import build, get, spec
from tests.support.networks import churn

pytestmark = pytest.mark.docker

SETTINGS = Settings()


async def cleanup(runtime: DockerRuntime, project: str) -> None:
    for info in await runtime.list_containers(project):
        await runtime.remove(info.id)
    for tag in await runtime.list_images(project):
        with contextlib.suppress(aiodocker.DockerError):
            await runtime.remove_image(tag, force=True)
    await runtime.remove_project_network(project)


@pytest.fixture
async def attacker(runtime: DockerRuntime) -> AsyncIterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    await cleanup(runtime, name)


@pytest.fixture
async def docker() -> AsyncIterator[aiodocker.Docker]:
    async with aiodocker.Docker() as client:
        yield client


async def ask(info: ContainerInfo, path: str) -> dict:
    response = await get(info, path)
    assert response.status_code == 200, response.text
    return response.json()


async def address(docker: aiodocker.Docker, info: ContainerInfo) -> tuple[str, str]:
    """(network name, IP address) of a container with one network."""
    data = (await docker.containers.get(info.id))._container
    ((network, settings),) = data["NetworkSettings"]["Networks"].items()
    return network, settings["IPAddress"]


async def started(runtime: DockerRuntime, info: ContainerInfo) -> ContainerInfo:
    await runtime.wait_healthy(info, "/health", 20)
    return info


def firewall_installed(pool: str) -> bool:
    """The jump of scripts/project-network-firewall.sh for ``pool`` is in mangle FORWARD."""
    rule = ["-s", pool, "-d", pool, "-j", "PAASTECH-PROJECTS"]
    check = ["iptables", "-w", "10", "-t", "mangle", "-C", "FORWARD", *rule]
    return subprocess.run(check, capture_output=True).returncode == 0


@contextlib.contextmanager
def listener(host: str) -> Iterator[int]:
    """A TCP listener of the host's on ``host`` (accepts, never answers)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        sock.listen(8)
        yield sock.getsockname()[1]


async def test_projects_cannot_reach_each_other_by_name_or_address(
    runtime: DockerRuntime, project: str, attacker: str, docker: aiodocker.Docker
):
    victim_built, _ = await build(runtime, project, "dockerfile")
    victim = await started(runtime, await runtime.start(spec(project, victim_built)))
    # The victim project's own prober: the positive control.
    probe_built, _ = await build(runtime, project, "prober", application=2)
    friend = await started(runtime, await runtime.start(spec(project, probe_built, replica=2)))
    evil_built, _ = await build(runtime, attacker, "prober")
    evil = await started(runtime, await runtime.start(spec(attacker, evil_built)))

    victim_net, victim_ip = await address(docker, victim)
    evil_net, evil_ip = await address(docker, evil)
    assert victim_net == network_name(project, instance=SETTINGS.instance)
    assert evil_net == network_name(attacker, instance=SETTINGS.instance)
    assert ipaddress.ip_address(victim_ip) in ipaddress.ip_network(SETTINGS.project_network_pool)
    assert ipaddress.ip_address(evil_ip) in ipaddress.ip_network(SETTINGS.project_network_pool)

    # Same project: the name resolves and both name and address connect.
    assert (await ask(friend, f"/resolve?host={victim.name}"))["address"] == victim_ip
    for host in (victim.name, victim_ip):
        answer = await ask(friend, f"/probe?host={host}&port=5000")
        assert answer["connected"] and answer["answer"].startswith("HTTP/1.0 200"), answer

    # Another project: the name does not resolve, neither name nor address connects.
    assert (await ask(evil, f"/resolve?host={victim.name}"))["resolved"] is False
    for host in (victim.name, victim_ip):
        answer = await ask(evil, f"/probe?host={host}&port=5000")
        assert answer["connected"] is False, answer
    # Nor the victim's port published on the host's loopback, through the attacker's gateway.
    answer = await ask(evil, f"/probe?host=GATEWAY&port={victim.host_port}")
    assert answer["connected"] is False, answer

    # Nor while the engine creates networks (a CI run caught one probe going through Docker's
    # gap; in a loop, 190 connections got through during 120 creations). The platform's own
    # rule is in place, and an attacker probing in a loop through 30 creations never connects;
    # the same loop from the victim's project does (the positive control).
    assert firewall_installed(SETTINGS.project_network_pool)
    await ask(friend, f"/flood?host={victim_ip}&port=5000&every_ms=20")
    await churn(docker, 2)
    control = await ask(friend, "/flood/stop")
    assert control["connected"] > 0, control
    await ask(evil, f"/flood?host={victim_ip}&port=5000&every_ms=2")
    await churn(docker, 30)
    flood = await ask(evil, "/flood/stop")
    assert flood["attempts"] > 0 and flood["connected"] == 0, flood

    # The victim keeps serving, untouched.
    assert (await get(victim)).json()["app"] == "dockerfile"


async def test_egress_stays_but_host_loopback_ports_are_refused(
    runtime: DockerRuntime, attacker: str
):
    built, _ = await build(runtime, attacker, "prober")
    evil = await started(runtime, await runtime.start(spec(attacker, built)))
    # A service of the host on every address is reachable from the app (traffic leaves the
    # project network: the way out to the internet)...
    with listener("0.0.0.0") as port:
        answer = await ask(evil, f"/probe?host=GATEWAY&port={port}")
        assert answer["connected"] is True, answer
    # ...but one bound to the host's loopback, like every platform port, is not.
    with listener("127.0.0.1") as port:
        answer = await ask(evil, f"/probe?host=GATEWAY&port={port}")
        assert answer["connected"] is False, answer


async def test_root_inside_is_not_root_outside(
    runtime: DockerRuntime, attacker: str, docker: aiodocker.Docker
):
    built, _ = await build(runtime, attacker, "prober")  # its Dockerfile has no USER
    evil = await started(runtime, await runtime.start(spec(attacker, built)))
    me = await ask(evil, "/whoami")
    uid, gid = (int(part) for part in SETTINGS.container_user.split(":"))
    assert (me["uid"], me["gid"]) == (uid, gid) and uid != 0
    # No user namespace: uid N inside is uid N on the host (the identity map)...
    assert me["uid_map"] == ["0", "0", "4294967295"]
    assert me["write_etc"].startswith("PermissionError"), me
    # ...and the host sees the app's process under that uid, not root.
    pid = (await docker.containers.get(evil.id))._container["State"]["Pid"]
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for process in [str(pid), *children]:  # tini (the init), then the app
        status = Path(f"/proc/{process}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert uids == [str(uid)] * 4, (process, status)


async def test_a_numeric_non_root_user_of_the_image_is_kept(runtime: DockerRuntime, project: str):
    built, _ = await build(runtime, project, "python")  # the buildpack sets USER 1000:1000
    info = await runtime.start(spec(project, built))
    await runtime.wait_healthy(info, "/health", 20)
    async with aiodocker.Docker() as docker:
        data = (await docker.containers.get(info.id))._container
    assert data["Config"]["User"] == "1000:1000"


async def test_a_colliding_process_type_cannot_take_another_projects_name(
    runtime: DockerRuntime, attacker: str, docker: aiodocker.Docker
):
    victim_project = f"{attacker}-7-prod"  # the old names collided: see labels.container_name
    try:
        victim_built, _ = await build(runtime, victim_project, "dockerfile")
        victim = await started(runtime, await runtime.start(spec(victim_project, victim_built)))
        evil_built, _ = await build(runtime, attacker, "prober", application=7)
        crafted = spec(attacker, evil_built, hostnames=[], application=7)
        crafted.process_type, crafted.command = "prod-1-web", "python3 app.py"
        assert L.legacy_container_name(attacker, 7, "prod-1-web", 1) == (
            L.legacy_container_name(victim_project, 1, "web", 1)
        )
        evil = await runtime.start(crafted)
        assert evil.name != victim.name
        assert (await runtime.inspect(victim.id)).running  # type: ignore[union-attr]
        assert (await get(victim)).json()["app"] == "dockerfile"

        # A container that already holds the attacker's next name but is not the attacker's
        # (here: labelled as the victim's) is refused, never force-removed.
        squatter_name = container_name(attacker, 7, "prod-1-web", 2, instance=SETTINGS.instance)
        labels = L.ownership_labels(victim_project, 1, "web", 9, instance=SETTINGS.instance)
        squatter = await docker.containers.create(
            {"Image": victim_built.image, "Labels": labels, "Cmd": ["sleep", "600"]},
            name=squatter_name,
        )
        try:
            crafted.replica = 2
            with pytest.raises(aiodocker.DockerError) as error:
                await runtime.start(crafted)
            assert error.value.status == 409
            assert (await squatter.show())["Name"] == f"/{squatter_name}"
        finally:
            await squatter.delete(force=True)
    finally:
        await cleanup(runtime, victim_project)


async def test_project_networks_per_instance_and_their_removal(
    runtime: DockerRuntime, project: str, docker: aiodocker.Docker
):
    other = DockerRuntime(Settings(instance=f"test-other-{uuid.uuid4().hex[:6]}"))
    try:
        ours = await runtime.ensure_project_network(project)
        theirs = await other.ensure_project_network(project)  # same project name, other install
        assert ours != theirs
        subnets = []
        for name, settings in ((ours, runtime.settings), (theirs, other.settings)):
            data = await (await docker.networks.get(name)).show()
            assert data["Labels"][L.INSTANCE] == settings.instance
            assert data["Labels"][L.PROJECT] == project
            subnet = ipaddress.ip_network(data["IPAM"]["Config"][0]["Subnet"])
            assert subnet.prefixlen == SETTINGS.project_network_prefix
            assert subnet.subnet_of(ipaddress.ip_network(SETTINGS.project_network_pool))  # type: ignore[arg-type]
            subnets.append(subnet)
        assert not subnets[0].overlaps(subnets[1])
        # Idempotent: asking again gives the same network.
        assert await runtime.ensure_project_network(project) == ours
        await other.remove_project_network(project)
        with pytest.raises(aiodocker.DockerError):
            await docker.networks.get(theirs)
        assert (await (await docker.networks.get(ours)).show())["Name"] == ours
    finally:
        await other.remove_project_network(project)
        await other.close()


async def test_a_foreign_network_with_the_projects_name_is_refused(
    runtime: DockerRuntime, attacker: str, docker: aiodocker.Docker
):
    name = network_name(attacker, instance=SETTINGS.instance)
    squat = await docker.networks.create({"Name": name, "Driver": "bridge", "Labels": {}})
    try:
        with pytest.raises(Exception, match="is not project"):
            await runtime.ensure_project_network(attacker)
    finally:
        await squat.delete()


async def test_many_parallel_networks_fit_the_pool(runtime: DockerRuntime):
    """More project networks at once than Docker's default pools hold (about 30)."""
    projects = [f"t-{uuid.uuid4().hex[:8]}" for _ in range(40)]
    try:
        names = await asyncio.gather(*(runtime.ensure_project_network(p) for p in projects))
        assert len(set(names)) == 40
    finally:
        await asyncio.gather(*(runtime.remove_project_network(p) for p in projects))


@pytest.fixture
async def private_runtime() -> AsyncIterator[DockerRuntime]:
    """A runtime of an installation of its own: reconcile removes every container of its
    instance that is not desired, so it must never run as the instance other tests share."""
    rt = DockerRuntime(Settings(instance=f"test-mig-{uuid.uuid4().hex[:8]}"))
    yield rt
    await rt.close()


async def test_reconcile_migrates_a_pre_upgrade_container_and_keeps_serving(
    private_runtime: DockerRuntime, docker: aiodocker.Docker
):
    """A container started before the upgrade: old name, on a shared network, labelled as the
    live release. Reconcile starts its replacement on the project's network and removes it only
    once the replacement answers; the app answers all along."""
    runtime = private_runtime
    settings = runtime.settings
    project = f"t-{uuid.uuid4().hex[:8]}"
    try:
        await _migrate_scenario(runtime, settings, project, docker)
    finally:
        await cleanup(runtime, project)


async def _migrate_scenario(
    runtime: DockerRuntime, settings: Settings, project: str, docker: aiodocker.Docker
) -> None:
    built, _ = await build(runtime, project, "dockerfile")
    shared = f"{settings.instance}-legacy"  # stands for the shared `paastech` of before
    await create_network(docker, settings, shared, runtime.networks.labels(project))
    old_spec = spec(project, built)
    # Builds land in the registry: the engine pulls the image on the platform's first start.
    await runtime.ensure_image(built.image)
    config = app_config(old_spec, settings, shared)
    legacy_name = L.legacy_container_name(project, 1, "web", 1)
    old = await docker.containers.create(config, name=legacy_name)
    try:
        await old.start()
        old_info = await runtime.inspect(old.id)
        assert old_info is not None
        await runtime.wait_healthy(old_info, "/health", 20)

        plan = ReleasePlan(
            project=project,
            application=1,
            image=built.image,
            processes=[Process("web", None, 1)],
            port=5000,
            hostnames=[f"{project}.{SETTINGS.base_domain}"],
            health_path="/health",
            health_timeout=20,
        )
        answered: list[bool] = []

        async def keep_asking() -> None:
            # The old container answers until its replacement is healthy and it is removed.
            while True:
                try:
                    answered.append((await get(old_info)).status_code == 200)
                except httpx.HTTPError:
                    return
                await asyncio.sleep(0.05)

        poller = asyncio.create_task(keep_asking())
        result = await reconcile(runtime, [DesiredProject(project, plan)], settings)
        await asyncio.wait_for(poller, 15)
        new_name = container_name(project, 1, "web", 1, instance=settings.instance)
        assert (result.started, result.removed) == ([new_name], [legacy_name])
        assert answered and all(answered)
        (new,) = await runtime.list_containers(project)
        assert new.name == new_name
        assert new.networks == [network_name(project, instance=settings.instance)]
        assert (await get(new)).json()["app"] == "dockerfile"
        again = await reconcile(runtime, [DesiredProject(project, plan)], settings)
        assert (again.adopted, again.started, again.removed) == ([new_name], [], [])
    finally:
        with contextlib.suppress(aiodocker.DockerError):
            await old.delete(force=True)
        await (await docker.networks.get(shared)).delete()
