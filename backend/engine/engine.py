"""Engine API calls aiodocker 0.27 has no public method for, made over the client's own public
``session`` (its connector, TLS and API version), so no caller reaches into aiodocker's private
``_query``/``_query_json``. The one Docker access helper of Pomegranate and the ingress:

* a per-consumer ``/events`` stream: ``docker.events`` is one shared channel per client that
  starts in a background task, so a caller cannot tell when the engine has accepted the stream
  (the ingress lists containers only after that, to miss nothing) nor run two filtered streams;
* ``/system/df`` (the volumes' disk usage);
* Swarm: updating a service to a whole new spec (aiodocker's ``services.update`` only swaps the
  image or rolls back) and one task's logs (aiodocker has service logs only);
* half-closing an attached stdin: aiodocker's ``Stream.close()`` closes both directions.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError
from aiodocker.stream import Stream

# A stream is read for as long as it lasts: no total or read timeout.
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_read=None)


async def _url(docker: aiodocker.Docker, path: str) -> str:
    if docker.api_version == "auto":
        await docker.version()  # resolves docker.api_version, as aiodocker's own calls do
    return f"{docker.docker_host}/{docker.api_version}/{path}"


def _params(params: Mapping[str, Any]) -> dict[str, str]:
    # The engine takes filters (and any structured value) as JSON in the query string.
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}


@asynccontextmanager
async def engine_request(
    docker: aiodocker.Docker,
    method: str,
    path: str,
    params: Mapping[str, Any] | None = None,
    *,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    streaming: bool = False,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """``method`` ``path`` of the engine API (``body``: sent as JSON); the response is open
    inside the block. An engine error is raised as aiodocker's DockerError (status and message),
    as its own calls do. ``streaming``: read for as long as the engine sends (no total or read
    timeout)."""
    options: dict[str, Any] = {"timeout": STREAM_TIMEOUT} if streaming else {}
    if body is not None:
        options["data"] = json.dumps(body)
        headers = {**(headers or {}), "Content-Type": "application/json"}
    try:
        response = await docker.session.request(
            method,
            await _url(docker, path),
            params=_params(params or {}),
            headers=dict(headers or {}),
            **options,
        )
    except aiohttp.ClientConnectionError as exc:
        raise DockerError(900, f"Cannot connect to Docker Engine: {exc}") from None
    try:
        if response.status >= 400:
            text = await response.text()
            try:
                message = str(json.loads(text).get("message") or text)
            except (ValueError, AttributeError):
                message = text
            raise DockerError(response.status, message)
        yield response
    finally:
        response.close()


@asynccontextmanager
async def engine_get(
    docker: aiodocker.Docker,
    path: str,
    params: Mapping[str, Any] | None = None,
    *,
    streaming: bool = False,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """GET ``path`` of the engine API (see engine_request)."""
    async with engine_request(docker, "GET", path, params, streaming=streaming) as response:
        yield response


async def engine_get_json(
    docker: aiodocker.Docker, path: str, params: Mapping[str, Any] | None = None
) -> Any:
    async with engine_get(docker, path, params) as response:
        return await response.json(content_type=None)


async def update_container(
    docker: aiodocker.Docker, container_id: str, resources: Mapping[str, Any]
) -> None:
    """Change a container's resources in place (`docker update`: NanoCpus, Memory, ...); the
    engine writes them to its cgroup at once and keeps them across restarts."""
    async with engine_request(docker, "POST", f"containers/{container_id}/update", body=resources):
        pass


async def update_service(
    docker: aiodocker.Docker,
    service_id: str,
    version: int,
    spec: Mapping[str, Any],
    headers: Mapping[str, str],
) -> None:
    """Replace Swarm service ``service_id``'s spec by ``spec`` (at ``version``, the index read
    with it: Swarm refuses an update based on a stale read)."""
    async with engine_request(
        docker,
        "POST",
        f"services/{service_id}/update",
        {"version": str(version)},
        body=spec,
        headers=headers,
    ):
        pass


@asynccontextmanager
async def task_logs(
    docker: aiodocker.Docker, task_id: str, *, follow: bool, tail: int | None
) -> AsyncIterator[aiohttp.StreamReader]:
    """The multiplexed stdout/stderr stream of one Swarm task (8-byte frame headers: no TTY)."""
    params = {
        "stdout": "1",
        "stderr": "1",
        "follow": "1" if follow else "0",
        "tail": "all" if tail is None else str(tail),
    }
    async with engine_get(docker, f"tasks/{task_id}/logs", params, streaming=True) as response:
        yield response.content


def half_close(stream: Stream | None) -> None:
    """End an attached container's stdin and keep reading its output (the engine closes the
    command's stdin with StdinOnce). aiodocker keeps the hijacked connection in ``Stream._resp``
    and offers only a full close: this is the one place that reads it."""
    response = stream._resp if stream is not None else None
    transport = response.connection.transport if response and response.connection else None
    if transport is not None and transport.can_write_eof():
        transport.write_eof()
