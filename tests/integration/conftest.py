"""Fixtures shared by the integration tests that drive Docker through the runtime directly."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import aiodocker
import pytest

from backend.pomegranate.docker_runtime import DockerRuntime
from backend.settings import Settings


@pytest.fixture
async def runtime() -> AsyncIterator[DockerRuntime]:
    rt = DockerRuntime(Settings())
    yield rt
    await rt.close()


@pytest.fixture
async def project(runtime: DockerRuntime) -> AsyncIterator[str]:
    """A unique project name; its containers and images are removed afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    for info in await runtime.list_containers(name):
        await runtime.remove(info.id)
    for tag in await runtime.list_images(name):
        with contextlib.suppress(aiodocker.DockerError):
            await runtime.remove_image(tag, force=True)
    await runtime.remove_project_network(name)
