"""Protobuf messages <-> Pomegranate's dataclasses (the gRPC edge only)."""

from __future__ import annotations

import re

from backend import labels as L
from backend.errors import ValidationFailed
from backend.pomegranate.procfile import validate_process_type
from backend.pomegranate.reconciler import DesiredProject, ReconcileResult
from backend.pomegranate.release import Process, ReleasePlan, VolumePlan
from backend.pomegranate.runtime import BuiltImage, ContainerInfo, RuntimeEvent, VolumeInfo
from backend.rpc import pomegranate_pb2 as pb
from backend.settings import Settings
from backend.validation import PROJECT_NAME_RE, mount_path, volume_name


class BadRequest(ValueError):
    """The request cannot be acted on; the servicer answers INVALID_ARGUMENT."""


def check_project(project: str) -> str:
    if not PROJECT_NAME_RE.fullmatch(project or ""):
        raise BadRequest(f"invalid project name: {project!r}")
    return project


def release_plan(spec: pb.ReleaseSpec, settings: Settings) -> ReleasePlan:
    """The spec as a plan; BadRequest when it is unusable. The API sends every value (its
    services/applications/spec.py is the one place defaults are applied): a zero port, memory,
    CPU or health timeout, or no hostname, is refused, not defaulted."""
    check_project(spec.project)
    if spec.application < 1:
        raise BadRequest("application numbers start at 1")
    if not spec.image:
        raise BadRequest("image is required")
    seen: set[str] = set()
    processes: list[Process] = []
    for process in spec.processes:
        if not process.type or process.type in seen:
            raise BadRequest(f"process types must be distinct and named: {process.type!r}")
        if process.replicas < 0:
            raise BadRequest(f"replicas of {process.type} must not be negative")
        seen.add(process.type)
        processes.append(Process(process.type, process.command or None, process.replicas))
    if spec.memory_mb <= 0 or spec.cpu <= 0 or spec.health_timeout <= 0:
        raise BadRequest("memory, cpu and health timeout must be given and positive")
    if not 0 < spec.port < 65536:
        raise BadRequest(f"invalid port: {spec.port}")
    if not spec.hostnames:
        raise BadRequest("hostnames are required")
    volumes = [volume_plan(v) for v in spec.volumes]
    for attr in ("name", "path"):
        values = [getattr(v, attr) for v in volumes]
        if len(set(values)) != len(values):
            raise BadRequest(f"two volumes with the same {attr}")
    return ReleasePlan(
        project=spec.project,
        application=spec.application,
        image=spec.image,
        processes=processes,
        env=dict(spec.env),
        port=spec.port,
        hostnames=list(spec.hostnames),
        memory_mb=spec.memory_mb,
        cpu=spec.cpu,
        health_path=spec.health_path or None,
        health_timeout=spec.health_timeout,
        hsts_seconds=max(0, spec.hsts_seconds),
        volumes=volumes,
    )


VOLUME_KEY_RE = re.compile(r"^[a-z0-9]{6,16}$")


def volume_plan(mount: pb.VolumeMount) -> VolumePlan:
    """The API validated it already; checked again because it names engine objects and paths."""
    try:
        volume_name(mount.name)
        mount_path(mount.path)
        for process in mount.processes:
            validate_process_type(process)
    except ValidationFailed as exc:
        raise BadRequest(f"volume {mount.name!r}: {exc.message}") from None
    except ValueError as exc:
        raise BadRequest(f"volume {mount.name!r}: {exc}") from None
    if not VOLUME_KEY_RE.fullmatch(mount.key):
        raise BadRequest(f"volume {mount.name!r}: invalid key")
    return VolumePlan(mount.name, mount.key, mount.path, tuple(mount.processes))


def check_docker_volume(project: str, docker_name: str, instance: str) -> str:
    """A Docker volume name the caller may ask about for ``project``: one of its volumes' names."""
    prefix = f"{instance}{L.NAME_SEPARATOR}{project}{L.NAME_SEPARATOR}"
    rest = docker_name.removeprefix(prefix)
    name, _, key = rest.partition(L.NAME_SEPARATOR)
    if rest == docker_name or not VOLUME_KEY_RE.fullmatch(key):
        raise BadRequest(f"{docker_name!r} is not a volume of {project}")
    try:
        volume_name(name)
    except ValidationFailed:
        raise BadRequest(f"{docker_name!r} is not a volume of {project}") from None
    return docker_name


def volume(info: VolumeInfo) -> pb.VolumeInfo:
    return pb.VolumeInfo(
        project=info.project,
        name=info.volume,
        docker_name=info.docker_name,
        size_bytes=info.size_bytes,
        created_at=info.created_at.isoformat() if info.created_at else "",
    )


def desired_state(state: pb.DesiredState, settings: Settings) -> list[DesiredProject]:
    projects: list[DesiredProject] = []
    for item in state.projects:
        check_project(item.project)
        live = release_plan(item.live, settings) if item.HasField("live") else None
        if live is not None and live.project != item.project:
            raise BadRequest(f"live spec of {item.project} names project {live.project}")
        projects.append(DesiredProject(item.project, live, set(item.in_flight)))
    return projects


def container(info: ContainerInfo) -> pb.Container:
    own = info.ownership
    return pb.Container(
        id=info.id,
        name=info.name,
        project=own.project if own else info.labels.get(L.PROJECT, ""),
        application=own.application if own else 0,
        process=own.process if own else "",
        replica=own.replica if own else 0,
        state=info.state,
        running=info.running,
        host_port=info.host_port or 0,
        exit_code=info.exit_code or 0,
        oom_killed=info.oom_killed,
        started_at=info.started_at.isoformat() if info.started_at else "",
        restart_count=info.restart_count,
        one_off=L.is_oneoff(info.labels),
    )


def build_result(built: BuiltImage) -> pb.BuildResult:
    return pb.BuildResult(
        image=built.image,
        stack=built.plan.stack,
        processes={k: v or "" for k, v in built.plan.processes.items()},
        exposed_port=built.plan.exposed_port or 0,
    )


def runtime_event(event: RuntimeEvent, oom_killed: bool) -> pb.RuntimeEvent:
    own = event.ownership
    return pb.RuntimeEvent(
        kind=event.kind,
        project=own.project if own else "",
        application=own.application if own else 0,
        process=own.process if own else "",
        replica=own.replica if own else 0,
        exit_code=event.exit_code or 0,
        oom_killed=oom_killed,
        container_id=event.container_id,
    )


def reconcile_report(result: ReconcileResult) -> pb.ReconcileReport:
    return pb.ReconcileReport(
        adopted=result.adopted, started=result.started, removed=result.removed
    )
