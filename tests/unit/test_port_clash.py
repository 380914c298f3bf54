"""DockerRuntime.start when the host port the engine picked is held by another process: the
engine's allocator moves on, so the container is created and started again (a few times at
most); any other start failure is raised at once (tests/integration/test_engine_restart.py
met the clash right after a dockerd restart)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiodocker.exceptions import DockerError

from backend.pomegranate import docker_runtime
from backend.pomegranate.docker_runtime import DockerRuntime
from backend.settings import Settings

CLASH = (
    "driver failed programming external connectivity on endpoint x: Error starting userland "
    "proxy: listen tcp4 127.0.0.1:32777: bind: address already in use"
)


class Container:
    def __init__(self, n: int, failure: str | None) -> None:
        self.id = f"c{n}"
        self.failure = failure

    async def start(self) -> None:
        if self.failure:
            raise DockerError(500, {"message": self.failure})


def runtime(failures: list[str | None]) -> tuple[DockerRuntime, list[str]]:
    rt = DockerRuntime(Settings())
    removed: list[str] = []
    created = iter(range(100))

    async def create(spec: Any) -> Container:
        n = next(created)
        return Container(n, failures[n] if n < len(failures) else None)

    async def remove(container_id: str) -> None:
        removed.append(container_id)

    async def inspect(container_id: str) -> Any:
        return SimpleNamespace(id=container_id)

    rt._create = create  # type: ignore[method-assign]
    rt.remove = remove  # type: ignore[method-assign]
    rt.inspect = inspect  # type: ignore[method-assign]
    return rt, removed


SPEC = SimpleNamespace(project="blog")


async def test_a_taken_port_is_retried_with_a_new_container() -> None:
    rt, removed = runtime([CLASH, CLASH, None])
    info = await rt.start(SPEC)  # type: ignore[arg-type]
    assert info.id == "c2"
    assert removed == ["c0", "c1"]


async def test_the_clash_gives_up_after_the_last_attempt() -> None:
    rt, removed = runtime([CLASH] * docker_runtime.PORT_CLASH_ATTEMPTS)
    with pytest.raises(DockerError, match="address already in use"):
        await rt.start(SPEC)  # type: ignore[arg-type]
    assert len(removed) == docker_runtime.PORT_CLASH_ATTEMPTS


async def test_another_failure_is_not_retried() -> None:
    rt, removed = runtime(["OCI runtime create failed: no such file"])
    with pytest.raises(DockerError, match="OCI runtime"):
        await rt.start(SPEC)  # type: ignore[arg-type]
    assert removed == ["c0"]
