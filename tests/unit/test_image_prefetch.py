"""Issue 10: the engine starts pulling a built image as the build ends (Images.prefetch, images.py);
the release's ensure_image waits for that pull instead of pulling a second time, and pulls again
itself when the background pull failed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiodocker.exceptions import DockerError

from backend.pomegranate.docker_runtime import DockerRuntime, ForbiddenImage
from backend.settings import Settings

SETTINGS = Settings(registry_password="pw")
IMAGE = f"{SETTINGS.registry_address}/paastech/app-shop@sha256:{'a' * 64}"


class FakeImages:
    """The engine's image API: pulls block until released, and may be told to fail."""

    def __init__(self, labels: dict[str, str] | None = None) -> None:
        self.present: set[str] = set()
        self.pulls = 0
        self.failures = 0  # how many pulls fail before one succeeds
        self.release = asyncio.Event()
        self.labels = labels or {}

    async def inspect(self, image: str) -> dict[str, Any]:
        if image not in self.present:
            raise DockerError(404, {"message": f"No such image: {image}"})
        return {"Config": {"Labels": self.labels}}

    async def pull(self, image: str, auth: dict[str, str]) -> None:
        assert auth["password"] == "pw"
        self.pulls += 1
        await self.release.wait()
        if self.failures:
            self.failures -= 1
            raise DockerError(500, {"message": "registry unreachable"})
        self.present.add(image)


class FakeDocker:
    def __init__(self, images: FakeImages) -> None:
        self.images = images

    async def close(self) -> None:
        pass


def runtime(images: FakeImages) -> DockerRuntime:
    return DockerRuntime(SETTINGS, docker=FakeDocker(images))  # type: ignore[arg-type]


async def test_ensure_image_waits_for_the_pull_started_by_the_build() -> None:
    images = FakeImages()
    rt = runtime(images)
    rt.images.prefetch(IMAGE)
    rt.images.prefetch(IMAGE)  # one pull per image, however often asked
    waiting = asyncio.create_task(rt.ensure_image(IMAGE))
    await asyncio.sleep(0)
    assert not waiting.done()
    images.release.set()
    await waiting
    assert images.pulls == 1
    assert IMAGE in images.present
    assert rt.images.pulls == {}


async def test_a_failed_background_pull_is_retried_by_the_release() -> None:
    images = FakeImages()
    images.failures = 1
    images.release.set()
    rt = runtime(images)
    rt.images.prefetch(IMAGE)
    await rt.ensure_image(IMAGE)
    assert images.pulls == 2
    assert IMAGE in images.present


async def test_a_pull_that_keeps_failing_fails_the_release_with_the_engine_error() -> None:
    images = FakeImages()
    images.failures = 2
    images.release.set()
    rt = runtime(images)
    rt.images.prefetch(IMAGE)
    with pytest.raises(DockerError, match="registry unreachable"):
        await rt.ensure_image(IMAGE)


async def test_a_prefetched_image_with_forbidden_labels_is_still_refused() -> None:
    images = FakeImages(labels={"traefik.enable": "true"})
    images.release.set()
    rt = runtime(images)
    rt.images.prefetch(IMAGE)
    with pytest.raises(ForbiddenImage, match=r"traefik\.enable"):
        await rt.ensure_image(IMAGE)


async def test_images_of_other_registries_are_not_prefetched_and_close_cancels_pulls() -> None:
    images = FakeImages()
    rt = runtime(images)
    rt.images.prefetch("paastech/busybox:latest")
    assert rt.images.pulls == {}
    rt.images.prefetch(IMAGE)
    pending = rt.images.pulls[IMAGE]
    await rt.close()
    assert pending.cancelled()
