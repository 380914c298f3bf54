"""What the isolated builder (issue 10) costs a push: its build against the trusted engine's.

Issue 10 moved every build off the Docker engine the platform trusts into rootful buildah with a
per-project layer store, a cgroup and a firewalled network, followed by a push to the platform
registry and a pull by digest. The engine build no longer exists in the platform, so "before"
can't be pushed; it is measured as the work it did, in the same run, on the same change:

- isolated build (measured): Pomegranate's Build RPC on a tar of the `dockerfile` fixture with a
  code change (a random comment appended to app.py: every step before the COPY cached, the COPY
  and later rebuilt), i.e. buildah, the label strip and `buildah push` to the registry, then
  `docker pull <repo>@<digest>` into the engine (what a release does before its first start).
- engine build (baseline): `DOCKER_BUILDKIT=0 docker build` of a directory with the same files
  and the same kind of change, warm cache: the pre-issue-10 build.
- git push -> first 200 (measured): the full platform, the same kind of code change committed
  and pushed with `git push` (OpenSSH, gitd, the hook) until the new release answers 200
  through the embedded ingress (bench/push_to_live.py's harness).
- git push -> first 200 before isolation (derived, not measured): that time minus the isolated
  build plus the engine build, per run (the same repetition's pair), median.

The ratio of interest is the push-to-live after / before isolation (issue 10's budget: at most
1.2). Checks (fail loudly, no timing asserted): each build's cache use is as intended, each
release answers as the new release. Everything created is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import statistics
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import aiodocker
import grpc
import httpx

from bench.deploy_latency import DEPLOY_TIMEOUT, DockerCli, Samples, _docker
from bench.push_to_live import warm_up_to_copy
from bench.registry import BenchmarkFailed, Options, Row, register

CHUNK = 256 * 1024


def repetitions(opts: Options) -> int:
    return max(1, min(10, round(3 * opts.duration / 10)))


def _tar(files: dict[str, bytes]) -> bytes:
    buf = BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, BytesIO(data))
    return buf.getvalue()


def fixture_files(token: str) -> dict[str, bytes]:
    """The `dockerfile` fixture with app.py changed by a comment (a code-only change)."""
    from tests.support.platform import fixture

    root = fixture("dockerfile")
    files = {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
    files["app.py"] += f"\n# bench {token}\n".encode()
    return files


class IsolatedBuilds:
    """Pomegranate's Build RPC of the running platform, then `docker pull` of its result."""

    def __init__(self, port: int, env: dict[str, str]) -> None:
        from backend.rpc.pomegranate_pb2_grpc import PomegranateStub
        from backend.security import internal_secret

        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.stub = PomegranateStub(self.channel)
        self.metadata = (("x-paastech-secret", internal_secret(env["PAASTECH_SECRET_KEY"])),)
        # The platform registry's credentials, as Pomegranate pulls (DockerRuntime).
        self.auth = {
            "username": env.get("PAASTECH_REGISTRY_USERNAME", "paastech"),
            "password": env["PAASTECH_REGISTRY_PASSWORD"],
            "serveraddress": f"127.0.0.1:{env['PAASTECH_REGISTRY_PORT']}",
        }
        self.pulled: list[str] = []

    async def build(self, project: str, application: int, source: bytes) -> list[str]:
        """Build and pull; the build's log lines."""
        from backend.rpc import pomegranate_pb2 as pb

        async def chunks():
            yield pb.BuildChunk(header=pb.BuildHeader(project=project, application=application))
            for start in range(0, len(source), CHUNK):
                yield pb.BuildChunk(data=source[start : start + CHUNK])

        lines: list[str] = []
        result = None
        async with asyncio.timeout(DEPLOY_TIMEOUT):
            async for event in self.stub.Build(chunks(), metadata=self.metadata):
                kind = event.WhichOneof("event")
                if kind == "log":
                    lines.append(event.log)
                elif kind == "failure":
                    raise BenchmarkFailed(f"isolated build failed: {event.failure}")
                elif kind == "result":
                    result = event.result
            if result is None:
                raise BenchmarkFailed("isolated build streamed no result")
            async with aiodocker.Docker() as docker:
                await docker.images.pull(result.image, auth=self.auth)
            self.pulled.append(result.image)
        return lines

    async def close(self) -> None:
        await self.channel.close()
        if self.pulled:  # pulled by digest: no tag or label the project's cleanup goes by
            with contextlib.suppress(BenchmarkFailed):
                await _docker("rmi", "-f", *self.pulled)


@register(
    "build isolation cost",
    "issue 10: isolated build + registry push + pull vs the engine's docker build, and the "
    "git push -> first 200 it adds to (code change, warm cache)",
)
async def build_isolation(opts: Options) -> list[Row]:
    from bench.push_to_live import PROJECT, changed_app, pushing_platform, timed
    from tests.support.platform import fixture

    reps = repetitions(opts)
    engine, isolated, live = Samples(), Samples(), Samples()
    app = fixture("dockerfile")
    app_py = (app / "app.py").read_text()
    with tempfile.TemporaryDirectory(prefix="paastech-bench-isolation-") as tmp:
        docker_work = Path(tmp) / "docker"
        docker_work.mkdir()
        cli = DockerCli(docker_work, secrets.token_hex(4))
        try:
            async with pushing_platform(Path(tmp)) as (s, git):
                plat = s.plat
                builds = IsolatedBuilds(plat.pomegranate.port, plat.pomegranate.env)
                try:
                    built = await s.project()  # its builds go straight to Pomegranate
                    pushed = await s.project()  # git push
                    url = (await s.gql(PROJECT, p=pushed))["project"]["gitUrl"]
                    work = await asyncio.to_thread(git.workdir, app, url)

                    async def by_git() -> tuple[bool, list[str], str]:
                        code, err = await git.push(work)
                        ok = code == 0 and "=====> Application deployed" in err
                        return ok, err.splitlines(), f"git push exited {code}: {err[-500:]}"

                    ingress = httpx.AsyncClient(
                        base_url=f"http://127.0.0.1:{plat.ingress_port}",
                        headers={"Host": f"{pushed}.localhost"},
                        timeout=5,
                    )
                    async with ingress:
                        # Warm-up, untimed: every cache gets the steps before the COPY.
                        await timed(ingress, 1, by_git, None, "warm-up git push")
                        await builds.build(built, 1, _tar(fixture_files("warm")))
                        await cli.build(cli.context("warm", {}), cli.tag("warm"))
                        for rep in range(reps):
                            files = fixture_files(secrets.token_hex(4))
                            started = time.perf_counter()
                            lines = await builds.build(built, rep + 2, _tar(files))
                            isolated.ms.append((time.perf_counter() - started) * 1000)
                            isolated.cache_hits.append(warm_up_to_copy(lines, "isolated build"))

                            context = cli.context(f"rep{rep}", {"app.py": files["app.py"].decode()})
                            started = time.perf_counter()
                            tag = cli.tag(f"rep{rep}")
                            out = await _docker("build", "-t", tag, str(context), buildkit_off=True)
                            engine.ms.append((time.perf_counter() - started) * 1000)
                            engine.cache_hits.append(
                                warm_up_to_copy(out.splitlines(), "docker build")
                            )

                            text = changed_app(app_py)
                            await asyncio.to_thread(git.commit, work, "app.py", text)
                            await timed(ingress, rep + 2, by_git, live, "git push")
                finally:
                    await builds.close()
        finally:
            await cli.close()
    before = [p - i + e for p, i, e in zip(live.ms, isolated.ms, engine.ms, strict=True)]
    return [
        _row("engine docker build (before issue 10)", engine, baseline=True),
        _row("isolated build + registry push + pull", isolated),
        _row(
            "git push -> first 200, before isolation (derived)",
            Samples(ms=before),
            note="git push -> first 200, - isolated build + engine build, per run",
            baseline=True,
        ),
        _row("git push -> first 200 (isolated builds)", live),
    ]


def _row(subject: str, samples: Samples, *, baseline: bool = False, note: str = "") -> Row:
    notes = [f"n={len(samples.ms)}"]
    if samples.cache_hits:
        notes.append("cache " + ", ".join(samples.cache_hits))
    if note:
        notes.append(note)
    return Row(
        benchmark="build isolation cost" + (" (push-to-live)" if "git push" in subject else ""),
        subject=subject,
        p50_ms=statistics.median(samples.ms),
        p99_ms=max(samples.ms),
        requests=len(samples.ms),
        baseline=baseline,
        notes=notes,
    )
