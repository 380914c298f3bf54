"""Config changes and the one policy they share: a change to what runs (env, scale, resources,
settings, volumes, add-on URLs) makes a new release of the live image (``config_changed``).

Resolvers and services call these; none of them makes a release itself. Callers have checked
ownership. A change to what already is changes nothing and makes no release (issue 19).
"""

from __future__ import annotations

from backend import labels as L
from backend import validation
from backend.db.models import Application, Client, Project
from backend.errors import ValidationFailed
from backend.events import EventKind, get_bus, project_topic
from backend.services import activity, config, quotas
from backend.services.applications.deployer import get_deployer
from backend.services.applications.spec import cpu_of, effective_replicas, memory_mb_of
from backend.services.projects import live_application

MAX_REPLICAS = 20
MEMORY_RANGE_MB = (32, 16384)
CPU_RANGE = (0.05, 16.0)


async def config_changed(project: Project, cause: str) -> Application | None:
    """The only path from a config change to a release: a new release of the live image with
    the config as it is now, or None while nothing runs (the next deploy picks it up)."""
    return await get_deployer().release_config(project, cause)


async def set_env(
    client: Client, project_name: str, values: dict[str, str], *, cause: str | None = None
) -> tuple[Project, Application | None]:
    """Set env vars (all or nothing); a release follows when a value really changed."""
    project, keys = await config.set_env_vars(client, project_name, values)
    if not keys:  # values set to what they already were change nothing: no release
        return project, None
    return project, await config_changed(project, cause or "env: set " + ", ".join(keys))


async def unset_env(
    client: Client, project_name: str, keys: list[str], *, cause: str | None = None
) -> tuple[Project, Application | None]:
    project = await config.unset_env_vars(client, project_name, keys)
    return project, await config_changed(project, cause or "env: unset " + ", ".join(sorted(keys)))


async def volumes_changed(project: Project, cause: str) -> Application | None:
    """A volume added or removed (issue 15): a new release mounts the project's volumes as
    they are now. When nothing runs, a removed volume's data goes at once."""
    app = await config_changed(project, cause)
    if app is None:
        await get_deployer().prune_volumes(project)
    return app


async def scale(project: Project, process_type: str, replicas: int) -> Application | None:
    from backend.pomegranate.procfile import validate_process_type

    try:
        validate_process_type(process_type)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="processType") from None
    if not 0 <= replicas <= MAX_REPLICAS:
        raise ValidationFailed(f"replicas must be between 0 and {MAX_REPLICAS}", field="replicas")
    if process_type == L.RELEASE_PROCESS:
        raise ValidationFailed(
            "the release process runs once per release, before it goes live: it can't be scaled",
            field="processType",
        )
    base = await live_application(project)
    if base is not None and process_type not in base.processes:
        known = ", ".join(sorted(base.processes)) or "none"
        raise ValidationFailed(
            f"no process type {process_type!r} in the running release (it has: {known})",
            field="processType",
        )
    current = effective_replicas(project.replicas, {process_type: ""})[process_type]
    if replicas == current:
        return None  # already that many: no release, no restarted container (issue 19)
    project.replicas = {**project.replicas, process_type: replicas}
    await quotas.check_runtime(project.owner_id, project)
    await project.save(update_fields=["replicas"])
    await _settings_changed(project, f"scale {process_type}={replicas}")
    await activity.record(
        project.owner_id, "scale", project=project, processType=process_type, replicas=replicas
    )
    return await config_changed(project, f"scale {process_type}={replicas}")


async def update_settings(
    project: Project,
    *,
    port: int | None,
    health_check_path: str | None,
    deploy_branch: str | None,
    hsts: bool | None = None,
) -> Application | None:
    """Port, health check path, deploy branch, HSTS. A release follows unless only the branch
    changes (the others are in the containers' environment or labels)."""
    if port is None and health_check_path is None and deploy_branch is None and hsts is None:
        raise ValidationFailed("give port, healthCheckPath, deployBranch or hsts", field="port")
    if (
        (port is None or port == project.port)
        and (health_check_path is None or health_check_path == project.health_check_path)
        and (deploy_branch is None or deploy_branch == project.deploy_branch)
        and (hsts is None or hsts == project.hsts)
    ):
        return None  # nothing changes: no release (issue 19)
    changes = []
    if port is not None:
        project.port = validation.port(port)
        changes.append(f"port={port}")
    if health_check_path is not None:
        project.health_check_path = validation.health_check_path(health_check_path)
        changes.append(f"health check {health_check_path}")
    if deploy_branch is not None:
        project.deploy_branch = validation.branch(deploy_branch)
        changes.append(f"deploy branch {deploy_branch}")
    if hsts is not None:
        project.hsts = hsts
        changes.append(f"hsts {'on' if hsts else 'off'}")
    await project.save(update_fields=["port", "health_check_path", "deploy_branch", "hsts"])
    await _settings_changed(project, "settings: " + ", ".join(changes))
    await activity.record(project.owner_id, "settings", project=project, changes=changes)
    if port is None and health_check_path is None and hsts is None:
        return None
    return await config_changed(project, "settings: " + ", ".join(changes))


async def set_resources(
    project: Project, memory_mb: int | None, cpu: float | None
) -> Application | None:
    if memory_mb is None and cpu is None:
        raise ValidationFailed("give memoryMb, cpu or both", field="memoryMb")
    if memory_mb is not None and not MEMORY_RANGE_MB[0] <= memory_mb <= MEMORY_RANGE_MB[1]:
        lo, hi = MEMORY_RANGE_MB
        raise ValidationFailed(f"memoryMb must be between {lo} and {hi}", field="memoryMb")
    if cpu is not None and not CPU_RANGE[0] <= cpu <= CPU_RANGE[1]:
        raise ValidationFailed(
            f"cpu must be between {CPU_RANGE[0]} and {CPU_RANGE[1]}", field="cpu"
        )
    settings = get_deployer().settings
    memory_now, cpu_now = memory_mb_of(project, settings), cpu_of(project, settings)
    if (memory_mb is None or memory_mb == memory_now) and (cpu is None or cpu == cpu_now):
        return None  # nothing changes: no release (issue 19)
    if memory_mb is not None:
        project.memory_mb = memory_mb
    if cpu is not None:
        project.cpu = cpu
    await quotas.check_runtime(project.owner_id, project)
    await project.save(update_fields=["memory_mb", "cpu"])
    parts = [f"memory={memory_mb}MB"] if memory_mb is not None else []
    parts += [f"cpu={cpu}"] if cpu is not None else []
    await _settings_changed(project, "resources " + " ".join(parts))
    await activity.record(
        project.owner_id, "resources", project=project, memoryMb=memory_mb, cpu=cpu
    )
    return await config_changed(project, "resources " + " ".join(parts))


async def _settings_changed(project: Project, message: str) -> None:
    await get_bus().publish(
        project_topic(project.id),
        EventKind.SETTINGS_CHANGED,
        {"project": project.name, "message": message},
    )
