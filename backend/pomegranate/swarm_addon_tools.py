"""pg:psql and redis:cli on the Swarm runtime (issue 16): the client tool runs beside the add-on.

On one engine the tool is a one-off container on the project's network (issue 15). On a Swarm the
one-off commands run on the platform host's engine, which is on none of the overlays, so the tool
could not even resolve the add-on. Here it is a one-off container created by the engine of the
add-on's node (swarm_node_engines.py) in the network namespace of the add-on's own server
container (``NetworkMode: container:<id>``):

* no network has to be made attachable or joined, and no port published: the tool sees what the
  server sees, the add-on's alias on its attached projects' overlays (the URL's host) included,
  and nothing another Client has (an add-on is attached to its own Client's projects only);
* the image is the add-on's own, already on that node (its server runs from it);
* the hardening is the one-off's (issue 14): the app's limits, every capability dropped,
  no-new-privileges, a non-root user, removed when the session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

from aiodocker.exceptions import DockerError

from backend import labels as L
from backend.pomegranate.addons import AddonError
from backend.pomegranate.container_config import oneoff_config
from backend.pomegranate.docker_runtime import DockerOneOff
from backend.pomegranate.images import image_user
from backend.pomegranate.runtime import OneOff, ProcessSpec
from backend.pomegranate.swarm_addons import SwarmAddons


class NodeOneOff(DockerOneOff):
    """A one-off container on a Swarm node's engine: removed through that engine."""

    async def remove(self) -> None:
        with contextlib.suppress(Exception):
            await self._attached.aclose()
        if not self._removed:
            try:
                await self.container.delete(force=True)
            except DockerError as exc:
                if exc.status != 404:
                    raise
            self._removed = True


async def start_tool(
    addons: SwarmAddons,
    name: str,
    spec: ProcessSpec,
    command: list[str],
    *,
    tty: bool,
    attach: bool,
    size: tuple[int, int] | None = None,
) -> OneOff:
    """The add-on's client tool as a one-off beside its server (see the module docstring):
    ``spec`` is the one-off's (the project's limits, the add-on's URL as env), ``command`` the
    tool and its arguments. AddonError when the add-on does not run or its node's engine cannot
    be reached (the message names the node and the setting)."""
    engine, server = await addons.server(name)
    service = await addons.service(name)
    if service is None:  # removed in between
        raise AddonError(f"add-on {name} is not running")
    spec.image = str(service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])
    settings = addons.runtime.settings
    user = await image_user(engine, spec.image)
    network = f"container:{server}"
    for _ in range(5):
        spec.replica = L.ONEOFF_FIRST_REPLICA + secrets.randbelow(900_000)
        config: dict[str, Any] = oneoff_config(
            spec, settings, network, user, command, tty=tty, attach=attach
        )
        one_off = L.container_name(
            spec.project,
            spec.application,
            spec.process_type,
            spec.replica,
            instance=settings.instance,
        )
        try:
            container = await engine.containers.create(config, name=one_off)
        except DockerError as exc:
            if exc.status == 409:
                continue  # that random number is in use: draw another
            raise
        break
    else:
        raise RuntimeError("no free one-off container name")
    handle = NodeOneOff(addons.runtime, container, one_off)
    try:
        if attach:
            await handle.attach()  # before the start: no early output is lost
        await container.start()
        if tty and size is not None:
            await handle.resize(*size)
    except BaseException:
        await asyncio.shield(handle.remove())
        raise
    return handle
