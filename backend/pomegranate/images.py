"""App images on the host engine and in the platform registry: pulled (early, as a build ends:
issue 10), checked for labels the platform forbids, listed, measured and removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from backend.pomegranate.builder import forbidden_labels
from backend.pomegranate.registry import Registry
from backend.settings import Settings

log = logging.getLogger(__name__)


class ForbiddenImage(Exception):
    """An image whose config carries labels the platform does not allow."""


async def image_user(docker: aiodocker.Docker, image: str) -> str:
    """The USER of the image's config; "" when it has none or the engine lacks the image (the
    container create reports that)."""
    try:
        data = await docker.images.inspect(image)
    except DockerError as exc:
        if exc.status == 404:
            return ""
        raise
    return str((data.get("Config") or {}).get("User") or "")


class Images:
    """The app images of one engine and of the platform registry."""

    def __init__(
        self, settings: Settings, docker: Callable[[], aiodocker.Docker], registry: Registry
    ) -> None:
        self.settings = settings
        self._docker = docker
        self.registry = registry
        # Pulls started as a build finishes (issue 10): the engine fetches the new image while
        # the API records the build, so the release's ensure usually finds it there.
        self.pulls: dict[str, asyncio.Task[Any]] = {}

    async def close(self) -> None:
        """Cancel the background pulls."""
        for task in list(self.pulls.values()):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    def in_registry(self, image: str) -> bool:
        """Whether ``image`` is a reference into the platform registry."""
        return image.startswith(f"{self.settings.registry_address}/")

    def prefetch(self, image: str) -> None:
        """Start pulling a just-built registry image in the background (one pull per image)."""
        if not self.in_registry(image) or image in self.pulls:
            return
        task = asyncio.create_task(self._pull_missing(image))
        self.pulls[image] = task

        def done(finished: asyncio.Task[Any]) -> None:
            if self.pulls.get(image) is finished:
                del self.pulls[image]
            if not finished.cancelled() and finished.exception() is not None:
                # Not fatal: ensure pulls again and reports the error where it matters.
                log.info("background pull of %s failed: %s", image, finished.exception())

        task.add_done_callback(done)

    async def _pull_missing(self, image: str) -> dict[str, Any]:
        """The engine's inspect of ``image``, pulling it from the platform registry if missing."""
        docker = self._docker()
        try:
            return await docker.images.inspect(image)
        except DockerError as exc:
            if exc.status != 404 or not self.in_registry(image):
                raise
        s = self.settings
        began = time.perf_counter()
        await docker.images.pull(
            image,
            auth={
                "username": s.registry_username,
                "password": s.resolved_registry_password(),
                "serveraddress": s.registry_address,
            },
        )
        log.info("pulled %s in %.0f ms", image, (time.perf_counter() - began) * 1000)
        return await docker.images.inspect(image)

    async def ensure(self, image: str) -> None:
        """Pull a platform-registry image the engine does not have, then refuse it when its
        config carries a label the platform forbids (defence in depth: the builder strips them,
        but a container must never get routing or ownership labels from an image)."""
        pending = self.pulls.get(image)
        if pending is not None:
            # Its failure is not this call's: the pull below retries and reports it.
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)
        data = await self._pull_missing(image)
        bad = forbidden_labels((data.get("Config") or {}).get("Labels"))
        if bad:
            raise ForbiddenImage(
                f"image {image} carries labels the platform forbids ({', '.join(bad)}); "
                "only org.opencontainers.* labels are allowed"
            )

    async def list_images(self, project: str) -> list[str]:
        """The project's images in the platform registry (``<repo>@sha256:...``), newest
        Application first."""
        repo = f"{self.settings.registry_address}/{self.registry.repository(project)}"
        tags = await self.registry.tags(project)
        ordered = sorted(
            ((int(tag), digest) for tag, digest in tags.items() if tag.isdigit()), reverse=True
        )
        refs: list[str] = []
        for _, digest in ordered:
            ref = f"{repo}@{digest}"
            if ref not in refs:
                refs.append(ref)
        return refs

    async def remove(self, tag: str, *, force: bool = False) -> None:
        """Remove an image from the engine and, for a platform-registry image, its manifest from
        the registry. A missing one is fine. In use by a container: DockerError 409 unless
        ``force`` (and then the registry keeps it too)."""
        try:
            await self._docker().images.delete(tag, force=force)
        except DockerError as exc:
            if exc.status != 404:
                raise
        if self.in_registry(tag) and "@" in tag:
            repo, _, digest = tag.partition("@")
            project = repo.rpartition("/app-")[2]
            await self.registry.delete(project, digest)
