"""Project volumes (issue 15) on the Swarm runtime: a process type that mounts one is pinned to a
node.

A project volume is a Docker ``local`` volume: it exists on one node only, and Swarm has no
shared storage here. So every service that mounts one carries the placement constraint
``node.id==<id>`` and records that node in its ``paastech.volume.node`` label; Swarm creates the
named volume (with the project's labels) on that node when the first task mounts it. Every
replica of the type runs on that node and they share the volume; the project's other process
types stay free to run anywhere.

The node of a volume is chosen once and then kept:

1. the node an existing service of the project that mounts it is pinned to (its label);
2. else the node whose engine already has the volume (a service removed and deployed again);
3. else, for a volume never used, the node of another volume of the same process type, or a
   ready, active node chosen as add-ons choose theirs (a worker, the fewest of our tasks).

A process type whose volumes live on different nodes is refused (ReleaseFailed), as is one whose
volume's node is gone from the Swarm (its task would wait there forever).

The app runs as a non-root user and a new volume's root belongs to root: before the services
start, a one-shot Swarm job on the node (the platform's volume_init_image, published to the
registry, as root with CHOWN and FOWNER only, no network) gives each volume to the app's user.
Sizes and removal need the node's own engine (swarm_node_engines.py): a volume on a node whose
engine cannot be reached is listed with size -1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiodocker
from aiodocker.exceptions import DockerError

from backend import labels as L
from backend.engine.inspect import inspect_volume
from backend.pomegranate.container_config import NUMERIC_USER, VOLUME_INIT_TARGET
from backend.pomegranate.release import ReleaseFailed, ReleasePlan
from backend.pomegranate.runtime import VolumeInfo
from backend.pomegranate.swarm_node_engines import ENGINE_ERRORS, NodeEngines, NodeUnreachable
from backend.pomegranate.volumes import ProjectVolumes

if TYPE_CHECKING:
    from backend.pomegranate.swarm_runtime import SwarmRuntime

log = logging.getLogger(__name__)

NODE_LABEL = "paastech.volume.node"  # the node a service's volumes (and so its tasks) are on
INIT_TIMEOUT = 120.0  # the init job: pulling the small image on the node, then one chown
POLL_SECONDS = 0.5
DONE_STATES = {"complete", "failed", "rejected"}


def placement(node_id: str) -> dict[str, Any]:
    """The constraint that keeps a process type's tasks on the node of its volumes."""
    return {"Constraints": [f"node.id=={node_id}"]}


def service_mounts(plan: ReleasePlan, process_type: str, instance: str) -> list[dict[str, Any]]:
    """The volume mounts of ``process_type``'s service; the volume Swarm creates on first use
    gets the project's labels (how it is listed and owned)."""
    return [
        {
            "Type": "volume",
            "Source": m.docker_name,
            "Target": m.path,
            "VolumeOptions": {"Labels": L.volume_labels(plan.project, m.volume, instance=instance)},
        }
        for m in plan.mounts(process_type, instance)
    ]


def pinned_volumes(services: list[dict[str, Any]]) -> dict[str, str]:
    """Volume (Docker name) -> node, from the label and mounts of existing services."""
    found: dict[str, str] = {}
    for service in services:
        spec = service.get("Spec") or {}
        node = (spec.get("Labels") or {}).get(NODE_LABEL, "")
        mounts = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Mounts") or []
        for mount in mounts:
            if node and mount.get("Type") == "volume" and mount.get("Source"):
                found.setdefault(str(mount["Source"]), node)
    return found


def assign_nodes(
    volumes_of: dict[str, list[str]], known: dict[str, str], fresh: str | None
) -> dict[str, str]:
    """The node of each process type in ``volumes_of`` (type -> its volumes' Docker names), given
    the nodes ``known`` for some volumes; a volume known nowhere goes where another volume of its
    type is, else to ``fresh``. ReleaseFailed when a type's volumes are on different nodes."""
    nodes = dict(known)
    changed = True
    while changed:  # spread known nodes to the volumes that share a process type with them
        changed = False
        for volumes in volumes_of.values():
            known_here = {nodes[v] for v in volumes if v in nodes}
            if len(known_here) == 1:
                (node,) = known_here
                for v in volumes:
                    if v not in nodes:
                        nodes[v] = node
                        changed = True
    result: dict[str, str] = {}
    for process_type, volumes in sorted(volumes_of.items()):
        placed = {nodes.get(v) or fresh for v in volumes}
        if None in placed:
            raise ReleaseFailed(f"no node to run {process_type} with its volumes on")
        if len(placed) > 1:
            on = ", ".join(sorted(str(n) for n in placed))
            raise ReleaseFailed(
                f"the volumes of {process_type} are on different nodes ({on}); a process type"
                " runs on one node: mount volumes of one node only"
            )
        result[process_type] = str(placed.pop())
        for v in volumes:
            nodes.setdefault(v, result[process_type])
    return result


def init_job(volume: str, user: str, image: str, node: str, labels: dict[str, str]) -> Any:
    """The task template of the job that gives ``volume`` on ``node`` to ``user`` (uid:gid)."""
    if not NUMERIC_USER.match(user):
        raise ReleaseFailed(f"cannot give volume {volume} to {user!r}: not a numeric uid:gid")
    return {
        "ContainerSpec": {
            "Image": image,
            "User": "0:0",
            "Command": [
                "/bin/sh",
                "-c",
                f"chown {user} {VOLUME_INIT_TARGET} && chmod 0700 {VOLUME_INIT_TARGET}",
            ],
            "Labels": labels,
            "CapabilityDrop": ["ALL"],
            "CapabilityAdd": ["CAP_CHOWN", "CAP_FOWNER"],
            "Mounts": [
                {
                    "Type": "volume",
                    "Source": volume,
                    "Target": VOLUME_INIT_TARGET,
                    "VolumeOptions": {"Labels": labels},
                }
            ],
        },
        "Resources": {"Limits": {"MemoryBytes": 32 * 1024 * 1024, "Pids": 16}},
        "RestartPolicy": {"Condition": "none"},
        "Placement": placement(node),
    }


class SwarmVolumes:
    """The projects' volumes on the nodes of ``runtime``'s Swarm (see the module docstring)."""

    def __init__(self, runtime: SwarmRuntime) -> None:
        self.runtime = runtime
        self.instance = runtime.settings.instance
        self._engines: NodeEngines | None = None
        self._given: set[tuple[str, str, str]] = set()  # (volume, node, uid:gid) prepared
        self._init_image: str | None = None

    @property
    def engines(self) -> NodeEngines:
        if self._engines is None:
            self._engines = NodeEngines(
                self.runtime.manager, self.runtime.settings.swarm_node_engine_urls
            )
        return self._engines

    async def close(self) -> None:
        if self._engines is not None:
            await self._engines.close()
            self._engines = None

    # ------------------------------------------------------------------------------ placing

    async def nodes_for(self, plan: ReleasePlan) -> dict[str, str]:
        """The node of each process type of ``plan`` that mounts a volume (see the docstring)."""
        volumes_of = {
            p.type: [m.docker_name for m in plan.mounts(p.type, self.instance)]
            for p in plan.processes
            if p.type != L.RELEASE_PROCESS and plan.mounts(p.type, self.instance)
        }
        if not volumes_of:
            return {}
        wanted = {v for volumes in volumes_of.values() for v in volumes}
        known = {
            v: n
            for v, n in pinned_volumes(await self.runtime.services(plan.project)).items()
            if v in wanted
        }
        missing = wanted - known.keys()
        if missing:
            known.update(await self._find_on_nodes(missing))
        fresh = None
        if any(v not in known for v in wanted):
            fresh = await self._choose_node()
        result = assign_nodes(volumes_of, known, fresh)
        ready = {n["ID"] for n in await self.runtime.manager.nodes.list() or []}
        for process_type, node in result.items():
            if node not in ready:
                raise ReleaseFailed(
                    f"the volumes of {process_type} are on node {node}, which left the Swarm"
                )
        return result

    async def _find_on_nodes(self, names: set[str]) -> dict[str, str]:
        """Where volumes already exist, from each node's engine that answers."""
        found: dict[str, str] = {}
        for node in await self.runtime.manager.nodes.list() or []:
            try:
                docker = await self.engines.engine(node["ID"])
                for name in sorted(names - found.keys()):
                    if await inspect_volume(docker, name) is not None:
                        found[name] = node["ID"]
            except (NodeUnreachable, *ENGINE_ERRORS) as exc:
                log.info("cannot look for volumes on node %s: %s", node["ID"], exc)
        return found

    async def _choose_node(self) -> str:
        """A ready, active worker with the fewest of our tasks (a manager on a managers-only
        Swarm), as for add-ons: the managers keep the Swarm's state."""
        from backend.pomegranate.swarm_nodes import SwarmNodes

        nodes = [
            n
            for n in await SwarmNodes(self.runtime.manager, self.instance).list()
            if n.state == "ready" and n.availability == "active"
        ]
        if not nodes:
            raise ReleaseFailed("no ready, active node on the Swarm for the app's volumes")
        return min(nodes, key=lambda n: (n.role == "manager", n.tasks)).id

    # ------------------------------------------------------------------------------ preparing

    async def prepare(self, plan: ReleasePlan, nodes: dict[str, str], user: str) -> None:
        """Give each volume of ``plan``'s services, on its node, to the app's ``user``."""
        done: set[str] = set()
        for process_type, node in sorted(nodes.items()):
            for mount in plan.mounts(process_type, self.instance):
                key = (mount.docker_name, node, user)
                if mount.docker_name in done or key in self._given:
                    continue
                labels = L.volume_labels(plan.project, mount.volume, instance=self.instance)
                await self._give(mount.docker_name, node, user, labels)
                self._given.add(key)
                done.add(mount.docker_name)

    async def _publish_init_image(self) -> str:
        """The platform's volume_init_image in the registry, at the address the nodes reach."""
        if self._init_image is None:
            from backend.pomegranate.swarm_addons import registry_image

            runtime = self.runtime
            s = runtime.settings
            image = s.volume_init_image
            await runtime.ensure_image(image)
            target = registry_image(image, s.registry_address)
            repository, _, tag = target.rpartition(":")
            await runtime.docker.images.tag(image, repository, tag=tag)
            auth = {"username": s.registry_username, "password": s.resolved_registry_password()}
            try:
                await runtime.docker.images.push(repository, tag=tag, auth=auth)
            except DockerError as exc:
                raise ReleaseFailed(f"could not publish {image}: {exc.message}") from None
            finally:
                with contextlib.suppress(DockerError):
                    await runtime.docker.images.delete(target, noprune=True)
            self._init_image = runtime.node_image(target)
        return self._init_image

    async def _give(self, volume: str, node: str, user: str, labels: dict[str, str]) -> None:
        manager = self.runtime.manager
        # Swarm names are DNS components: the volume's dots become dashes (max 63 characters).
        job = f"{volume.replace('.', '-')}-init"[-63:].lstrip("-")
        template = init_job(volume, user, await self._publish_init_image(), node, labels)
        with contextlib.suppress(DockerError):
            await manager.services.delete(job)
        s = self.runtime.settings
        await manager.services.create(
            template,
            name=job,
            labels={L.MANAGED: L.MANAGED_VALUE, L.INSTANCE: self.instance},
            mode={"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
            auth={"username": s.registry_username, "password": s.resolved_registry_password()},
            registry=self.runtime.node_registry,
        )
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + INIT_TIMEOUT
            while True:
                tasks = await manager.tasks.list(filters={"service": [job]}) or []
                states = {(t.get("Status") or {}).get("State") for t in tasks}
                if "complete" in states:
                    return
                if states & DONE_STATES:
                    errors = [(t.get("Status") or {}).get("Err") or "" for t in tasks]
                    raise ReleaseFailed(
                        f"could not prepare volume {volume} on node {node}: "
                        + ("; ".join(e for e in errors if e) or "the job failed")
                    )
                if loop.time() >= deadline:
                    raise ReleaseFailed(
                        f"could not prepare volume {volume} on node {node} in {INIT_TIMEOUT:g}s"
                    )
                await asyncio.sleep(POLL_SECONDS)
        finally:
            with contextlib.suppress(DockerError):
                await manager.services.delete(job)

    # ------------------------------------------------------------------------------ listing

    async def list_volumes(self, projects: list[str] | None, *, sizes: bool) -> list[VolumeInfo]:
        """The project volumes on every node whose engine answers; a volume a service is pinned
        with on a node that does not answer is listed with size -1."""
        found: dict[str, VolumeInfo] = {}
        unreachable: set[str] = set()
        for node in await self.runtime.manager.nodes.list() or []:
            try:
                docker = await self.engines.engine(node["ID"])
                on_node = ProjectVolumes(self.runtime.settings, _always(docker))
                for info in await on_node.list_volumes(projects, sizes=sizes):
                    found.setdefault(info.docker_name, info)
            except (NodeUnreachable, *ENGINE_ERRORS) as exc:
                log.warning("no volumes of node %s: %s", node["ID"], exc)
                unreachable.add(node["ID"])
        wanted = None if projects is None else set(projects)
        for service in await self.runtime.services():
            labels = (service.get("Spec") or {}).get("Labels") or {}
            project = labels.get(L.PROJECT, "")
            if wanted is not None and project not in wanted:
                continue
            for name, pinned_to in pinned_volumes([service]).items():
                if pinned_to in unreachable and name not in found:
                    volume = name.split(L.NAME_SEPARATOR)[2] if name.count(".") >= 3 else ""
                    found[name] = VolumeInfo(
                        project=project,
                        volume=volume,
                        docker_name=name,
                        size_bytes=-1,
                        created_at=None,
                    )
        return sorted(found.values(), key=lambda v: (v.project, v.volume, v.docker_name))

    async def remove(self, project: str, docker_name: str) -> None:
        """Remove the volume on every node that has it (NotOwned, VolumeInUse as on one engine);
        a node that does not answer keeps its copy (logged)."""
        for node in await self.runtime.manager.nodes.list() or []:
            try:
                docker = await self.engines.engine(node["ID"])
            except (NodeUnreachable, *ENGINE_ERRORS) as exc:
                log.warning("volume %s not removed from node %s: %s", docker_name, node["ID"], exc)
                continue
            await self._remove_ended_tasks(docker, docker_name)
            await ProjectVolumes(self.runtime.settings, _always(docker)).remove(
                project, docker_name
            )

    @staticmethod
    async def _remove_ended_tasks(docker: Any, docker_name: str) -> None:
        """The containers of ended Swarm tasks that mounted the volume (the init job's, and the
        task history Swarm keeps of a service): they block its removal and never run again."""
        ended = await docker.containers.list(
            all=True,
            filters={
                "volume": [docker_name],
                "status": ["exited", "created", "dead"],
                "label": ["com.docker.swarm.task.id"],
            },
        )
        for container in ended:
            with contextlib.suppress(DockerError):
                await container.delete(force=False)


def _always(docker: aiodocker.Docker) -> Callable[[], aiodocker.Docker]:
    """The engine getter ProjectVolumes takes, for one node's engine."""
    return lambda: docker
