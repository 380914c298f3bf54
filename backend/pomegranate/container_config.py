"""The hardening table: what the engine is asked to create for a tenant's process, as a pure
function of its ProcessSpec and the platform's settings (no I/O; unit-tested table-driven).

Every app container: all capabilities dropped, no-new-privileges, never privileged, a numeric
non-root user, memory with no swap on top, CPU and PID limits, json-file log rotation, the
on-failure restart policy (none for one-shot commands), tini as PID 1, no binds (only the
project's own named volumes), the project's bridge network, the platform's labels, and for ``web``
its port published on 127.0.0.1 only.
"""

from __future__ import annotations

import re
from typing import Any

from backend import labels as L
from backend.pomegranate.procfile import shell_command
from backend.pomegranate.runtime import ProcessSpec
from backend.settings import Settings

# Restart policy: a crashing process is restarted by the engine a few times (covers transient
# failures) and then left exited, so a crash loop does not burn the host forever; Pomegranate's
# event watcher sees each "die" and marks the Application crashed. A container stopped on purpose
# (docker stop / Runtime.stop) is not restarted by "on-failure".
RESTART_POLICY: dict[str, Any] = {"Name": "on-failure", "MaximumRetryCount": 5}
NO_RESTART: dict[str, Any] = {"Name": "no"}
LOG_CONFIG: dict[str, Any] = {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
CAP_DROP = ["ALL"]
SECURITY_OPT = ["no-new-privileges=true"]
# Where the init container mounts a new volume to give it to the app's user.
VOLUME_INIT_TARGET = "/volume"

# A USER the platform keeps: a numeric uid (and gid), neither 0. A name is not enough: the
# tenant's own /etc/passwd could map any name to uid 0.
NUMERIC_USER = re.compile(r"^([0-9]+)(?::([0-9]+))?$")


def run_as_user(image_user: str, fallback: str) -> str:
    """The user a container runs as: the image's USER when it is a numeric non-root uid[:gid],
    else ``fallback`` (Settings.container_user), so no tenant process is root on the host."""
    match = NUMERIC_USER.match(image_user.strip())
    if match and int(match.group(1)) != 0 and int(match.group(2) or 1) != 0:
        return image_user.strip()
    return fallback


def nano_cpus(cpu: float) -> int:
    """The engine's unit of a CPU limit."""
    return int(cpu * 1_000_000_000)


def app_config(
    spec: ProcessSpec,
    settings: Settings,
    network: str,
    image_user: str = "",
    *,
    once: bool = False,
) -> dict[str, Any]:
    """The create config of one process of a release. ``once``: a one-shot command (the release
    phase), never restarted by the engine: a failing release command must fail the release."""
    env = dict(spec.env)
    env.update(
        {
            "PORT": str(spec.port),
            "PAASTECH_APP": spec.project,
            "PAASTECH_RELEASE": str(spec.application),
            "PAASTECH_PROCESS": spec.process_type,
            "PAASTECH_REPLICA": str(spec.replica),
        }
    )
    memory = spec.memory_mb * 1024 * 1024
    host_config: dict[str, Any] = {
        "NetworkMode": network,
        "Memory": memory,
        "MemorySwap": memory,  # equal to Memory: no swap on top, the limit is real
        "NanoCpus": nano_cpus(max(spec.cpu, spec.startup_cpu)),
        "PidsLimit": spec.pids_limit,
        "CapDrop": list(CAP_DROP),
        "SecurityOpt": list(SECURITY_OPT),
        "Privileged": False,
        "ReadonlyRootfs": False,
        "Binds": [],
        # Project volumes only (issue 15); NoCopy: the mount point is the volume's root as
        # prepared for the app's user, not a copy of whatever the image has at that path.
        "Mounts": [
            {
                "Type": "volume",
                "Source": m.docker_name,
                "Target": m.path,
                "ReadOnly": False,
                "VolumeOptions": {"NoCopy": True},
            }
            for m in spec.mounts
        ],
        "LogConfig": LOG_CONFIG,
        "RestartPolicy": NO_RESTART if once else RESTART_POLICY,
        # tini as PID 1: forwards SIGTERM to `sh -c` commands and reaps zombies.
        "Init": True,
    }
    config: dict[str, Any] = {
        "Image": spec.image,
        "Env": [f"{k}={v}" for k, v in env.items()],
        "Labels": L.container_labels(
            spec.project,
            spec.application,
            spec.process_type,
            spec.replica,
            spec.hostnames,
            spec.port,
            network=network,
            tls=settings.tls,
            certresolver=settings.certresolver,
            health_path=spec.health_path,
            instance=settings.instance,
            hsts_seconds=spec.hsts_seconds,
        ),
        "HostConfig": host_config,
        "User": run_as_user(image_user, settings.container_user),
        "Tty": False,
        "AttachStdin": False,
        "OpenStdin": False,
    }
    if spec.startup_cpu > spec.cpu:
        config["Labels"][L.CPU_LIMIT] = str(nano_cpus(spec.cpu))
    if spec.command is not None:
        config["Entrypoint"] = []
        config["Cmd"] = ["/bin/sh", "-c", shell_command(spec.command)]
    if spec.process_type == L.WEB_PROCESS:
        port_key = f"{spec.port}/tcp"
        config["ExposedPorts"] = {port_key: {}}
        host_config["PortBindings"] = {port_key: [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    return config


def oneoff_config(
    spec: ProcessSpec,
    settings: Settings,
    network: str,
    image_user: str,
    command: list[str],
    *,
    tty: bool,
    attach: bool,
) -> dict[str, Any]:
    """A one-off command (issue 14): the app's config (user, caps, limits, network, env) with the
    one-off label, ``command`` as the argv without the image's ENTRYPOINT (`docker run
    --entrypoint ""`), no restart, stdin open when attached."""
    config = app_config(spec, settings, network, image_user, once=True)
    config["Labels"][L.ONEOFF] = L.MANAGED_VALUE
    config["Entrypoint"] = []
    config["Cmd"] = list(command)
    config.update(
        Tty=tty,
        OpenStdin=attach,
        StdinOnce=attach,  # the client closing stdin closes the command's stdin
        AttachStdin=attach,
        AttachStdout=attach,
        AttachStderr=attach,
    )
    return config


def volume_init_config(volume: str, user: str, settings: Settings) -> dict[str, Any]:
    """A short-lived container of the platform's busybox image that gives a new volume's root (only
    the root: the app owns what it wrote) to ``user``: root with CAP_CHOWN alone, no network,
    nothing of the tenant's. ``user`` must be a numeric uid[:gid] (ValueError otherwise: it is
    put in a shell command)."""
    if not NUMERIC_USER.match(user):
        raise ValueError(f"cannot give volume {volume} to {user!r}: not a numeric uid:gid")
    return {
        "Image": settings.volume_init_image,
        "User": "0:0",
        "Entrypoint": [],
        "Cmd": [
            "/bin/sh",
            "-c",
            f"chmod 0700 {VOLUME_INIT_TARGET} && chown {user} {VOLUME_INIT_TARGET}",
        ],
        "Labels": {L.MANAGED: L.MANAGED_VALUE, L.INSTANCE: settings.instance},
        "NetworkDisabled": True,
        "HostConfig": {
            "NetworkMode": "none",
            "CapDrop": list(CAP_DROP),
            "CapAdd": ["CHOWN"],
            "SecurityOpt": list(SECURITY_OPT),
            "Mounts": [{"Type": "volume", "Source": volume, "Target": VOLUME_INIT_TARGET}],
            "Memory": 32 * 1024 * 1024,
            "PidsLimit": 16,
            "RestartPolicy": NO_RESTART,
        },
    }
