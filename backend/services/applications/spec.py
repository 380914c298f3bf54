"""What an Application runs: its config snapshot and its release spec for Pomegranate.

The one place the platform's defaults (port, memory, CPU, health timeout, replicas) are applied:
Pomegranate receives complete specs and refuses a zero value instead of defaulting it
(backend/pomegranate/convert.py).
"""

from __future__ import annotations

import json

from backend import labels as L
from backend import security
from backend.db.models import Application, Project
from backend.rpc import pomegranate_types as pt
from backend.services import config, volumes
from backend.settings import Settings


def effective_replicas(scale: dict[str, int], processes: dict[str, str]) -> dict[str, int]:
    """web runs 1 replica unless scaled; other process types run only when scaled (as Heroku)."""
    return {
        t: 0 if t == L.RELEASE_PROCESS else scale.get(t, 1 if t == L.WEB_PROCESS else 0)
        for t in processes
    }


def port_of(project: Project, found: int | None, settings: Settings) -> int:
    """The project's own PORT, else the one the image exposes (``found``), else the default."""
    return project.port or found or settings.default_port


def memory_mb_of(project: Project, settings: Settings) -> int:
    return project.memory_mb or settings.default_memory_mb


def cpu_of(project: Project, settings: Settings) -> float:
    return project.cpu or settings.default_cpu


def env_of(app: Application) -> dict[str, str]:
    """The env vars the release runs with (decrypted from its snapshot)."""
    return json.loads(security.decrypt(app.env_snapshot)) if app.env_snapshot else {}


async def snapshot_config(app: Application, project: Project, settings: Settings) -> None:
    """Freeze the project's config into ``app``: a release is an image plus this config."""
    env = await config.env_of(project)
    app.env_snapshot = security.encrypt(json.dumps(env))
    app.domains = await config.hostnames_of(project)
    app.replicas = effective_replicas(project.replicas, app.processes)
    app.memory_mb = memory_mb_of(project, settings)
    app.cpu = cpu_of(project, settings)
    # The project's volumes as they are now (issue 15): a rollback keeps today's volumes.
    app.volumes = volumes.snapshot(await volumes.of_project(project))
    await app.save()


def release_spec(app: Application, project: Project, settings: Settings) -> pt.ReleaseSpec:
    """What runs for ``app``: its image, env snapshot, processes and limits (also the base of a
    one-off command's container, issue 14), every value filled in."""
    return pt.ReleaseSpec(
        project=project.name,
        application=app.number,
        image=app.image or "",
        processes=tuple(
            pt.ProcessSpec(type=t, command=app.processes.get(t) or "", replicas=n)
            for t, n in sorted(app.replicas.items())
        ),
        env=env_of(app),
        port=app.port or settings.default_port,
        # Only the default hostname goes into the labels: custom domains route through
        # backend/routing.py, so a domain change restarts nothing.
        hostnames=(config.default_hostname(project),),
        memory_mb=app.memory_mb or settings.default_memory_mb,
        cpu=app.cpu or settings.default_cpu,
        health_path=project.health_check_path,
        health_timeout=settings.health_check_timeout_seconds,
        hsts_seconds=settings.hsts_max_age_seconds if project.hsts else 0,
        volumes=tuple(
            pt.VolumeMount(
                name=v["name"],
                key=v["key"],
                path=v["mountPath"],
                processes=tuple(v["processTypes"]),
            )
            for v in app.volumes or []
        ),
    )
