"""Container samples on a Swarm (issue 18): stats from the engine of each node that runs tasks.

The engine API serves the stats of its own containers only; the manager cannot read a task's
stats on another node. Pomegranate samples the manager's engine (its tasks, when the manager runs
any) and each engine listed in ``swarm_node_docker_urls`` (the nodes' APIs, e.g. through an SSH
or TLS-protected socket the operator provides). Tasks on a node not listed have no samples: the
gap the Metrics tab shows as fewer replicas (docs/architecture.md, "Metrics on Swarm").
"""

from __future__ import annotations

import asyncio
import logging

import aiodocker

from backend.metrics.containers import ContainerSample, ContainerSampler

log = logging.getLogger(__name__)


class SwarmSampler:
    """One ContainerSampler per node engine; a node that does not answer is skipped."""

    def __init__(self, engines: dict[str, aiodocker.Docker], instance: str) -> None:
        self.samplers = {url: ContainerSampler(docker, instance) for url, docker in engines.items()}

    async def sample(self) -> list[ContainerSample]:
        urls = list(self.samplers)
        results = await asyncio.gather(
            *(self.samplers[url].sample() for url in urls), return_exceptions=True
        )
        samples: list[ContainerSample] = []
        for url, result in zip(urls, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                log.warning("no stats from the Swarm node engine %s: %s", url, result)
                continue
            samples.extend(result)
        return samples
