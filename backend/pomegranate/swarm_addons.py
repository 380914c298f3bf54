"""Add-on servers on the Swarm runtime (issue 16): one Swarm service per add-on, pinned to a node.

What DockerAddons (addons.py) does with a container, this does with a service on the Swarm:

* the add-on's image (paastech/postgres:15, paastech/redis:7 on the platform host) is pushed to
  the platform registry once, and the service pulls it from there on its node;
* its data lives in a named volume on one node only (a local volume; Swarm has no shared storage
  here), so the service carries a placement constraint ``node.id==<id>``: its task never moves to
  another node, where the volume would be empty. The node is chosen once, at creation (the ready,
  active node with the fewest of our running tasks), and kept in a service label; ``node.id``
  rather than ``node.hostname`` because hostnames need not be unique (the test cluster's nodes
  all share the host's);
* one replica, updated ``stop-first``: two servers on one data directory must never run at once;
* the health check gates the task (a task is "running" only once the server answers), hardening
  and limits as on one engine;
* its networks: an internal overlay of its own (so it has one while attached nowhere), and the
  overlay of each attached project with the DNS alias of the add-on's URL. Another Client's
  services are on other overlays and cannot resolve or reach it.

Changing the attached projects, the password or the memory updates the service (its task is
replaced: the server restarts on the same node and volume, a few seconds without it). Removing
an add-on removes its service, then wipes its volume's data with a one-shot job on the same node
(the manager's API cannot delete a volume on another node; the empty volume stays).

Backups, restores, volume sizes and the pg:psql / redis:cli one-offs need what only the node's own
engine offers (exec, copy into a container, disk usage): Pomegranate reaches it through the
engine URLs the operator lists in ``swarm_node_docker_urls`` (swarm_node_engines.py) and runs there
exactly what it runs on one engine (addon_exec.py). A node it cannot reach: a clear AddonError
(FAILED_PRECONDITION) naming the node and the setting; its volume size is not reported (-1).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import AsyncGenerator
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from backend import labels as L
from backend.engine.engine import update_service
from backend.engine.inspect import volume_sizes
from backend.pomegranate.addon_exec import DATA_DIR, ExecFailed, backup_chunks, restore_data
from backend.pomegranate.addons import (
    PASSWORD_RE,
    PIDS_LIMIT,
    READY_TIMEOUT,
    SECOND,
    AddonError,
    AddonSpec,
    AddonState,
    _config_digest,
    _ready_command,
    check_kind,
    check_name,
)
from backend.pomegranate.swarm_node_engines import ENGINE_ERRORS, NodeEngines, NodeUnreachable
from backend.pomegranate.swarm_runtime import SwarmRuntime

log = logging.getLogger(__name__)

NODE_LABEL = "paastech.addon.node"  # the node id the add-on (and its volume) is pinned to
WIPE_TIMEOUT = 60.0
# Task states after which its container no longer runs.
STOPPED_STATES = {"complete", "shutdown", "failed", "rejected", "orphaned", "remove"}
POLL_SECONDS = 0.5


def addon_service_name(name: str, *, instance: str) -> str:
    """<instance>__addon_<name>: Swarm names are DNS components ("." is refused); a project's
    service is <instance>_<project>_<process> with a non-empty project, never "__"."""
    return f"{instance}__addon_{name}"


def registry_image(image: str, registry: str) -> str:
    """The add-on image's name in the platform registry: paastech/postgres:15 ->
    <registry>/paastech/addon-postgres:15 (apps are <registry>/paastech/app-<project>)."""
    repository, _, tag = image.partition(":")
    base = repository.rsplit("/", 1)[-1]
    return f"{registry}/paastech/addon-{base}:{tag or 'latest'}"


def placement(node_id: str) -> dict[str, Any]:
    """The constraint that keeps the add-on's task (and so its data) on node ``node_id``."""
    return {"Constraints": [f"node.id=={node_id}"]}


class SwarmAddons:
    """Add-on servers as Swarm services of the SwarmRuntime's manager (see the module docstring)."""

    def __init__(self, runtime: SwarmRuntime) -> None:
        self.runtime = runtime
        self.instance = runtime.settings.instance
        self._locks: dict[str, asyncio.Lock] = {}
        self._published: dict[str, str] = {}
        self._engines: NodeEngines | None = None

    @property
    def manager(self) -> Any:
        return self.runtime.manager

    @property
    def engines(self) -> NodeEngines:
        """The nodes' own engines (swarm_node_docker_urls), for what the manager cannot do."""
        if self._engines is None:
            self._engines = NodeEngines(self.manager, self.runtime.settings.swarm_node_engine_urls)
        return self._engines

    async def close(self) -> None:
        if self._engines is not None:
            await self._engines.close()
            self._engines = None

    def lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def service_name(self, name: str) -> str:
        return addon_service_name(name, instance=self.instance)

    def own_network(self, name: str) -> str:
        return addon_service_name(name, instance=self.instance)

    def volume_name(self, name: str) -> str:
        return L.addon_object_name(name, instance=self.instance)

    def _labels(self, name: str, kind: str) -> dict[str, str]:
        return {L.ADDON: name, L.ADDON_KIND: kind, L.INSTANCE: self.instance}

    # ------------------------------------------------------------------------------ objects

    async def service(self, name: str) -> dict[str, Any] | None:
        """The add-on's service as inspected, None when missing; refuses one not ours."""
        service_name = self.service_name(name)
        try:
            data = dict(await self.manager.services.inspect(service_name))
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise
        spec = data.get("Spec") or {}
        if spec.get("Name") != service_name:
            return None  # the manager matched an id prefix: not this add-on's service
        labels = spec.get("Labels") or {}
        if labels.get(L.ADDON) != name or labels.get(L.INSTANCE) != self.instance:
            raise AddonError(f"service {service_name} exists but is not add-on {name}'s")
        return data

    async def _tasks(self, name: str) -> list[dict[str, Any]]:
        return await self._tasks_of(self.service_name(name))

    async def _tasks_of(self, service: str) -> list[dict[str, Any]]:
        """The tasks of ``service``, oldest first; none once it is gone (the manager answers
        404 to a filter on a service it no longer has)."""
        try:
            tasks = await self.manager.tasks.list(filters={"service": [service]})
        except DockerError as exc:
            if exc.status == 404:
                return []
            raise
        return sorted((dict(t) for t in tasks or []), key=lambda t: t.get("CreatedAt") or "")

    async def _publish(self, image: str) -> str:
        """Push the host's add-on image to the platform registry (once per image); its name
        there, at the address the nodes reach."""
        if image in self._published:
            return self._published[image]
        await self.runtime.ensure_image(image)
        s = self.runtime.settings
        target = registry_image(image, s.registry_address)
        repository, _, tag = target.rpartition(":")
        docker = self.runtime.docker
        await docker.images.tag(image, repository, tag=tag)
        auth = {"username": s.registry_username, "password": s.resolved_registry_password()}
        try:
            await docker.images.push(repository, tag=tag, auth=auth)
        except DockerError as exc:
            raise AddonError(f"could not publish {image} to the registry: {exc.message}") from exc
        finally:
            # Untag only (by name, not id): the registry has it now, and an image removed by id
            # with -f (e.g. a cleanup of everything from the registry) would take the
            # platform's own paastech/<kind> tag with it.
            with contextlib.suppress(DockerError):
                await docker.images.delete(target, noprune=True)
        self._published[image] = self.runtime.node_image(target)
        return self._published[image]

    async def _ensure_own_network(self, name: str, kind: str) -> str:
        network = self.own_network(name)
        try:
            await self.manager.networks.create(
                {
                    "Name": network,
                    "Driver": "overlay",
                    "CheckDuplicate": True,
                    "Internal": True,
                    "Labels": self._labels(name, kind),
                }
            )
        except DockerError as exc:
            if exc.status != 409:  # 409: it exists; its labels are checked below
                raise
        data = await (await self.manager.networks.get(network)).show()
        if data.get("Name") != network or (data.get("Labels") or {}).get(L.ADDON) != name:
            raise AddonError(f"network {network} exists but is not add-on {name}'s")
        return network

    async def _choose_node(self) -> str:
        """The ready, active node with the fewest of our running tasks (first listed on a tie),
        a worker rather than a manager: managers keep the Swarm's state, and a database's disk
        and memory load are better away from them (a Swarm of managers only uses a manager)."""
        from backend.pomegranate.swarm_nodes import SwarmNodes

        nodes = [
            n
            for n in await SwarmNodes(self.manager, self.instance).list()
            if n.state == "ready" and n.availability == "active"
        ]
        if not nodes:
            raise AddonError("no ready, active node on the Swarm for the add-on")
        return min(nodes, key=lambda n: (n.role == "manager", n.tasks)).id

    def service_spec(
        self, spec: AddonSpec, image: str, node_id: str, own: str, projects: dict[str, str]
    ) -> dict[str, Any]:
        """The add-on's service: ``projects`` maps each attached project's overlay to it."""
        memory = spec.memory_mb * 1024 * 1024
        env = [f"PAASTECH_ADDON_PASSWORD={spec.password}"]
        if spec.kind == "redis":
            env += [f"REDISCLI_AUTH={spec.password}", f"PAASTECH_ADDON_MAXMEMORY={memory * 3 // 4}"]
        labels = self._labels(spec.name, spec.kind)
        volume = self.volume_name(spec.name)
        container: dict[str, Any] = {
            "Image": image,
            "Env": env,
            "Labels": labels,
            "Init": True,
            "CapabilityDrop": ["ALL"],
            "StopGracePeriod": 30 * SECOND,  # a database flushes on SIGTERM
            "Healthcheck": {
                "Test": ["CMD", *_ready_command(spec.kind)],
                "Interval": 2 * SECOND,
                "Timeout": 5 * SECOND,
                "Retries": 3,
                "StartPeriod": 60 * SECOND,
            },
            "Mounts": [
                {
                    "Type": "volume",
                    "Source": volume,
                    "Target": DATA_DIR,
                    "VolumeOptions": {"Labels": labels},
                },
                # PostgreSQL's shared memory lives in /dev/shm (Docker's default is 64 MB).
                {"Type": "tmpfs", "Target": "/dev/shm", "TmpfsOptions": {"SizeBytes": 128 << 20}},
            ],
        }
        networks = [{"Target": own}] + [
            {"Target": network, "Aliases": [spec.alias]} for network in sorted(projects)
        ]
        rolling = {"Parallelism": 1, "Order": "stop-first", "FailureAction": "pause"}
        return {
            "Name": self.service_name(spec.name),
            "Labels": {
                **labels,
                L.ADDON_CONFIG: _config_digest(spec),
                NODE_LABEL: node_id,
                "traefik.enable": "false",
            },
            "TaskTemplate": {
                "ContainerSpec": container,
                "Resources": {"Limits": {"MemoryBytes": memory, "Pids": PIDS_LIMIT}},
                "RestartPolicy": {"Condition": "any", "Delay": SECOND},
                "Placement": placement(node_id),
                "Networks": networks,
                "LogDriver": {"Name": "json-file", "Options": {"max-size": "10m", "max-file": "3"}},
            },
            "Mode": {"Replicated": {"Replicas": 1}},
            "UpdateConfig": rolling,
            "RollbackConfig": rolling,
            "EndpointSpec": {"Mode": "dnsrr"},  # no VIP: the alias names the task itself
        }

    # ------------------------------------------------------------------------------ ensure

    async def ensure(self, spec: AddonSpec) -> AddonState:
        """Make the add-on's service run as ``spec`` says, on exactly its projects' overlays."""
        check_name(spec.name)
        check_kind(spec.kind)
        if not PASSWORD_RE.fullmatch(spec.password):
            raise ValueError("the add-on password must be 16-128 of [A-Za-z0-9_-]")
        async with self.lock(spec.name):
            image = await self._publish(spec.image)
            own = await self._ensure_own_network(spec.name, spec.kind)
            projects = {
                await self.runtime.ensure_overlay(project): project for project in spec.projects
            }
            existing = await self.service(spec.name)
            if existing is None:
                node = await self._choose_node()
                wanted = self.service_spec(spec, image, node, own, projects)
                # aiodocker's create takes Env as a mapping (it formats it back).
                template = copy.deepcopy(wanted["TaskTemplate"])
                container = template["ContainerSpec"]
                container["Env"] = dict(item.split("=", 1) for item in container["Env"])
                await self.manager.services.create(
                    template,
                    name=wanted["Name"],
                    labels=wanted["Labels"],
                    mode=wanted["Mode"],
                    update_config=wanted["UpdateConfig"],
                    rollback_config=wanted["RollbackConfig"],
                    endpoint_spec=wanted["EndpointSpec"],
                    auth=self._auth(),
                    registry=self.runtime.node_registry,
                )
            else:
                node = (existing["Spec"].get("Labels") or {}).get(NODE_LABEL, "")
                wanted = self.service_spec(spec, image, node, own, projects)
                if await self._differs(existing, wanted):
                    await update_service(
                        self.manager,
                        existing["ID"],
                        existing["Version"]["Index"],
                        wanted,
                        self.runtime.auth_header(),
                    )
            await self._wait_ready(spec.name, wanted)
            return await self.status(spec.name)

    def _auth(self) -> dict[str, str]:
        s = self.runtime.settings
        return {"username": s.registry_username, "password": s.resolved_registry_password()}

    async def _differs(self, current: dict[str, Any], wanted: dict[str, Any]) -> bool:
        """Whether the service must be updated: another config, image or set of networks (the
        stored spec names its networks by id: compared by name)."""
        labels = current["Spec"].get("Labels") or {}
        task = current["Spec"].get("TaskTemplate") or {}
        image = (task.get("ContainerSpec") or {}).get("Image", "")
        want_task = wanted["TaskTemplate"]
        return (
            labels.get(L.ADDON_CONFIG) != wanted["Labels"][L.ADDON_CONFIG]
            or image != want_task["ContainerSpec"]["Image"]
            or set(await self._network_names(current))
            != {n["Target"] for n in want_task["Networks"]}
        )

    @staticmethod
    def _is_wanted(task: dict[str, Any], wanted: dict[str, Any]) -> bool:
        """Whether ``task`` runs the wanted spec: image, environment, memory and networks (an old
        task may still be listed running right after an update)."""
        spec = task.get("Spec") or {}
        container = spec.get("ContainerSpec") or {}
        want = wanted["TaskTemplate"]
        networks = {
            ((a.get("Network") or {}).get("Spec") or {}).get("Name", "")
            for a in task.get("NetworksAttachments") or []
        }
        memory = ((spec.get("Resources") or {}).get("Limits") or {}).get("MemoryBytes")
        return (
            container.get("Image") == want["ContainerSpec"]["Image"]
            and set(container.get("Env") or []) == set(want["ContainerSpec"]["Env"])
            and memory == want["Resources"]["Limits"]["MemoryBytes"]
            and networks == {n["Target"] for n in want["Networks"]}
        )

    async def _wait_ready(self, name: str, wanted: dict[str, Any]) -> None:
        """Until a task of the wanted spec runs (healthy: Swarm gates it on the health check)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        while True:
            last = ""
            for task in await self._tasks(name):
                status = task.get("Status") or {}
                running = task.get("DesiredState") == "running" and status.get("State") == "running"
                if running and self._is_wanted(task, wanted):
                    return
                last = status.get("Err") or status.get("Message") or last
            if loop.time() >= deadline:
                raise AddonError(
                    f"the add-on {name} did not become ready in {READY_TIMEOUT:g}s"
                    + (f": {last}" if last else "")
                )
            await asyncio.sleep(POLL_SECONDS)

    # ------------------------------------------------------------------------------ status

    async def status(self, name: str) -> AddonState:
        check_name(name)
        service = await self.service(name)
        if service is None:
            return AddonState(state="missing")
        tasks = await self._tasks(name)
        current = [t for t in tasks if t.get("DesiredState") == "running"]
        task = current[-1] if current else (tasks[-1] if tasks else {})
        status = task.get("Status") or {}
        state = str(status.get("State") or "pending")
        prefix = f"{self.instance}_"
        own = self.own_network(name)
        networks = await self._network_names(service)
        projects = sorted(n[len(prefix) :] for n in networks if n.startswith(prefix) and n != own)
        running = state == "running" and task.get("DesiredState") == "running"
        return AddonState(
            state=state,
            running=running,
            health="healthy" if running else "starting",
            projects=projects,
            started_at=str(status.get("Timestamp") or "") if running else "",
            # Tasks Swarm replaced because they failed: as a container's restart count.
            restart_count=sum(1 for t in tasks if (t.get("Status") or {}).get("State") == "failed"),
        )

    async def _network_names(self, service: dict[str, Any]) -> list[str]:
        """The names of the service's networks (its spec names them by id once created)."""
        result = []
        for target in (service["Spec"].get("TaskTemplate") or {}).get("Networks") or []:
            with contextlib.suppress(DockerError):
                data = await (await self.manager.networks.get(target.get("Target", ""))).show()
                result.append(str(data.get("Name", "")))
        return result

    async def node_of(self, name: str) -> str:
        """The id of the node the add-on is pinned to ("" when it has no service)."""
        service = await self.service(name)
        return str(((service or {}).get("Spec", {}).get("Labels") or {}).get(NODE_LABEL, ""))

    # ------------------------------------------------------------------------------ logs

    async def logs(self, name: str, *, tail: int, follow: bool) -> AsyncGenerator[str]:
        """The server's output lines (its current task's, through the manager)."""
        check_name(name)
        if await self.service(name) is None:
            return
        current = [t for t in await self._tasks(name) if t.get("DesiredState") == "running"]
        if not current:
            return
        try:
            async with contextlib.aclosing(
                self.runtime.logs(current[-1]["ID"], follow=follow, tail=tail)
            ) as lines:
                async for line in lines:
                    yield line
        except DockerError as exc:
            if exc.status != 404:
                raise AddonError(f"logs of add-on {name}: {exc.message}") from exc

    async def volume_sizes(self, names: list[str]) -> dict[str, int]:
        """Bytes in use by each add-on's volume, from the disk usage report of the engine of the
        node it is pinned to (one report per node); -1 where not reported: no such add-on, or
        its node cannot be reached (logged)."""
        for name in names:
            check_name(name)
        result = dict.fromkeys(names, -1)
        if not names:
            return result
        nodes: dict[str, list[str]] = {}
        for service in await self.manager.services.list(
            filters={"label": [f"{L.INSTANCE}={self.instance}", L.ADDON]}
        ):
            labels = (service.get("Spec") or {}).get("Labels") or {}
            name, node = labels.get(L.ADDON, ""), labels.get(NODE_LABEL, "")
            if name in result and node:
                nodes.setdefault(node, []).append(name)
        for node, on_node in nodes.items():
            try:
                measured = await volume_sizes(await self.engines.engine(node))
            except (NodeUnreachable, *ENGINE_ERRORS) as exc:
                log.warning("no volume sizes of add-ons %s: %s", ", ".join(on_node), exc)
                continue
            for name in on_node:
                result[name] = measured.get(self.volume_name(name), -1)
        return result

    # ------------------------------------------------------------------------------ the server

    async def server(self, name: str) -> tuple[aiodocker.Docker, str]:
        """The engine of the add-on's node and the id of its running server container there;
        AddonError when it does not run or its node cannot be reached."""
        service = await self.service(name)
        if service is None:
            raise AddonError(f"add-on {name} is not running")
        running = [
            (str(task.get("NodeID") or ""), str(container))
            for task in await self._tasks(name)
            if task.get("DesiredState") == "running"
            and (task.get("Status") or {}).get("State") == "running"
            and (
                container := ((task.get("Status") or {}).get("ContainerStatus") or {}).get(
                    "ContainerID"
                )
            )
        ]
        if not running:
            raise AddonError(f"add-on {name} is not running{await self._node_down(service)}")
        node, container = running[-1]  # the newest (tasks are listed oldest first)
        try:
            return await self.engines.engine(node), container
        except NodeUnreachable as exc:
            raise AddonError(f"add-on {name}: {exc}") from None

    async def _node_down(self, service: dict[str, Any]) -> str:
        """Why the add-on's task cannot run when its pinned node is not ready ("" otherwise)."""
        node = (service["Spec"].get("Labels") or {}).get(NODE_LABEL, "")
        if not node:
            return ""
        try:
            state = ((await self.manager.nodes.inspect(node_id=node)).get("Status") or {}).get(
                "State"
            )
        except DockerError:
            state = "gone"
        if state == "ready":
            return ""
        return (
            f": its node {await self.engines.describe(node)} is {state}; the add-on is pinned"
            " there with its data and starts again when the node is back"
        )

    async def backup(self, name: str, kind: str) -> AsyncGenerator[bytes]:
        """The add-on's data as a backup file, in chunks, run by its node's engine (formats:
        addon_exec.py, as on one engine)."""
        check_name(name)
        check_kind(kind)
        engine, container = await self.server(name)
        try:
            async for data in backup_chunks(engine, container, name, kind):
                yield data
        except ExecFailed as exc:
            raise AddonError(str(exc)) from None
        except DockerError as exc:
            raise AddonError(f"backup of {name} failed: {exc.message}") from None

    async def restore(self, name: str, kind: str, data: bytes) -> None:
        """Replace the add-on's data with a backup's, through its node's engine. Redis loads it
        at the server's next start: the service is forced to replace its task (same node, same
        volume), and this returns once the new one runs (healthy)."""
        check_name(name)
        check_kind(kind)
        async with self.lock(name):
            engine, container = await self.server(name)
            try:
                await restore_data(engine, container, name, kind, data)
            except ExecFailed as exc:
                raise AddonError(str(exc)) from None
            except DockerError as exc:
                raise AddonError(f"restore of {name} failed: {exc.message}") from None
            if kind == "redis":
                await self._replace_task(name)

    async def _replace_task(self, name: str) -> None:
        """Force the service to replace its task (stop-first), and wait until a new one runs."""
        service = await self.service(name)
        if service is None:
            raise AddonError(f"add-on {name} is gone")
        old = {t["ID"] for t in await self._tasks(name)}
        spec = copy.deepcopy(service["Spec"])
        template = spec["TaskTemplate"]
        template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
        await update_service(
            self.manager,
            service["ID"],
            service["Version"]["Index"],
            spec,
            self.runtime.auth_header(),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        while True:
            for task in await self._tasks(name):
                status = task.get("Status") or {}
                if (
                    task["ID"] not in old
                    and task.get("DesiredState") == "running"
                    and status.get("State") == "running"
                ):
                    return
            if loop.time() >= deadline:
                raise AddonError(f"the add-on {name} did not restart in {READY_TIMEOUT:g}s")
            await asyncio.sleep(POLL_SECONDS)

    # ------------------------------------------------------------------------------ remove

    async def remove(self, name: str) -> None:
        """Remove the service, wipe the volume's data on its node, drop the own network; what is
        missing is fine."""
        check_name(name)
        async with self.lock(name):
            service = await self.service(name)
            if service is not None:
                spec = service["Spec"]
                node = (spec.get("Labels") or {}).get(NODE_LABEL, "")
                image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
                await self._stop(name, service)
                with contextlib.suppress(DockerError):
                    await self.manager.services.delete(service["ID"])
                if node:
                    await self._wipe(name, node, image)
            await self._remove_own_network(name)

    async def _remove_own_network(self, name: str) -> None:
        """Delete the add-on's own overlay; the manager refuses while the removed service's
        endpoint is still being cleaned up on the node, so retry that for a while."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WIPE_TIMEOUT
        while True:
            try:
                network = await self.manager.networks.get(self.own_network(name))
                if ((await network.show()).get("Labels") or {}).get(L.ADDON) != name:
                    return  # not ours: left alone
                await network.delete()
                return
            except DockerError as exc:
                if exc.status == 404:
                    return
                if exc.status not in (403, 409) or loop.time() >= deadline:
                    raise AddonError(
                        f"network {self.own_network(name)} not removed: {exc.message}"
                    ) from exc
            await asyncio.sleep(POLL_SECONDS)

    async def _stop(self, name: str, service: dict[str, Any]) -> None:
        """Scale the service to 0 and wait until its server has stopped (a database flushes on
        SIGTERM): once the service is deleted its tasks are no longer listed, while the node may
        still be stopping the container, which must be over before the volume is wiped."""
        spec = copy.deepcopy(service["Spec"])
        spec["Mode"] = {"Replicated": {"Replicas": 0}}
        try:
            await update_service(
                self.manager,
                service["ID"],
                service["Version"]["Index"],
                spec,
                self.runtime.auth_header(),
            )
        except DockerError as exc:
            if exc.status != 404:
                raise
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WIPE_TIMEOUT
        while loop.time() < deadline:
            states = {(t.get("Status") or {}).get("State") for t in await self._tasks(name)}
            if states <= STOPPED_STATES:
                return
            await asyncio.sleep(POLL_SECONDS)
        raise AddonError(f"the add-on {name} did not stop in {WIPE_TIMEOUT:g}s")

    async def _wipe(self, name: str, node: str, image: str) -> None:
        """A one-shot job on the add-on's node, as the image's user, that empties its volume."""
        job = f"{self.service_name(name)}_wipe"
        volume = self.volume_name(name)
        template = {
            "ContainerSpec": {
                "Image": image,
                "Command": ["sh", "-c", f"find {DATA_DIR} -mindepth 1 -delete"],
                "Labels": self._labels(name, "wipe"),
                "CapabilityDrop": ["ALL"],
                "Mounts": [{"Type": "volume", "Source": volume, "Target": DATA_DIR}],
            },
            "RestartPolicy": {"Condition": "none"},
            "Placement": placement(node),
        }
        with contextlib.suppress(DockerError):
            await self.manager.services.delete(job)
        await self.manager.services.create(
            template,
            name=job,
            labels=self._labels(name, "wipe"),
            mode={"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
            auth=self._auth(),
            registry=self.runtime.node_registry,
        )
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WIPE_TIMEOUT
            while loop.time() < deadline:
                tasks = await self._tasks_of(job)
                states = {(t.get("Status") or {}).get("State") for t in tasks}
                if states & {"complete", "failed", "rejected"}:
                    break
                await asyncio.sleep(POLL_SECONDS)
        finally:
            with contextlib.suppress(DockerError):
                await self.manager.services.delete(job)
