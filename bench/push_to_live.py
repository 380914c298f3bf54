"""Push-to-live latency: `git push` of a code change until the new release answers, warm cache.

One platform for the whole run (tests/support/platform.py: Pomegranate, the API and the embedded
ingress as subprocesses, fresh data dir, SQLite) plus gitd (`python -m backend gitd`, started the
way tests/integration/test_gitd.py starts it). A Client signs up, registers a fresh ed25519 key
and creates one project; a git working copy of the `dockerfile` fixture
(tests/fixtures/apps/dockerfile) gets it as remote `paastech`, and is pushed once, untimed, so
that the base image and every layer before the `COPY` are in the engine's cache.

Each repetition (3 at the default --duration 10; --duration scales it, 1..10) appends a comment
with a random token to app.py, so the build reuses the layers up to the `COPY` and rebuilds from
it on, as a code change does. The two ways alternate in the same project:

- push-to-live (the measured row): from the start of `git push paastech main` (the real OpenSSH
  client and git, key auth, receive-pack, the pre-receive hook, `git archive`, the API's
  Deployments.Deploy) to the first HTTP 200 of the new release through the embedded ingress
  (`Host: <project>.localhost`), polled every 10 ms; the answer must come from the new release
  (its PAASTECH_RELEASE). The push must exit 0 with "Application deployed".
- Pomegranate-only (the baseline): the same change as a tar handed to the API's internal
  Deployments gRPC by push() (tests/support/platform.py), i.e. without git, ssh or the hook, to
  the first 200 of the new release through the same ingress, polled the same way.

The p50 column is the median, the p99 column the slowest run, requests/s is empty; the ratio is
push-to-live / Pomegranate-only. A third row (issue 17) is the gap: when `git push` exited minus
when the new release first answered (negative: the push returned before the first 200 was seen).
Checks (fail loudly, no timing is asserted): every deploy
succeeds, every build step before the COPY came from the cache and the COPY did not, the answer
is the new release. Everything is removed afterwards: the project (deleteProject, which also
removes its bare repository, then its containers and images by label), the processes and the
temporary directory (data dir, key, working copy).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.deploy_latency import DEPLOY_TIMEOUT, POLL, Samples, Session, repetitions
from bench.registry import BenchmarkFailed, Options, Row, register

PUSH = "push-to-live (warm cache)"
SSH_OPTS = (
    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes "
    "-o BatchMode=yes -o LogLevel=ERROR"
)
GIT_ID = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
ADD_KEY = 'mutation($k: String!) { addSshKey(publicKey: $k, title: "bench") { id } }'
PROJECT = "query($p: String!) { project(name: $p) { gitUrl } }"


# --- gitd and git ---------------------------------------------------------------------------


@contextmanager
def gitd(plat, port: int) -> Iterator[None]:
    """`python -m backend gitd` against the platform's API (the tests' helper)."""
    from tests.support.platform import gitd_process

    with gitd_process(plat, port):
        yield


@asynccontextmanager
async def pushing_platform(tmp: Path, **settings: object) -> AsyncIterator[tuple[Session, Git]]:
    """A platform with gitd (tests/support, data in ``tmp``), a signed-up Client whose fresh key
    is registered, and git set to push with it; the Client's projects are removed afterwards.
    ``settings`` go to every platform process (bench/swarm_push.py: the Swarm runtime)."""
    from tests.support.platform import platform
    from tests.support.servers import free_port

    data_dir, home = tmp / "platform", tmp / "home"
    data_dir.mkdir()
    home.mkdir()
    port = free_port()
    with (
        platform(
            data_dir,
            health_check_timeout_seconds=60,
            reconcile_interval_seconds=86_400,
            gitd_port=port,
            **settings,
        ) as plat,
        gitd(plat, port),
    ):
        async with httpx.AsyncClient(timeout=60) as api:
            s = Session(plat, api)
            try:
                await s.signup()
                git = Git(home, port)
                await s.gql(ADD_KEY, k=await asyncio.to_thread(git.keygen))
                yield s, git
            finally:
                await s.cleanup()


@dataclass
class Git:
    """git with a throwaway HOME, identity and key; never the user's ~/.ssh or ~/.gitconfig."""

    home: Path
    port: int

    @property
    def key(self) -> Path:
        return self.home / "id_ed25519"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PAASTECH_"))}
        env.update(GIT_ID, HOME=str(self.home), GIT_CONFIG_NOSYSTEM="1")
        env["GIT_SSH_COMMAND"] = f"ssh -i {self.key} -p {self.port} {SSH_OPTS}"
        return env

    def keygen(self) -> str:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", str(self.key)],
            check=True,
            capture_output=True,
        )
        return self.key.with_suffix(".pub").read_text()

    def run(self, *args: str, cwd: Path) -> str:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=self.env(), capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise BenchmarkFailed(f"git {args[0]} failed: {done.stderr.strip()[-300:]}")
        return done.stdout

    def workdir(self, app: Path, url: str) -> Path:
        work = self.home / "work"
        shutil.copytree(app, work)
        self.run("init", "-q", "-b", "main", cwd=work)
        self.run("add", "-A", cwd=work)
        self.run("commit", "-q", "-m", "fixture", cwd=work)
        self.run("remote", "add", "paastech", url, cwd=work)
        return work

    def commit(self, work: Path, name: str, text: str) -> None:
        (work / name).write_text(text)
        self.run("commit", "-q", "-am", "change", cwd=work)

    async def push(self, work: Path) -> tuple[int, str]:
        """`git push paastech main`: exit status and stderr (the remote: lines)."""
        proc = await asyncio.create_subprocess_exec(
            "git",
            "push",
            "paastech",
            "main",
            cwd=work,
            env=self.env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await proc.communicate()
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        return proc.returncode or 0, err.decode(errors="replace")


# --- checks ---------------------------------------------------------------------------------

# The classic builder's "Step 2/6 : COPY" and buildah's "STEP 2/6: COPY" ("[1/2] STEP ..." in
# multi-stage builds): the raw `docker build` baseline and the isolated builder (issue 10).
_STEP = re.compile(r"^(?:\[\d+/\d+\] )?Step \d+/\d+ ?: (\w+)", re.IGNORECASE)


def step_cache(lines: list[str]) -> list[tuple[str, bool]]:
    """(instruction, from cache) of each step after FROM in a classic-builder log, without the
    LABEL steps the engine appends for the platform's build labels."""
    steps: list[list] = []
    for line in lines:
        text = line.removeprefix("remote:").strip()
        if match := _STEP.match(text):
            steps.append([match.group(1).upper(), False])
        elif "using cache" in text.lower() and steps:
            steps[-1][1] = True
    return [(step, hit) for step, hit in steps if step not in ("FROM", "LABEL")]


def warm_up_to_copy(lines: list[str], who: str) -> str:
    """Check the steps before COPY hit the cache and COPY did not; 'k/n' steps from cache."""
    steps = step_cache(lines)
    at = next((i for i, (step, _) in enumerate(steps) if step == "COPY"), None)
    if at is None:
        raise BenchmarkFailed(f"{who}: no COPY step in the build log")
    if not all(hit for _, hit in steps[:at]) or steps[at][1]:
        raise BenchmarkFailed(f"{who}: build steps (step, from cache) not as wanted: {steps}")
    return f"{sum(hit for _, hit in steps)}/{len(steps)}"


def changed_app(app_py: str) -> str:
    return f"{app_py.rstrip()}\n# bench {secrets.token_hex(8)}\n"


# --- measurement ----------------------------------------------------------------------------


async def ingress_200(http: httpx.AsyncClient, number: int, seen: list[str]) -> float:
    """Poll GET / through the ingress until release `number` answers 200; when it did. The
    last other answer is kept in `seen[0]` for a timeout message."""
    while True:
        try:
            response = await http.get("/")
            if response.status_code == 200:
                body = response.json()
                release = body.get("env", {}).get("PAASTECH_RELEASE")
                if body.get("app") == "dockerfile" and release == str(number):
                    return time.perf_counter()
                seen[0] = f"release {release}"
            else:
                seen[0] = f"HTTP {response.status_code}"
        except (httpx.HTTPError, ValueError) as exc:
            seen[0] = type(exc).__name__
        await asyncio.sleep(POLL)


async def timed(
    http: httpx.AsyncClient, number: int, deploy, out: Samples | None, who: str
) -> list[str]:
    """Run `deploy()` (-> (ok, log lines, why)) and watch the ingress for release `number`;
    append first-200 and deploy-returned times to `out`. Returns the deploy's log lines."""
    seen = ["no answer"]
    started = time.perf_counter()
    work = asyncio.create_task(deploy())
    watch = asyncio.create_task(ingress_200(http, number, seen))
    try:
        async with asyncio.timeout(DEPLOY_TIMEOUT):
            ok, lines, why = await work
            returned_ms = (time.perf_counter() - started) * 1000
            if not ok:
                raise BenchmarkFailed(f"{who} of release {number} failed: {why}")
            answered = await watch
    except TimeoutError:
        raise BenchmarkFailed(
            f"{who}: release {number} not answering through the ingress within "
            f"{DEPLOY_TIMEOUT:g} s (last: {seen[0]})"
        ) from None
    finally:
        for task in (work, watch):
            task.cancel()
        await asyncio.gather(work, watch, return_exceptions=True)
    if out is not None:
        out.ms.append((answered - started) * 1000)
        out.extra_ms.append(returned_ms)
        out.cache_hits.append(warm_up_to_copy(lines, who))
    return lines


@register(PUSH, "git push of a code change -> first 200 via the ingress, vs push() of the same")
async def push_to_live(opts: Options) -> list[Row]:
    from tests.support.platform import fixture, push, tar_dir

    reps = repetitions(opts)
    git_s, rpc_s = Samples(), Samples()
    with tempfile.TemporaryDirectory(prefix="paastech-bench-push-") as tmp:
        async with pushing_platform(Path(tmp)) as (s, git):
            plat = s.plat
            project = await s.project()
            url = (await s.gql(PROJECT, p=project))["project"]["gitUrl"]
            app = fixture("dockerfile")
            work = await asyncio.to_thread(git.workdir, app, url)
            app_py = (app / "app.py").read_text()

            async def by_git() -> tuple[bool, list[str], str]:
                code, err = await git.push(work)
                ok = code == 0 and "=====> Application deployed" in err
                return ok, err.splitlines(), f"git push exited {code}: {err[-500:]}"

            def by_rpc(source: bytes):
                async def deploy() -> tuple[bool, list[str], str]:
                    outcome = await push(plat, s.client_id, project, source)
                    return outcome.ok, outcome.lines, outcome.reason

                return deploy

            ingress = httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{plat.ingress_port}",
                headers={"Host": f"{project}.localhost"},
                timeout=5,
            )
            async with ingress:
                # Warm-up, not timed: release 1 fills the cache up to the COPY.
                await timed(ingress, 1, by_git, None, "warm-up git push")

                async def with_git(number: int) -> None:
                    text = changed_app(app_py)
                    await asyncio.to_thread(git.commit, work, "app.py", text)
                    await timed(ingress, number, by_git, git_s, "git push")

                async def with_rpc(number: int) -> None:
                    source = tar_dir(app, {"app.py": changed_app(app_py)})
                    await timed(ingress, number, by_rpc(source), rpc_s, "push()")

                number = 1
                for i in range(reps):
                    order = (with_git, with_rpc) if i % 2 == 0 else (with_rpc, with_git)
                    for step in order:
                        number += 1
                        await step(number)
    # Issue 17: how long after its release first answered the push's transcript ends.
    gap = Samples(
        ms=[returned - live for returned, live in zip(git_s.extra_ms, git_s.ms, strict=True)]
    )
    rows = [
        rpc_s.row(
            PUSH,
            "Pomegranate-only: push() -> first 200",
            True,
            [
                "tar to Deployments.Deploy (no git/ssh), first 200 of the new release via ingress",
                f"push() returned at {statistics.median(rpc_s.extra_ms):,.0f} ms (median)",
                f"cache hits {', '.join(rpc_s.cache_hits)} steps (all before COPY)",
            ],
        ),
        git_s.row(
            PUSH,
            "git push -> first 200 via ingress",
            False,
            [
                f"git push returned at {statistics.median(git_s.extra_ms):,.0f} ms (median)",
                f"cache hits {', '.join(git_s.cache_hits)} steps (all before COPY)",
                "dockerfile fixture, app.py changed each push; Host: <project>.localhost",
            ],
        ),
        gap.row(
            f"{PUSH}: gap",  # its own name: no baseline, no ratio
            "git push returns after first 200 (gap)",
            False,
            [
                "git push exit minus the new release's first 200 via the ingress (target <= 300)",
                f"first 200 polled every {POLL * 1000:.0f} ms: the gap may be that much larger",
            ],
        ),
    ]
    return rows
