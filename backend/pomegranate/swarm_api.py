"""The Engine API calls of the Swarm runtime that aiodocker has no public method for: updating a
service to a whole new spec (aiodocker's ``services.update`` only swaps the image or rolls back)
and reading one task's logs (it has service logs only).

They go through the client's own session and host (its public attributes), unversioned (the
daemon answers at its own API version), and raise aiodocker's DockerError as its methods do, so
callers handle one kind of error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError


async def _raise_for_status(response: aiohttp.ClientResponse) -> None:
    if response.status < 400:
        return
    body = await response.read()
    try:
        message = str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        message = body.decode(errors="replace")
    raise DockerError(response.status, message)


@asynccontextmanager
async def _request(
    docker: aiodocker.Docker,
    method: str,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    data: str | None = None,
    headers: Mapping[str, str] | None = None,
    client_timeout: aiohttp.ClientTimeout | None = None,
) -> AsyncIterator[aiohttp.ClientResponse]:
    url = f"{docker.docker_host}/{path}"
    try:
        async with docker.session.request(
            method, url, params=params, data=data, headers=headers, timeout=client_timeout
        ) as response:
            await _raise_for_status(response)
            yield response
    except aiohttp.ClientConnectionError as exc:
        # As aiodocker reports an unreachable engine.
        raise DockerError(900, f"cannot reach {docker.docker_host}: {exc}") from exc


async def update_service(
    docker: aiodocker.Docker,
    service_id: str,
    version: int,
    spec: Mapping[str, Any],
    headers: Mapping[str, str],
) -> None:
    """Replace service ``service_id``'s spec by ``spec`` (at ``version``, the index read with
    it: Swarm refuses an update based on a stale read)."""
    async with _request(
        docker,
        "POST",
        f"services/{service_id}/update",
        params={"version": str(version)},
        data=json.dumps(spec),
        headers={**headers, "Content-Type": "application/json"},
    ):
        pass


@asynccontextmanager
async def task_logs(
    docker: aiodocker.Docker, task_id: str, *, follow: bool, tail: int | None
) -> AsyncIterator[aiohttp.StreamReader]:
    """The multiplexed stdout/stderr stream of one task (8-byte frame headers: no TTY)."""
    params = {
        "stdout": "1",
        "stderr": "1",
        "follow": "1" if follow else "0",
        "tail": "all" if tail is None else str(tail),
    }
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with _request(
        docker, "GET", f"tasks/{task_id}/logs", params=params, client_timeout=timeout
    ) as response:
        yield response.content
