"""The builder checks an image's labels beside its push, and reuses a recorded image only
when the registry tags it (backend/pomegranate/builder.py, issue 17): what it asks buildah and
the registry, with both faked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from backend.pomegranate.build_reuse import Reused, ReuseRecords
from backend.pomegranate.builder import IsolatedBuilder
from backend.settings import Settings


class Fake:
    """Records the builder's calls; the image's labels before and after the strip."""

    def __init__(self, builder: IsolatedBuilder, labels: dict[str, str]) -> None:
        self.calls: list[str] = []
        self.labels = labels
        self.pushes = 0
        builder._push = self.push  # type: ignore[method-assign]
        builder._inspect = self.inspect  # type: ignore[method-assign]
        builder._strip_labels = self.strip  # type: ignore[method-assign]
        builder.registry.delete = self.delete  # type: ignore[method-assign]

    async def push(self, project, application, local, emit, *, announce=True) -> str:
        self.pushes += 1
        self.calls.append(f"push {self.pushes} announce={announce}")
        return f"sha256:{self.pushes}"

    async def inspect(self, project: str, ref: str) -> dict[str, Any]:
        self.calls.append("inspect")
        return {"OCIv1": {"config": {"Labels": dict(self.labels)}}, "size": self.pushes}

    async def strip(self, project, local, stripped, emit) -> None:
        self.calls.append(f"strip {','.join(stripped)}")
        self.labels = {k: v for k, v in self.labels.items() if k not in stripped}

    async def delete(self, project: str, digest: str) -> None:
        self.calls.append(f"delete {digest}")


async def emit(line: str) -> None:
    pass


@pytest.fixture
def builder(tmp_path: Path) -> IsolatedBuilder:
    return IsolatedBuilder(Settings(data_dir=tmp_path))


async def test_an_image_with_allowed_labels_is_pushed_once(builder: IsolatedBuilder) -> None:
    fake = Fake(builder, {"org.opencontainers.image.title": "x"})
    digest, _, stripped = await builder._labels_and_push("p", 3, "local", emit)
    assert (digest, stripped) == ("sha256:1", [])
    assert sorted(fake.calls) == ["inspect", "push 1 announce=True"]


async def test_forbidden_labels_are_stripped_and_the_first_push_deleted(
    builder: IsolatedBuilder,
) -> None:
    fake = Fake(builder, {"traefik.enable": "true", "org.opencontainers.image.title": "x"})
    digest, info, stripped = await builder._labels_and_push("p", 3, "local", emit)
    assert (digest, stripped) == ("sha256:2", ["traefik.enable"])
    assert fake.calls[-4:-2] == ["delete sha256:1", "strip traefik.enable"]
    assert sorted(fake.calls[-2:]) == ["inspect", "push 2 announce=False"]
    assert info["OCIv1"]["config"]["Labels"] == {"org.opencontainers.image.title": "x"}


async def test_a_failed_inspect_stops_the_push(builder: IsolatedBuilder) -> None:
    fake = Fake(builder, {})
    seen: list[str] = []

    async def slow_push(*args: Any, **kwargs: Any) -> str:
        seen.append("push started")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("push cancelled")
            raise
        return "never"

    async def broken(project: str, ref: str) -> dict[str, Any]:
        await asyncio.sleep(0)  # the push has started by now
        raise RuntimeError("inspect failed")

    builder._push = slow_push  # type: ignore[method-assign]
    builder._inspect = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="inspect failed"):
        await builder._labels_and_push("p", 3, "local", emit)
    assert seen == ["push started", "push cancelled"] and fake.calls == []


async def test_a_recorded_image_is_reused_only_when_the_registry_tags_it(
    builder: IsolatedBuilder, tmp_path: Path
) -> None:
    """The registry answering, missing the manifest (retention), or unreachable: the last two
    build instead (its push then says what is wrong), nothing is reported reused."""
    records = ReuseRecords(tmp_path / "store")
    records.put("key", Reused("sha256:abc", 10, ["traefik.enable"], 2))
    lines: list[str] = []

    async def collect(line: str) -> None:
        lines.append(line)

    outcomes: list[object] = [True, False, aiohttp.ClientConnectionError("refused"), OSError(111)]
    tagged: list[tuple[str, str, str]] = []

    async def tag(project: str, digest: str, tag: str) -> bool:
        tagged.append((project, digest, tag))
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return bool(outcome)

    builder.registry.tag = tag  # type: ignore[method-assign]
    found = await builder._reuse("p", 5, records, "key", collect)
    assert found == Reused("sha256:abc", 10, ["traefik.enable"], 2)
    assert "as v2: reusing its image" in lines[0] and "traefik.enable" in lines[1]
    lines.clear()
    for _ in range(3):
        assert await builder._reuse("p", 5, records, "key", collect) is None
    assert lines == [] and tagged == [("p", "sha256:abc", "5")] * 4
    assert await builder._reuse("p", 5, records, "other key", collect) is None
    assert len(tagged) == 4  # no record: the registry is not asked
