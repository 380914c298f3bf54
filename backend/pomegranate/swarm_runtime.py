"""The Docker Swarm runtime (issue 16): a release is one Swarm service per process type.

Where the seam is: the container-level Runtime protocol (start one replica, wait healthy, stop the
old ones) is how release.py switches releases on one engine. On Swarm the orchestrator does that
itself, so this runtime adds one release-level method, ``deploy(plan, on_log)``, and release.py
hands a whole plan to any runtime that has it (``RollingRuntime``). DockerRuntime has no such
method and behaves exactly as before.

What runs where:

* builds, the release phase and one-off commands stay on the platform host's engine (inherited
  from DockerRuntime: the isolated builder pushes to the platform registry);
* every long-running process runs as a service on the Swarm, through the manager's API
  (``swarm_docker_url``), image by digest from the registry at the address the nodes reach
  (``swarm_registry_address``), with the registry credentials sent along (X-Registry-Auth).

A service is updated in place: ``order: start-first``, one task at a time, gated on the container
health check (a task counts as running only once healthy), ``failure_action: rollback`` so a new
release that never gets healthy leaves the old one serving. Replicas are the scale; Swarm's
scheduler spreads a service's tasks over the nodes (fewest tasks of that service first). The web
port is published in ``host`` mode on an ephemeral port of the task's node, and the service uses
``endpoint_mode: dnsrr``: no routing mesh and no VIP (they need IPVS, which hosts may lack); the
ingress routes to node-address:published-port of each running task (see list_containers).
Each project gets its own overlay network; nothing else is attached to it.

A "container" of this runtime is a Swarm task: its id is the task id, its name
``<service>.<slot>``, its replica the slot. stop/remove of a task remove its whole service (what
StopProject and RemoveProject want); restart forces the service to roll its tasks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import logging
import shlex
from collections.abc import AsyncGenerator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError

from backend import labels as L
from backend.engine.engine import task_logs, update_service
from backend.engine.inspect import parse_time
from backend.engine.logs import LineSplitter
from backend.pomegranate import swarm_traefik
from backend.pomegranate.container_config import RESTART_POLICY, run_as_user
from backend.pomegranate.docker_runtime import DockerRuntime
from backend.pomegranate.images import image_user
from backend.pomegranate.networks import NetworkError, delete_network, get_network
from backend.pomegranate.procfile import shell_command
from backend.pomegranate.reconciler import DesiredProject, ReconcileResult
from backend.pomegranate.release import Process, ReleaseFailed, ReleasePlan, ReleaseResult
from backend.pomegranate.runtime import (
    ContainerInfo,
    HealthCheckError,
    NotOwned,
    RuntimeEvent,
    VolumeInfo,
)
from backend.pomegranate.swarm_volumes import NODE_LABEL as VOLUME_NODE_LABEL
from backend.pomegranate.swarm_volumes import SwarmVolumes, placement, service_mounts
from backend.settings import Settings

log = logging.getLogger(__name__)

SECOND_NS = 1_000_000_000
HEALTH_INTERVAL_NS = 1 * SECOND_NS
HEALTH_TIMEOUT_NS = 5 * SECOND_NS
HEALTH_RETRIES = 3
# After each task is updated, how long Swarm watches it for a failure before moving on.
UPDATE_MONITOR_NS = 2 * SECOND_NS
# Stop grace of a task (SIGTERM, then SIGKILL): as release.STOP_TIMEOUT_SECONDS on one engine.
STOP_GRACE_NS = 10 * SECOND_NS
POLL_SECONDS = 0.5
EVENTS_POLL_SECONDS = 1.0
# Task ids a watch remembers as ended (a listing that raced a poll must not report them again).
MAX_ENDED_REMEMBERED = 10_000
DOCKER_NETWORK_LABEL = "traefik.docker.network"
SWARM_NETWORK_LABEL = "traefik.swarm.network"  # Traefik v3's Swarm provider
UPDATE_FAILED_STATES = {"rollback_started", "rollback_completed", "rollback_paused", "paused"}


def service_name(project: str, process: str, *, instance: str) -> str:
    """<instance>_<project>_<process>: project names are DNS labels (no "_"), so no project or
    Procfile produces another project's service name; "." is not allowed in service names."""
    return f"{instance}_{project}_{process}"


def overlay_name(project: str, *, instance: str) -> str:
    """The project's overlay network: as service_name, Swarm names must be DNS components."""
    return f"{instance}_{project}"


def health_command(port: int, path: str | None) -> list[str]:
    """A container health check that works with the tools a base image has (wget, curl, python3,
    node or nc): HTTP GET of ``path`` (2xx/3xx), or a TCP connect without a path."""
    if path is None:
        script = (
            f"if command -v python3 >/dev/null; then python3 -S -c "
            f"\"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\"; "
            f"elif command -v nc >/dev/null; then nc -z 127.0.0.1 {port}; "
            f"elif command -v node >/dev/null; then node -e "
            f"\"require('net').connect({port}, '127.0.0.1').on('connect', () => process.exit(0))"
            f".on('error', () => process.exit(1))\"; "
            "else exit 1; fi"
        )
    else:
        url = shlex.quote(f"http://127.0.0.1:{port}{path}")
        # python3 -S with a bare socket: importing urllib under a 0.5 CPU limit takes seconds.
        request = "b'GET ' + sys.argv[1].encode() + b' HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n'"
        probe = (
            f"import socket, sys; s = socket.create_connection(('127.0.0.1', {port}), 3); "
            f"s.sendall({request}); "
            "f = s.recv(64).split(b' '); sys.exit(0 if len(f) > 1 and f[1][:1] in b'23' else 1)"
        )
        python = f'python3 -S -c "{probe}" {shlex.quote(path)}'
        script = (
            f"if command -v wget >/dev/null; then wget -q -T 3 -O /dev/null {url}; "
            f"elif command -v curl >/dev/null; then curl -fsS -m 3 -o /dev/null {url}; "
            f"elif command -v python3 >/dev/null; then {python}; "
            "else exit 1; fi"
        )
    return ["CMD-SHELL", script]


def _of_application(application: int) -> Callable[[dict[str, Any]], bool]:
    """Whether a task runs ``application`` (its container's ownership label)."""

    def check(task: dict[str, Any]) -> bool:
        spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
        return (spec.get("Labels") or {}).get(L.APPLICATION) == str(application)

    return check


def _registry_auth(username: str, password: str, address: str) -> str:
    payload = json.dumps({"username": username, "password": password, "serveraddress": address})
    return base64.urlsafe_b64encode(payload.encode()).decode()


class SwarmRuntime(DockerRuntime):
    """Runtime on a Docker Swarm (see the module docstring). Builds use the host engine."""

    def __init__(
        self,
        settings: Settings | None = None,
        docker: aiodocker.Docker | None = None,
        manager: aiodocker.Docker | None = None,
    ) -> None:
        super().__init__(settings, docker)
        if not self.settings.swarm_docker_url and manager is None:
            raise ValueError("the swarm runtime needs swarm_docker_url (the manager's API)")
        self._manager = manager
        self._service_locks: dict[str, asyncio.Lock] = {}
        # The running tasks each listing saw, handed to every events() watch (see there).
        self._watches: list[dict[str, tuple[ContainerInfo, float]]] = []
        self.node_volumes = SwarmVolumes(self)  # project volumes on the nodes (issue 15)

    @property
    def manager(self) -> aiodocker.Docker:
        if self._manager is None:
            self._manager = aiodocker.Docker(url=self.settings.swarm_docker_url)
        return self._manager

    async def close(self) -> None:
        await self.node_volumes.close()
        await super().close()
        if self._manager is not None:
            await self._manager.close()
            self._manager = None

    # ---------------------------------------------------------------------------------- specs

    @property
    def node_registry(self) -> str:
        return self.settings.swarm_registry_address or self.settings.registry_address

    def node_image(self, image: str) -> str:
        """The same image (same digest) at the registry address the nodes reach."""
        prefix = f"{self.settings.registry_address}/"
        if image.startswith(prefix):
            return f"{self.node_registry}/{image.removeprefix(prefix)}"
        return image

    async def _create_service(self, spec: dict[str, Any]) -> None:
        # aiodocker's create takes the parts of the spec, Env as a mapping (it formats it back).
        template = copy.deepcopy(spec["TaskTemplate"])
        container = template["ContainerSpec"]
        container["Env"] = dict(item.split("=", 1) for item in container.get("Env", []))
        s = self.settings
        await self.manager.services.create(
            template,
            name=spec["Name"],
            labels=spec["Labels"],
            mode=spec["Mode"],
            update_config=spec["UpdateConfig"],
            rollback_config=spec["RollbackConfig"],
            endpoint_spec=spec["EndpointSpec"],
            auth={"username": s.registry_username, "password": s.resolved_registry_password()},
            registry=self.node_registry,
        )

    # The registry credentials a service create/update sends (also used by swarm_addons).
    def auth_header(self) -> dict[str, str]:
        s = self.settings
        auth = _registry_auth(
            s.registry_username, s.resolved_registry_password(), self.node_registry
        )
        return {"X-Registry-Auth": auth}

    def _labels(self, plan: ReleasePlan, process: str) -> dict[str, str]:
        return L.ownership_labels(
            plan.project, plan.application, process, instance=self.settings.instance
        )

    def service_spec(
        self,
        plan: ReleasePlan,
        process: Process,
        network: str,
        image_user: str,
        node: str | None = None,
    ) -> dict[str, Any]:
        """The Swarm service of one process type of ``plan``; one that mounts project volumes
        is pinned to ``node``, where they are (swarm_volumes.py)."""
        s = self.settings
        web = process.type == L.WEB_PROCESS
        spec = plan.process_spec(process, 1, s)
        env = dict(spec.env)
        env.update(
            {
                "PORT": str(spec.port),
                "PAASTECH_APP": spec.project,
                "PAASTECH_RELEASE": str(spec.application),
                "PAASTECH_PROCESS": spec.process_type,
            }
        )
        labels = self._labels(plan, process.type)
        # The routing labels of one engine, on the service (Traefik's Swarm provider reads
        # services, not containers), with the v3 Swarm provider's network label instead of the
        # Docker provider's; replica 1 only to build them (a task's slot is its replica).
        routing = L.container_labels(
            spec.project,
            spec.application,
            spec.process_type,
            1,
            spec.hostnames,
            spec.port,
            network=network,
            tls=s.tls,
            certresolver=s.certresolver,
            health_path=spec.health_path,
            instance=s.instance,
            hsts_seconds=spec.hsts_seconds,
        )
        routing.pop(L.REPLICA, None)
        routing[SWARM_NETWORK_LABEL] = routing.pop(DOCKER_NETWORK_LABEL, network)
        container: dict[str, Any] = {
            "Image": self.node_image(spec.image),
            "Env": [f"{k}={v}" for k, v in env.items()],
            "Labels": labels,
            "User": run_as_user(image_user, s.container_user),
            "Init": True,
            "CapabilityDrop": ["ALL"],
            "StopGracePeriod": STOP_GRACE_NS,
        }
        if spec.command is not None:
            container["Command"] = ["/bin/sh", "-c", shell_command(spec.command)]
        if web:
            container["Healthcheck"] = {
                "Test": health_command(spec.port, spec.health_path),
                "Interval": HEALTH_INTERVAL_NS,
                "Timeout": HEALTH_TIMEOUT_NS,
                "Retries": HEALTH_RETRIES,
                "StartPeriod": int(plan.health_timeout * SECOND_NS),
            }
        memory = spec.memory_mb * 1024 * 1024
        task: dict[str, Any] = {
            "ContainerSpec": container,
            "Resources": {
                "Limits": {
                    "NanoCPUs": int(spec.cpu * SECOND_NS),
                    "MemoryBytes": memory,
                    "Pids": spec.pids_limit,
                },
            },
            "RestartPolicy": {
                "Condition": RESTART_POLICY["Name"],
                "Delay": SECOND_NS,
                "MaxAttempts": RESTART_POLICY["MaximumRetryCount"],
            },
            "Networks": [{"Target": network}],
            "LogDriver": {"Name": "json-file", "Options": {"max-size": "10m", "max-file": "3"}},
        }
        mounts = service_mounts(plan, process.type, s.instance)
        if mounts:
            if node is None:
                raise ReleaseFailed(f"{process.type} mounts volumes but has no node")
            container["Mounts"] = mounts
            task["Placement"] = placement(node)
            labels = {**labels, VOLUME_NODE_LABEL: node}
        endpoint: dict[str, Any] = {"Mode": "dnsrr"}
        if web:
            endpoint["Ports"] = [
                {"Protocol": "tcp", "TargetPort": spec.port, "PublishMode": "host"}
            ]
        rolling = {
            "Parallelism": 1,
            "Order": "start-first",
            "FailureAction": "rollback",
            "Monitor": UPDATE_MONITOR_NS,
            "MaxFailureRatio": 0,
        }
        return {
            "Name": service_name(plan.project, process.type, instance=s.instance),
            "Labels": {**routing, **labels},
            "TaskTemplate": task,
            "Mode": {"Replicated": {"Replicas": process.replicas}},
            "UpdateConfig": rolling,
            "RollbackConfig": {**rolling, "FailureAction": "pause"},
            "EndpointSpec": endpoint,
        }

    # ---------------------------------------------------------------------------------- volumes

    async def list_volumes(
        self, projects: list[str] | None = None, *, sizes: bool = False
    ) -> list[VolumeInfo]:
        """The project volumes on the nodes (swarm_volumes.py), and those of the release phase
        and one-off commands on the host engine; a node's copy first when both have one."""
        found = {
            v.docker_name: v for v in await self.node_volumes.list_volumes(projects, sizes=sizes)
        }
        for info in await super().list_volumes(projects, sizes=sizes):
            found.setdefault(info.docker_name, info)
        return sorted(found.values(), key=lambda v: (v.project, v.volume, v.docker_name))

    async def remove_volume(self, project: str, docker_name: str) -> None:
        await self.node_volumes.remove(project, docker_name)
        await super().remove_volume(project, docker_name)

    # ---------------------------------------------------------------------------------- network

    async def ensure_overlay(self, project: str) -> str:
        """The project's overlay network on the Swarm: only its services join it, and Traefik's
        container when one is configured (then it is attachable: swarm_traefik.py).
        The release phase and one-off commands run on the host engine, on the project's bridge
        network there (DockerRuntime.ensure_project_network, inherited)."""
        name = overlay_name(project, instance=self.settings.instance)
        wanted = self.networks.labels(project)
        async with self.networks.lock(name):
            existing = await get_network(self.manager, name)
            if existing is None:
                try:
                    await self.manager.networks.create(
                        {
                            "Name": name,
                            "Driver": "overlay",
                            "CheckDuplicate": True,
                            # Attachable only for Traefik's container to join (swarm_traefik.py).
                            "Attachable": bool(self.settings.swarm_traefik_container),
                            "Labels": wanted,
                        }
                    )
                except DockerError as exc:
                    if exc.status != 409:  # 409: created meanwhile; its labels are checked below
                        raise
                existing = await get_network(self.manager, name)
            labels = (existing or {}).get("Labels") or {}
            if existing is None or any(labels.get(k) != v for k, v in wanted.items()):
                raise NetworkError(f"network {name} exists but is not project {project}'s")
            if self.settings.swarm_traefik_container:
                await self._attach_traefik(name)
        return name

    async def _attach_traefik(self, network: str) -> None:
        try:
            await swarm_traefik.attach(self.manager, self.settings.swarm_traefik_container, network)
        except DockerError as exc:
            raise NetworkError(f"Traefik could not join network {network}: {exc.message}") from exc

    async def remove_project_network(self, project: str) -> None:
        """Both of the project's networks: the overlay, and the host engine's bridge."""
        await super().remove_project_network(project)
        name = overlay_name(project, instance=self.settings.instance)
        if await get_network(self.manager, name) is None:
            return
        if self.settings.swarm_traefik_container:  # a network with an endpoint cannot go
            await swarm_traefik.detach(self.manager, self.settings.swarm_traefik_container, name)
        await delete_network(self.manager, name)

    # ---------------------------------------------------------------------------------- services

    async def services(self, project: str | None = None) -> list[dict[str, Any]]:
        """This instance's services (of ``project`` when given), as the manager lists them."""
        labels = L.instance_filters(self.settings.instance)
        if project is not None:
            labels = [*labels, f"{L.PROJECT}={project}"]
        return [dict(s) for s in await self.manager.services.list(filters={"label": labels})]

    async def service(self, name: str) -> dict[str, Any] | None:
        """The service called exactly ``name`` as inspected; None when there is none."""
        try:
            data = dict(await self.manager.services.inspect(name))
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise
        spec_name = (data.get("Spec") or {}).get("Name")
        return data if spec_name == name else None

    async def _tasks(self, service: str) -> list[dict[str, Any]]:
        data = await self.manager.tasks.list(filters={"service": [service]})
        return [dict(t) for t in data or [] if t.get("ServiceID") or t.get("ID")]

    async def remove_service(self, name: str) -> None:
        """Remove service ``name`` (Swarm stops its tasks gracefully); a missing one is fine."""
        with contextlib.suppress(DockerError):
            await self.manager.services.delete(name)

    async def deploy(self, plan: ReleasePlan, on_log: Any) -> ReleaseResult:
        """Roll every process type of ``plan`` out as its service (created, or updated in place)
        and remove the services of process types the plan no longer has. Raises ReleaseFailed
        when a service does not converge: an updated one has been rolled back by Swarm (the old
        release keeps serving), a new one is removed."""
        await self.ensure_image(plan.image)  # refuses forbidden labels; gives the image's USER
        user = await image_user(self.docker, plan.image)
        network = await self.ensure_overlay(plan.project)
        nodes = await self.node_volumes.nodes_for(plan)
        if nodes:
            await on_log(
                "Volumes pin " + ", ".join(f"{t} to node {n}" for t, n in sorted(nodes.items()))
            )
            await self.node_volumes.prepare(
                plan, nodes, run_as_user(user, self.settings.container_user)
            )
        wanted = [p for p in plan.processes if p.type != L.RELEASE_PROCESS]
        previous: set[int] = set()
        for process in wanted:
            spec = self.service_spec(plan, process, network, user, nodes.get(process.type))
            name = spec["Name"]
            lock = self._service_locks.setdefault(name, asyncio.Lock())
            async with lock:
                existing = await self.service(name)
                if existing is None:
                    await on_log(f"Creating service {name} ({process.replicas} replicas)")
                    await self._create_service(spec)
                    try:
                        await self._wait_created(
                            name, plan.application, process.replicas, plan.health_timeout
                        )
                    except BaseException:
                        await asyncio.shield(self.remove_service(name))
                        raise
                else:
                    old = (existing.get("Spec") or {}).get("Labels") or {}
                    if old.get(L.APPLICATION, "").isdigit():
                        previous.add(int(old[L.APPLICATION]))
                    await on_log(f"Updating service {name} ({process.replicas} replicas)")
                    await update_service(
                        self.manager,
                        existing["ID"],
                        existing["Version"]["Index"],
                        spec,
                        self.auth_header(),
                    )
                    await self._wait_converged(
                        name,
                        process.replicas,
                        plan.health_timeout,
                        (existing.get("UpdateStatus") or {}).get("StartedAt"),
                        _of_application(plan.application),
                    )
            await on_log(f"{process.type} is healthy")
        names = {
            service_name(plan.project, p.type, instance=self.settings.instance) for p in wanted
        }
        for service in await self.services(plan.project):
            name = (service.get("Spec") or {}).get("Name")
            if name not in names:
                app = ((service.get("Spec") or {}).get("Labels") or {}).get(L.APPLICATION, "")
                if app.isdigit():
                    previous.add(int(app))
                await on_log(f"Removing service {name}")
                await self.remove_service(str(name))  # a service always has a name
        await on_log(f"Release {plan.application} is live")
        previous.discard(plan.application)
        return ReleaseResult(
            containers=await self.list_containers(plan.project),
            stopped_applications=sorted(previous),
        )

    def _deadline(self, health_timeout: float, replicas: int) -> float:
        # Each task may take the whole health grace, one at a time, plus pulling the image.
        return health_timeout * max(1, replicas) + 60

    async def _running(self, name: str) -> tuple[int, str]:
        """How many tasks of ``name`` run (healthy, for a checked one), and the latest error."""
        tasks = await self._tasks(name)
        running = [
            t
            for t in tasks
            if t.get("DesiredState") == "running"
            and (t.get("Status") or {}).get("State") == "running"
        ]
        errors = [
            (t.get("Status") or {}).get("Err") or (t.get("Status") or {}).get("Message") or ""
            for t in sorted(tasks, key=lambda t: t.get("UpdatedAt") or "")
            if (t.get("Status") or {}).get("State") in ("failed", "rejected", "shutdown")
        ]
        return len(running), next((e for e in reversed(errors) if e), "")

    async def _wait_created(self, name: str, application: int, replicas: int, grace: float) -> None:
        # A new service starts its tasks all at once: one health grace, not one per replica.
        await self._wait_converged(
            name, replicas, grace, None, _of_application(application), one_by_one=False
        )

    async def _wait_converged(
        self,
        name: str,
        replicas: int,
        grace: float,
        before: str | None,
        ready: Callable[[dict[str, Any]], bool],
        *,
        one_by_one: bool = True,
    ) -> None:
        """Wait until ``replicas`` tasks of ``name`` for which ``ready`` holds run (healthy, for
        a checked one) and no other task is wanted running. Raises ReleaseFailed when Swarm
        reports a failed (rolled back, paused) update started after ``before`` (the update
        status's StartedAt before ours: an older failure is not this update's), or at the
        deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline(grace, replicas if one_by_one else 1)
        while True:
            service = await self.service(name)
            if service is None:
                raise ReleaseFailed(f"service {name} vanished during its update")
            status = service.get("UpdateStatus") or {}
            state = status.get("State")
            if state in UPDATE_FAILED_STATES and status.get("StartedAt") != before:
                _, error = await self._running(name)
                reason = status.get("Message") or state
                raise ReleaseFailed(
                    f"{name} failed its update and was rolled back: {reason}"
                    + (f" ({error})" if error else "")
                )
            wanted = [t for t in await self._tasks(name) if t.get("DesiredState") == "running"]
            healthy = [t for t in wanted if (t.get("Status") or {}).get("State") == "running"]
            if all(ready(t) for t in wanted) and sum(map(ready, healthy)) >= replicas:
                return
            if loop.time() >= deadline:
                _, error = await self._running(name)
                raise ReleaseFailed(
                    f"{name}: {len(healthy)}/{replicas} replicas healthy after {grace:g}s"
                    + (f" ({error})" if error else "")
                )
            await asyncio.sleep(POLL_SECONDS)

    async def reconcile_services(
        self, desired: list[DesiredProject], skip: set[str]
    ) -> ReconcileResult:
        """Make the services match the database (Swarm restarts and reschedules tasks itself):
        a live release whose services are missing or of another Application is deployed again;
        services of a project nobody wants (or of a process type the live release lacks) are
        removed, with the network of a project that is gone. Projects in ``skip``, and
        Applications being deployed right now, are left alone."""
        result = ReconcileResult()
        wanted = {d.project: d for d in desired if d.project not in skip}
        present: dict[str, list[dict[str, Any]]] = {}
        for service in await self.services():
            labels = (service.get("Spec") or {}).get("Labels") or {}
            project = labels.get(L.PROJECT, "")
            if project and project not in skip:
                present.setdefault(project, []).append(service)

        async def ignore(line: str) -> None:
            pass

        for project, services in present.items():
            live = wanted[project].live if project in wanted else None
            in_flight = wanted[project].in_flight if project in wanted else set()
            kept_types = {p.type for p in live.processes} if live is not None else set()
            for service in services:
                spec = service.get("Spec") or {}
                labels = spec.get("Labels") or {}
                app = labels.get(L.APPLICATION, "")
                if labels.get(L.PROCESS) in kept_types or (app.isdigit() and int(app) in in_flight):
                    continue
                await self.remove_service(spec.get("Name", ""))
                result.removed.append(spec.get("Name", ""))
            if project not in wanted:
                with contextlib.suppress(DockerError, NetworkError):
                    await self.remove_project_network(project)
        for project, want in wanted.items():
            live = want.live
            if live is None:
                continue
            current = {
                (s.get("Spec") or {}).get("Labels", {}).get(L.PROCESS): (s.get("Spec") or {})
                .get("Labels", {})
                .get(L.APPLICATION)
                for s in present.get(project, [])
            }
            processes = [p for p in live.processes if p.type != L.RELEASE_PROCESS]
            if all(current.get(p.type) == str(live.application) for p in processes):
                result.adopted.extend(
                    service_name(project, p.type, instance=self.settings.instance)
                    for p in processes
                )
                continue
            try:
                await self.deploy(live, ignore)
            except Exception as exc:
                log.warning("could not redeploy %s: %s", project, exc)
                continue
            result.started.extend(
                service_name(project, p.type, instance=self.settings.instance) for p in processes
            )
        return result

    # ---------------------------------------------------------------------------------- tasks

    async def _node_addresses(self) -> dict[str, str]:
        nodes = await self.manager.nodes.list()
        return {n["ID"]: (n.get("Status") or {}).get("Addr", "") for n in nodes or []}

    def task_info(
        self, task: Mapping[str, Any], service: Mapping[str, Any], nodes: dict[str, str]
    ) -> ContainerInfo:
        """A task of ``service`` as a container: its slot is the replica, ``nodes`` (node id to
        address) gives the address the ingress routes to."""
        spec = service.get("Spec") or {}
        labels = dict(spec.get("Labels") or {})
        slot = int(task.get("Slot") or 0)
        labels[L.REPLICA] = str(slot)
        node = nodes.get(task.get("NodeID", ""), "")
        labels["paastech.swarm.node"] = node
        status = task.get("Status") or {}
        state = str(status.get("State") or "")
        ports = ((status.get("PortStatus") or {}).get("Ports")) or []
        published = next((int(p["PublishedPort"]) for p in ports if p.get("PublishedPort")), None)
        container = status.get("ContainerStatus") or {}
        running = state == "running" and task.get("DesiredState") == "running"
        exit_code = container.get("ExitCode")
        return ContainerInfo(
            id=str(task["ID"]),
            name=f"{spec.get('Name', '')}.{slot}",
            ownership=L.parse_labels(labels),
            state=state,
            running=running,
            host_port=published if running else None,
            exit_code=int(exit_code) if exit_code is not None and not running else None,
            oom_killed=False,
            started_at=parse_time(status.get("Timestamp")) if running else None,
            image=str(((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Image", "")),
            labels=labels,
            networks=[
                str((n.get("Network") or {}).get("Spec", {}).get("Name", ""))
                for n in task.get("NetworksAttachments") or []
            ],
        )

    async def list_containers(
        self, project: str | None = None, *, detail: bool = True
    ) -> list[ContainerInfo]:
        """The tasks Swarm wants running of our services (one per slot: the newest); the task
        listing carries every field, so ``detail`` changes nothing here."""
        nodes = await self._node_addresses()
        result: list[ContainerInfo] = []
        for service in await self.services(project):
            name = (service.get("Spec") or {}).get("Name", "")
            tasks = [t for t in await self._tasks(name) if t.get("DesiredState") == "running"]
            result.extend(self.task_info(t, service, nodes) for t in tasks)
        self._to_watches(result)
        return result

    def _to_watches(self, infos: list[ContainerInfo]) -> None:
        """Hand the running tasks a listing saw to every events() watch, with when."""
        now = asyncio.get_running_loop().time()
        for watch in self._watches:
            watch.update((i.id, (i, now)) for i in infos if i.running)

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        try:
            task = await self.manager.tasks.inspect(container_id)
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise
        try:
            service = await self.manager.services.inspect(task["ServiceID"])
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise
        labels = (service.get("Spec") or {}).get("Labels") or {}
        if labels.get(L.INSTANCE) != self.settings.instance:
            return None
        info = self.task_info(task, service, await self._node_addresses())
        self._to_watches([info])
        return info

    async def _service_of(self, container_id: str) -> str | None:
        info = await self.inspect(container_id)
        if info is None or info.ownership is None:
            return None
        return service_name(
            info.ownership.project, info.ownership.process, instance=self.settings.instance
        )

    async def _is_task(self, container_id: str) -> bool:
        try:
            await self.manager.tasks.inspect(container_id)
        except DockerError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def stop(self, container_id: str, timeout: float = 10) -> None:  # noqa: ASYNC109
        """Stopping a task removes its service (a StopProject); Swarm stops every task gracefully
        (StopGracePeriod). Any other id is a container on the host engine (the release phase, a
        one-off command), stopped there. A missing one is fine."""
        if await self._is_task(container_id):
            await self._remove_service_of(container_id)
        else:
            await super().stop(container_id, timeout)

    async def remove(self, container_id: str) -> None:
        """A task: as stop. A container on the host engine (the release phase, a one-off
        command): removed there; without this each release phase left its container behind."""
        if await self._is_task(container_id):
            await self._remove_service_of(container_id)
        else:
            await super().remove(container_id)

    async def _remove_service_of(self, task_id: str) -> None:
        name = await self._service_of(task_id)
        if name is not None:
            await self.remove_service(name)

    async def restart(
        self,
        container_id: str,
        project: str,
        timeout: float = 10,  # noqa: ASYNC109 - the SIGTERM grace, part of the API
    ) -> ContainerInfo:
        """Roll the task's service (start-first, health-gated): Swarm has no in-place restart."""
        info = await self.inspect(container_id)
        if info is None or info.ownership is None or info.ownership.project != project:
            raise NotOwned(f"task {container_id[:12]} is not one of {project}'s")
        name = service_name(project, info.ownership.process, instance=self.settings.instance)
        service = await self.service(name)
        if service is None:
            raise NotOwned(f"task {container_id[:12]} is not one of {project}'s")
        spec = service["Spec"]
        template = spec["TaskTemplate"]
        template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
        await update_service(
            self.manager, service["ID"], service["Version"]["Index"], spec, self.auth_header()
        )
        replicas = int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas") or 1)
        old_tasks = {t["ID"] for t in await self._tasks(name)}
        try:
            await self._wait_converged(
                name,
                replicas,
                timeout + 60,
                (service.get("UpdateStatus") or {}).get("StartedAt"),
                lambda task: task["ID"] not in old_tasks,
            )
        except ReleaseFailed as exc:
            raise HealthCheckError(exc.reason) from None
        fresh = [c for c in await self.list_containers(project) if c.name == info.name]
        return fresh[0] if fresh else info

    async def wait_healthy(
        self,
        container: ContainerInfo,
        path: str | None,
        timeout: float,  # noqa: ASYNC109 - a deadline for the whole wait, part of the API
    ) -> None:
        """Swarm gates a task on its own health check: running is healthy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            info = await self.inspect(container.id)
            if info is not None and info.running:
                return
            if info is None or info.state in ("failed", "rejected", "shutdown", "complete"):
                raise HealthCheckError(f"task {container.name} is {info.state if info else 'gone'}")
            if loop.time() >= deadline:
                raise HealthCheckError(f"task {container.name} not running after {timeout:g}s")
            await asyncio.sleep(POLL_SECONDS)

    async def logs(
        self, container_id: str, *, follow: bool, tail: int | None = None
    ) -> AsyncGenerator[str]:
        """A task's stdout and stderr lines, from its node through the manager (Swarm's task
        logs); the stream is multiplexed (8-byte frame headers: no TTY). Any other id is a
        container on the host engine (the release phase, a one-off command)."""
        try:
            await self.manager.tasks.inspect(container_id)
        except DockerError as exc:
            if exc.status != 404:
                raise
            async for line in super().logs(container_id, follow=follow, tail=tail):
                yield line
            return
        splitter = LineSplitter()
        async with task_logs(self.manager, container_id, follow=follow, tail=tail) as stream:
            while True:
                try:
                    header = await stream.readexactly(8)
                except asyncio.IncompleteReadError:
                    break
                size = int.from_bytes(header[4:], "big")
                chunk = await stream.readexactly(size)
                for line in splitter.feed(chunk.decode(errors="replace")):
                    yield line
        for line in splitter.flush():
            yield line

    async def start(self, spec: Any) -> ContainerInfo:
        """Swarm runs releases as services (deploy); a single container is never started."""
        raise NotImplementedError("the swarm runtime deploys whole releases (deploy)")

    async def events(self) -> AsyncGenerator[RuntimeEvent]:
        """Task state changes of our services, as runtime events ("start" when a task runs, "die"
        when one that ran ends), from polling the manager: Swarm's event stream has no task
        events.

        Comparing two polls alone misses a task that runs only between them: a deploy converges
        (every new task running) and the next scale-down or update ends those tasks before the
        watch looks again, so it reports neither their start nor their end (seen in the 2→5→1
        scale test: 2 of the 4 ends reported). So every running task that any listing of this
        runtime sees (the deploy's own, inspect, list_containers) is handed to each watch too,
        which reports it as started, and then ended once a poll that began after that listing
        finds it gone or stopped (an earlier poll may predate the task)."""
        alive: dict[str, ContainerInfo] = {}  # the tasks this watch knows to be running
        seen: dict[str, tuple[ContainerInfo, float]] = {}  # running tasks listings saw, and when
        ended: dict[str, None] = {}  # tasks reported ended (ordered: the oldest are dropped)
        first = True
        self._watches.append(seen)
        try:
            loop = asyncio.get_running_loop()
            while True:
                polled_at = loop.time()
                try:
                    current = {c.id: c for c in await self.all_tasks()}
                except (DockerError, aiohttp.ClientError, TimeoutError) as exc:
                    # A manager that is busy or electing: try again at the next poll, comparing
                    # with the last state seen (a watch that ended here would miss every event).
                    log.warning("listing swarm tasks failed: %s", exc)
                    await asyncio.sleep(EVENTS_POLL_SECONDS)
                    continue
                # What listings saw before this poll began (later ones wait for the next poll).
                handed = [info for info, at in seen.values() if at < polled_at]
                for info in handed:
                    del seen[info.id]
                if first:
                    alive = {i: c for i, c in current.items() if c.running}
                    first = False
                else:
                    running = [c for c in current.values() if c.running]
                    for info in [*handed, *running]:
                        if info.id not in alive and info.id not in ended:
                            alive[info.id] = info
                            yield self._task_event("start", info)
                    for task_id, before in list(alive.items()):
                        now = current.get(task_id)
                        if now is None or not now.running:
                            del alive[task_id]
                            ended[task_id] = None
                            yield self._task_event("die", now or before)
                    while len(ended) > MAX_ENDED_REMEMBERED:
                        del ended[next(iter(ended))]
                await asyncio.sleep(EVENTS_POLL_SECONDS)
        finally:
            self._watches.remove(seen)

    async def all_tasks(self) -> list[ContainerInfo]:
        """Every task of this instance's services, in any state."""
        nodes = await self._node_addresses()
        result: list[ContainerInfo] = []
        for service in await self.services():
            name = (service.get("Spec") or {}).get("Name", "")
            result.extend(self.task_info(t, service, nodes) for t in await self._tasks(name))
        return result

    @staticmethod
    def _task_event(kind: str, info: ContainerInfo) -> RuntimeEvent:
        return RuntimeEvent(
            kind=kind,
            container_id=info.id,
            ownership=info.ownership,
            exit_code=info.exit_code,
            time=datetime.now(UTC),
        )
