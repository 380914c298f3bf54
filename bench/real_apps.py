"""Push-to-live of real apps (issue 14): the Flask and Express fixtures, cold and warm, against
`docker build` + `docker run` of the same Dockerfile in the same run.

One platform for the whole run (tests/support/platform.py, fresh data dir) plus gitd, a Client
with a fresh ed25519 key, as in bench/push_to_live.py. For each app (tests/fixtures/apps/flask:
Flask + gunicorn from PyPI with a release phase; tests/fixtures/apps/express: Express from npm
with a package-lock):

- cold: `git push` of the fixture to a new project (the isolated builder keeps one layer store
  per project, so nothing but the base image is cached; dependencies are downloaded from PyPI/npm
  through this machine's TLS-intercepting proxy) until the first HTTP 200 of its v1 through the
  embedded ingress (`Host: <project>.localhost`, polled every 10 ms).
- warm: a code-only change (the app's VERSION) pushed to the same project, until the new version
  answers through the ingress; the dependency layer must come from the cache.

The baseline, alternating with the platform: the Dockerfile the platform generates for the app
(`plan_build`), built with the classic builder (`DOCKER_BUILDKIT=0 docker build`, `--no-cache`
when cold), then the release phase when the Procfile has one (`docker run --rm ... release`), then
`docker run -d -p 127.0.0.1::5000 -e PORT=5000 TAG /bin/sh -c <web>` and GET / on its published
port until the new version answers; the previous container is removed after. The platform mounts
the host's CA bundle into RUN steps only; the classic builder has no mounts, so the baseline's
Dockerfile gets `COPY` of the bundle and its `ENV` variables right after FROM (two steps, cached
like the base image: the dependency and code steps are the same as the platform's).

Columns: p50 is the median, p99 the slowest run; the ratio is platform / docker CLI of the same
app and phase. Checks (fail loudly, no timing is asserted): every push succeeds, the dependency
step was not cached when cold and was when warm (both sides), the answer is the new version.
Everything is removed afterwards (projects, containers and images by label, the baseline's
containers and tags, the temporary directory).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.deploy_latency import (
    DEPLOY_TIMEOUT,
    POLL,
    DockerCli,
    Samples,
    _docker,
    first_200,
    repetitions,
)
from bench.push_to_live import PROJECT, Git, pushing_platform
from bench.registry import BenchmarkFailed, Options, Row, register

NAME = "push-to-live (real apps)"
CA_FILE = ".paastech-ca.crt"  # in the baseline's build context
CA_MOUNT = "/run/paastech/ca-certificates.crt"
APP_PORT = 5000


@dataclass(frozen=True)
class App:
    name: str  # fixture directory
    code: str  # the file holding the version
    version_line: str  # its v1 line, with "v1" replaced to make a new version
    install: str  # text of the dependency step's instruction

    def with_version(self, text: str, version: str) -> str:
        if self.version_line not in text:
            raise BenchmarkFailed(f"{self.name}: {self.version_line!r} not in {self.code}")
        return text.replace(self.version_line, self.version_line.replace("v1", version))


APPS = (
    App("flask", "app.py", 'VERSION = "v1"', "pip install --no-cache-dir -r requirements.txt"),
    App("express", "server.js", 'const VERSION = "v1"', "npm ci --omit=dev"),
)

# "STEP 3/7: RUN ..." (buildah, the platform) and "Step 3/7 : RUN ..." (the classic builder),
# followed within two lines by "--> Using cache" / " ---> Using cache" when the step was cached.
_STEP = re.compile(r"^(?:\[\d+/\d+\] )?STEP \d+/\d+ ?: (.*)$", re.IGNORECASE)


def step_cached(lines: list[str], instruction: str, who: str) -> bool:
    text = [line.removeprefix("remote:").strip() for line in lines]
    for i, line in enumerate(text):
        match = _STEP.match(line)
        if match and instruction in match.group(1):
            return any("using cache" in ln.lower() for ln in text[i + 1 : i + 3])
    raise BenchmarkFailed(f"{who}: no build step with {instruction!r} in its log")


def expect_cache(lines: list[str], app: App, warm: bool, who: str) -> None:
    if step_cached(lines, app.install, who) != warm:
        state = "not reused" if warm else "reused"
        raise BenchmarkFailed(f"{who}: the dependency step was {state} ({app.install!r})")


def root_files(path: Path) -> dict[str, str | None]:
    from backend.pomegranate.buildpacks import FILES_TO_READ

    return {
        p.name: p.read_text() if p.name in FILES_TO_READ else None
        for p in path.iterdir()
        if p.is_file()
    }


def answers(app: App, version: str):
    def check(body: dict) -> str | None:
        got = (body.get("app"), body.get("version"))
        return None if got == (app.name, version) else f"answered {got}"

    return check


# --- the docker CLI baseline ------------------------------------------------------------


class Baseline:
    """The generated Dockerfile built and run with the docker CLI, in a context of its own."""

    def __init__(self, cli: DockerCli, app: App, ca: Path | None) -> None:
        from backend.pomegranate.buildpacks import plan_build
        from tests.support.platform import fixture

        self.cli, self.app = cli, app
        self.context = cli.work / f"{app.name}-{secrets.token_hex(3)}"
        shutil.copytree(fixture(app.name), self.context)
        plan = plan_build(root_files(self.context))
        if plan.dockerfile is None:
            raise BenchmarkFailed(f"{app.name}: no generated Dockerfile")
        lines = plan.dockerfile.splitlines()
        if ca is not None:
            shutil.copy(ca, self.context / CA_FILE)
            names = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS")
            env = " ".join(f"{name}={CA_MOUNT}" for name in names)
            lines[1:1] = [f"COPY {CA_FILE} {CA_MOUNT}", f"ENV {env}"]
        (self.context / "Dockerfile").write_text("\n".join(lines) + "\n")
        self.processes = plan.processes
        self.original = (self.context / app.code).read_text()  # the v1 code

    async def deploy(self, version: str, warm: bool, out: Samples) -> None:
        from backend.pomegranate.procfile import shell_command

        code = self.context / self.app.code
        code.write_text(self.app.with_version(self.original, version))
        tag = self.cli.tag(f"{self.app.name}-{version}")
        started = time.perf_counter()
        flags = [] if warm else ["--no-cache"]
        log = await _docker("build", *flags, "-t", tag, str(self.context), buildkit_off=True)
        expect_cache(log.splitlines(), self.app, warm, f"docker build of {self.app.name}")
        env = ["-e", f"PORT={APP_PORT}", "-e", f"PAASTECH_RELEASE={version}"]
        if release := self.processes.get("release"):
            await _docker("run", "--rm", *env, tag, "/bin/sh", "-c", shell_command(release))
        web = self.processes.get("web")
        command = ["/bin/sh", "-c", shell_command(web)] if web else []
        run = ["run", "-d", "-p", f"127.0.0.1::{APP_PORT}", *env, tag, *command]
        container = (await _docker(*run)).strip()
        self.cli.containers.append(container)
        port = (await _docker("port", container, f"{APP_PORT}/tcp")).split()[0]
        await first_200(int(port.rpartition(":")[2]), answers(self.app, version), DEPLOY_TIMEOUT)
        out.ms.append((time.perf_counter() - started) * 1000)
        await self.cli.remove_containers(keep=container)


# --- the platform -------------------------------------------------------------------------


async def ingress_answers(http: httpx.AsyncClient, app: App, version: str) -> float:
    check = answers(app, version)
    while True:
        try:
            response = await http.get("/")
            if response.status_code == 200 and check(response.json()) is None:
                return time.perf_counter()
        except (httpx.HTTPError, ValueError):
            pass
        await asyncio.sleep(POLL)


class Pushed:
    """A project of the app pushed with git through gitd, timed to its answer via the ingress."""

    def __init__(self, plat, git: Git, app: App, project: str, url: str) -> None:
        from tests.support.platform import fixture

        self.plat, self.git, self.app, self.project = plat, git, app, project
        self.work = git.home / project
        shutil.copytree(fixture(app.name), self.work)
        self.original = (self.work / app.code).read_text()  # the v1 code
        for args in (
            ("init", "-q", "-b", "main"),
            ("add", "-A"),
            ("commit", "-q", "-m", "fixture"),
            ("remote", "add", "paastech", url),
        ):
            git.run(*args, cwd=self.work)

    async def deploy(self, version: str, warm: bool, out: Samples) -> None:
        if version != "v1":
            text = self.app.with_version(self.original, version)
            await asyncio.to_thread(self.git.commit, self.work, self.app.code, text)
        http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.plat.ingress_port}",
            headers={"Host": f"{self.project}.localhost"},
            timeout=5,
        )
        async with http:
            started = time.perf_counter()
            push = asyncio.create_task(self.git.push(self.work))
            watch = asyncio.create_task(ingress_answers(http, self.app, version))
            try:
                async with asyncio.timeout(DEPLOY_TIMEOUT):
                    code, err = await push
                    returned = time.perf_counter()
                    if code != 0 or "Application deployed" not in err:
                        why = f"git push of {self.app.name} {version}: {err[-500:]}"
                        raise BenchmarkFailed(why)
                    answered = await watch
            except TimeoutError:
                raise BenchmarkFailed(
                    f"{self.app.name} {version} not answering within {DEPLOY_TIMEOUT:g} s"
                ) from None
            finally:
                for task in (push, watch):
                    task.cancel()
                await asyncio.gather(push, watch, return_exceptions=True)
        expect_cache(err.splitlines(), self.app, warm, f"git push of {self.app.name}")
        out.ms.append((answered - started) * 1000)
        out.extra_ms.append((returned - started) * 1000)


def rows_for(app: App, phase: str, plat_s: Samples, docker_s: Samples) -> list[Row]:
    benchmark = f"{NAME}: {app.name}, {phase}"
    what = "fresh project, dependencies downloaded" if phase == "cold" else "code-only change"
    base = docker_s.row(
        benchmark,
        "docker CLI: build + run (+ release) + first 200",
        True,
        [f"{what}; same Dockerfile + CA COPY/ENV (classic builder)"],
    )
    row = plat_s.row(
        benchmark,
        "git push -> first 200 via ingress",
        False,
        [
            f"{what}; git push returned at {statistics.median(plat_s.extra_ms):,.0f} ms (median)",
            f"dependency step {'from cache' if phase == 'warm' else 'built'} on both sides",
        ],
    )
    return [base, row]


@register(NAME, "git push of the Flask/Express fixtures, cold and warm, vs docker build+run")
async def real_apps(opts: Options) -> list[Row]:
    from backend.pomegranate.builder import DEFAULT_CA_BUNDLE
    from backend.settings import get_settings

    reps = repetitions(opts)
    cold_reps = max(1, reps // 3)  # a cold build downloads every dependency: 1 at the default
    ca_path = Path(get_settings().build_ca_bundle or DEFAULT_CA_BUNDLE)
    ca = ca_path if await asyncio.to_thread(ca_path.is_file) else None
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="paastech-bench-apps-") as tmp:
        work = Path(tmp) / "docker"
        work.mkdir()
        cli = DockerCli(work, secrets.token_hex(4))
        try:
            async with pushing_platform(Path(tmp)) as (s, git):
                plat = s.plat
                for app in APPS:
                    cold_p, cold_d, warm_p, warm_d = (Samples() for _ in range(4))
                    pushed: Pushed | None = None
                    baseline: Baseline | None = None
                    for i in range(cold_reps):
                        project = await s.project()
                        url = (await s.gql(PROJECT, p=project))["project"]["gitUrl"]
                        pushed = Pushed(plat, git, app, project, url)
                        baseline = Baseline(cli, app, ca)
                        steps = [(pushed.deploy, cold_p), (baseline.deploy, cold_d)]
                        for deploy, out in steps if i % 2 == 0 else steps[::-1]:
                            await deploy("v1", False, out)
                    if pushed is None or baseline is None:
                        raise BenchmarkFailed("no cold deploy ran")
                    for i in range(reps):
                        version = f"v{i + 2}"
                        if i % 2 == 0:
                            await pushed.deploy(version, True, warm_p)
                            await baseline.deploy(version, True, warm_d)
                        else:
                            await baseline.deploy(version, True, warm_d)
                            await pushed.deploy(version, True, warm_p)
                    await cli.remove_containers()
                    rows += rows_for(app, "cold", cold_p, cold_d)
                    rows += rows_for(app, "warm", warm_p, warm_d)
        finally:
            await cli.close()
    return rows
