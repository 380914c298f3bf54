"""The Docker engine of each Swarm node, found by node id (issue 16).

The manager's API schedules services on every node, but it cannot exec into, copy into, or
measure the volumes of a container on another node: only that node's own engine can. The operator
lists the nodes' engine APIs in one setting, ``swarm_node_docker_urls`` (the former
``swarm_stats_docker_urls`` is still read); each engine tells which node it is
(``/info``: ``Swarm.NodeID``), so the list needs no node ids and survives a node re-joining.
The manager's own engine is always one of them.

An add-on whose node has no engine here, or whose engine does not answer, gets a NodeUnreachable
naming the node and the setting: the caller answers FAILED_PRECONDITION.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError

log = logging.getLogger(__name__)

SETTING = "swarm_node_docker_urls"
# An engine that does not answer /info in this long counts as unreachable (a dead host over TCP
# would otherwise hang the caller until the OS gives up).
INFO_TIMEOUT = 10.0
# Errors of an engine that cannot be reached (aiodocker reports a refused connection as 900).
ENGINE_ERRORS = (DockerError, aiohttp.ClientError, OSError, TimeoutError)


class NodeUnreachable(Exception):
    """No engine of the node answers here; the message names the node and the setting."""


class NodeEngines:
    """The engines of ``urls`` and the manager's, by the id of the node each one is."""

    def __init__(self, manager: aiodocker.Docker, urls: list[str]) -> None:
        self.manager = manager
        self.urls = list(urls)
        self._clients: dict[str, aiodocker.Docker] = {}  # url -> client (opened on first use)
        self._nodes: dict[str, str] = {}  # node id -> url ("" for the manager)
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        self._nodes.clear()

    def _client(self, url: str) -> aiodocker.Docker:
        if not url:
            return self.manager
        if url not in self._clients:
            self._clients[url] = aiodocker.Docker(url=url)
        return self._clients[url]

    @staticmethod
    async def _node_id(docker: aiodocker.Docker) -> str:
        info = await asyncio.wait_for(docker.system.info(), INFO_TIMEOUT)
        return str((info.get("Swarm") or {}).get("NodeID") or "")

    async def engine(self, node_id: str) -> aiodocker.Docker:
        """The engine of node ``node_id``, answering now; NodeUnreachable otherwise."""
        async with self._lock:
            url = self._nodes.get(node_id)
            if url is not None:
                try:
                    docker = self._client(url)
                    if await self._node_id(docker) == node_id:
                        return docker
                except ENGINE_ERRORS as exc:
                    raise await self._unreachable(
                        node_id,
                        f"its engine {url or 'the manager'} does not answer: {_reason(exc)}",
                    ) from None
                del self._nodes[node_id]  # that URL is another node now: look again
            failures: list[str] = []
            for candidate in ["", *self.urls]:
                if candidate in self._nodes.values():
                    continue
                try:
                    found = await self._node_id(self._client(candidate))
                except ENGINE_ERRORS as exc:
                    failures.append(f"{candidate or 'the manager'}: {_reason(exc)}")
                    continue
                if found:
                    self._nodes[found] = candidate
                if found == node_id:
                    return self._client(candidate)
            detail = f"no engine in {SETTING} is this node"
            if failures:
                detail += "; not answering: " + "; ".join(failures)
            raise await self._unreachable(node_id, detail)

    async def _unreachable(self, node_id: str, detail: str) -> NodeUnreachable:
        return NodeUnreachable(
            f"node {await self.describe(node_id)} cannot be reached ({detail}): list its engine"
            f" API in {SETTING} (PAASTECH_{SETTING.upper()})"
        )

    async def describe(self, node_id: str) -> str:
        """``<id> (<hostname>, <address>, <state>)`` as the manager knows the node."""
        try:
            node: dict[str, Any] = dict(await self.manager.nodes.inspect(node_id=node_id))
        except ENGINE_ERRORS:
            return node_id
        hostname = (node.get("Description") or {}).get("Hostname") or "?"
        status = node.get("Status") or {}
        return f"{node_id} ({hostname}, {status.get('Addr') or '?'}, {status.get('State') or '?'})"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer in {INFO_TIMEOUT:g}s"
    if isinstance(exc, DockerError):
        return str(exc.message)
    return str(exc) or type(exc).__name__
