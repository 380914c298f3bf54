"""Container output as lines: ANSI escapes and carriage returns removed."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


def clean(line: str) -> str:
    return _ANSI.sub("", line).replace("\r", "").rstrip()


class LineSplitter:
    """Turns text chunks into complete lines."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, chunk: str) -> list[str]:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split("\n")
        return [clean(line) for line in lines]

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return [clean(rest)] if rest.strip() else []


async def container_lines(
    docker: aiodocker.Docker, container_id: str, *, follow: bool, tail: int | None = None
) -> AsyncIterator[str]:
    """stdout and stderr lines of a container, oldest first; ``follow`` keeps streaming until
    the container stops (or the consumer stops iterating)."""
    container = docker.containers.container(container_id)
    params: dict[str, Any] = {"tail": "all" if tail is None else str(tail)}
    splitter = LineSplitter()
    if follow:
        stream = container.log(stdout=True, stderr=True, follow=True, **params)
        try:
            async for chunk in stream:
                for line in splitter.feed(chunk):
                    yield line
        finally:
            # aiodocker annotates the stream as an AsyncIterator; it is an async generator.
            await stream.aclose()  # type: ignore[attr-defined]
    else:
        chunks = await container.log(stdout=True, stderr=True, follow=False, **params)
        for chunk in chunks:
            for line in splitter.feed(chunk):
                yield line
    for line in splitter.flush():
        yield line


async def last_lines(docker: aiodocker.Docker, container_id: str, count: int = 20) -> list[str]:
    """The container's last ``count`` output lines (none when the engine cannot say), for the
    message of a failure."""
    lines: list[str] = []
    with contextlib.suppress(DockerError):
        async for line in container_lines(docker, container_id, follow=False, tail=count):
            lines.append(line)
    return lines[-count:]
