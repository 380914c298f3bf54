"""gitd end to end: the real OpenSSH client and git against `python -m backend gitd`, with the API
and Pomegranate as subprocesses (tests/support/platform.py) and, for the zero-downtime test, the
embedded ingress. Pushes build and run real containers (marked docker)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.support.gqlclient import SIGNUP, Api, GraphQLErrors
from tests.support.platform import (
    LIGHT_DOCKERFILE,
    Platform,
    cleanup_project,
    fixture,
    get_json,
    gitd_process,
    platform,
)
from tests.support.polling import within
from tests.support.servers import reserved_port

STATE = """query($p: String!) { project(name: $p) {
  gitUrl applicationCount
  liveApplication { number status commitSha }
  applications(first: 20) { number status commitSha cause }
  processes { processType replica hostPort running } } }"""

SSH_OPTS = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
]
GIT_ID = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@dataclass
class Gitd:
    port: int
    data_dir: Path
    log: Path

    @property
    def repos(self) -> Path:
        return self.data_dir / "repos"

    def url(self, project: str) -> str:
        return f"ssh://git@127.0.0.1:{self.port}/{project}.git"


GITD_PORT = reserved_port()  # the API knows it too: its gitUrl fields point at this gitd
# gitd_login_timeout_seconds of this module's gitd (20 s by default): test_login_timeout waits it.
LOGIN_TIMEOUT = 8


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("gitd-platform")
    with platform(data_dir, health_check_timeout_seconds=20, gitd_port=GITD_PORT) as p:
        yield p


@pytest.fixture(scope="module")
def gitd(plat: Platform) -> Iterator[Gitd]:
    with gitd_process(plat, GITD_PORT, gitd_login_timeout_seconds=LOGIN_TIMEOUT) as log_path:
        yield Gitd(GITD_PORT, plat.data_dir, log_path)


@dataclass
class Ingress:
    port: int

    def client(self, project: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Host": f"{project}.localhost"},
            timeout=10,
        )


@pytest.fixture(scope="module")
def ingress(plat: Platform) -> Ingress:
    return Ingress(plat.ingress_port)


class User:
    def __init__(self, plat: Platform, gitd: Gitd, api: Api, username: str, home: Path) -> None:
        self.plat, self.gitd, self.api, self.username, self.home = plat, gitd, api, username, home
        self.key = home / "id_ed25519"

    async def project(self) -> str:
        name = f"g-{secrets.token_hex(4)}"
        await self.api("mutation($n: String!) { createProject(name: $n) { name } }", n=name)
        self.plat.projects.append(name)
        return name

    async def state(self, project: str) -> dict:
        return (await self.api(STATE, p=project))["project"]

    async def web_port(self, project: str) -> int:
        for p in (await self.state(project))["processes"]:
            if p["processType"] == "web" and p["running"]:
                return p["hostPort"]
        raise AssertionError(f"no running web process: {await self.state(project)}")

    def ssh_command(self) -> str:
        return " ".join(["ssh", "-i", str(self.key), "-p", str(self.gitd.port), *SSH_OPTS])

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PAASTECH_"))}
        env.update(GIT_ID, HOME=str(self.home), GIT_CONFIG_NOSYSTEM="1")
        env["GIT_SSH_COMMAND"] = self.ssh_command()
        return env

    def ssh(self, *command: str) -> subprocess.CompletedProcess[str]:
        argv = ["ssh", "-i", str(self.key), "-p", str(self.gitd.port), *SSH_OPTS]
        return subprocess.run(
            [*argv, "git@127.0.0.1", *command],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    def ssh_in_terminal(self) -> tuple[int, str]:
        """`ssh git@host` as typed in a terminal (ssh asks for a pty): exit code and output."""
        import pty

        main, child = pty.openpty()
        argv = ["ssh", "-i", str(self.key), "-p", str(self.gitd.port), *SSH_OPTS]
        proc = subprocess.Popen(
            [*argv, "git@127.0.0.1"], stdin=child, stdout=child, stderr=child, close_fds=True
        )
        os.close(child)
        output = b""
        try:
            while True:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # EIO: the other side closed
                    break
                if not chunk:
                    break
                output += chunk
            return proc.wait(30), output.decode(errors="replace")
        finally:
            os.close(main)

    def git(
        self, *args: str, cwd: Path | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed:\n{result.stderr}")
        return result

    def workdir(self, app: str, project: str, light: bool = False) -> Path:
        """A git working copy of a fixture app with the project as remote `paastech`; ``light``:
        with LIGHT_DOCKERFILE, for pushes whose subject is gitd rather than the Python stack."""
        work = self.home / f"work-{project}-{secrets.token_hex(2)}"
        shutil.copytree(fixture(app), work)
        if light:
            (work / "Dockerfile").write_text(LIGHT_DOCKERFILE)
        self.git("init", "-q", "-b", "main", cwd=work)
        self.git("add", "-A", cwd=work)
        self.git("commit", "-q", "-m", f"{app} fixture", cwd=work)
        self.git("remote", "add", "paastech", self.gitd.url(project), cwd=work)
        return work

    def commit(self, work: Path, files: dict[str, str | bytes], message: str = "change") -> str:
        for name, content in files.items():
            path = work / name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        self.git("add", "-A", cwd=work)
        self.git("commit", "-q", "-m", message, cwd=work)
        return self.head(work)

    def head(self, work: Path, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref, cwd=work).stdout.strip()

    def push(self, work: Path, *refspec: str) -> subprocess.CompletedProcess[str]:
        return self.git("push", "paastech", *(refspec or ("main",)), cwd=work, check=False)

    def ls_remote(self, project: str, url: str | None = None) -> dict[str, str]:
        out = self.git("ls-remote", url or self.gitd.url(project)).stdout
        return {ref: sha for sha, ref in (line.split("\t") for line in out.splitlines())}


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gitd-homes")


async def make_user(plat: Platform, gitd: Gitd, homes: Path, register_key: bool = True) -> User:
    name = f"u{secrets.token_hex(4)}"
    data = await Api(plat.api_url)(
        SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
    )
    home = homes / name
    home.mkdir()
    user = User(plat, gitd, Api(plat.api_url, data["signup"]["token"]), name, home)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(user.key)],
        check=True,
        capture_output=True,
    )
    if register_key:
        await user.api(
            'mutation($k: String!) { addSshKey(publicKey: $k, title: "laptop") { id } }',
            k=user.key.with_suffix(".pub").read_text(),
        )
    return user


@pytest.fixture
async def alice(plat: Platform, gitd: Gitd, homes: Path) -> AsyncIterator[User]:
    before = len(plat.projects)
    user = await make_user(plat, gitd, homes)
    yield user
    for project in plat.projects[before:]:
        # Through the API: containers removed behind its back would be started again by the
        # periodic reconcile and run until the module ends.
        with contextlib.suppress(GraphQLErrors):
            await user.api("mutation($n: String!) { deleteProject(name: $n) { name } }", n=project)
        cleanup_project(project)


@pytest.fixture
async def bob(plat: Platform, gitd: Gitd, homes: Path) -> User:
    return await make_user(plat, gitd, homes)


def remote_lines(stderr: str) -> list[str]:
    return [line.removeprefix("remote: ").rstrip() for line in stderr.splitlines()]


def save_transcript(gitd: Gitd, name: str, result: subprocess.CompletedProcess[str]) -> None:
    (gitd.data_dir / f"transcript-{name}.txt").write_text(
        f"$ git push paastech main  (exit {result.returncode})\n{result.stderr}"
    )


# -- without deploys -------------------------------------------------------------------------


async def test_project_gets_a_bare_repo_and_a_git_url(alice: User, gitd: Gitd) -> None:
    project = await alice.project()
    state = await alice.state(project)
    assert state["gitUrl"] == gitd.url(project)
    repo = gitd.repos / f"{project}.git"
    assert (repo / "HEAD").read_text().strip() == "ref: refs/heads/main"
    assert alice.ls_remote(project) == {}
    await alice.api("mutation($n: String!) { deleteProject(name: $n) { name } }", n=project)
    assert not repo.exists()


async def test_host_key_kept_in_data_dir(gitd: Gitd) -> None:
    key = gitd.data_dir / "ssh_host_ed25519_key"
    assert key.stat().st_mode & 0o777 == 0o600
    scan = subprocess.run(
        ["ssh-keyscan", "-t", "ed25519", "-p", str(gitd.port), "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    public = key.with_suffix(".pub").read_text().split()[1]
    assert public in scan.stdout


async def test_plain_ssh_prints_greeting(alice: User, gitd: Gitd) -> None:
    project = await alice.project()
    result = alice.ssh()
    assert result.returncode == 0, result.stderr
    assert f"Hi {alice.username}! You've authenticated to PaaSTech." in result.stdout
    assert f"{project}  {gitd.url(project)}" in result.stdout
    assert "git push paastech main" in result.stdout
    # From a terminal: the pty is granted (`ssh -t ... run` needs it, issue 14), but a login
    # still only gets the greeting: there is no shell.
    code, output = alice.ssh_in_terminal()
    assert code == 0, output
    assert f"Hi {alice.username}!" in output
    assert "There is no shell access to this host." in output


async def test_unknown_key_refused(plat: Platform, gitd: Gitd, homes: Path) -> None:
    stranger = await make_user(plat, gitd, homes, register_key=False)
    project = await stranger.project()
    result = stranger.ssh(f"git-receive-pack '{project}.git'")
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr
    work = stranger.workdir("static", project)
    push = stranger.push(work)
    assert push.returncode != 0
    assert (
        stranger.git(
            "--git-dir", str(gitd.repos / f"{project}.git"), "show-ref", check=False
        ).stdout
        == ""
    )


async def test_another_clients_project_is_not_found(alice: User, bob: User, gitd: Gitd) -> None:
    project = await alice.project()
    work = bob.workdir("static", project)
    pushed = bob.push(work)
    assert pushed.returncode != 0
    assert f"remote: project '{project}' not found" in pushed.stderr
    missing = "g-nothing-here"
    other = bob.git("ls-remote", gitd.url(missing), check=False)
    assert other.returncode != 0
    assert f"remote: project '{missing}' not found" in other.stderr
    # Same answer for someone else's project and for no project at all.
    clone = bob.git("clone", gitd.url(project), str(bob.home / "stolen"), check=False)
    assert clone.returncode != 0
    assert f"remote: project '{project}' not found" in clone.stderr
    assert not any((bob.home / "stolen").glob("*"))
    assert alice.ls_remote(project) == {}


HOSTILE = [
    "git-receive-pack '../x.git'",
    "git-receive-pack '../../etc/passwd'",
    "git-receive-pack '/tmp/x.git'",
    "git-receive-pack '//x.git'",
    "git-receive-pack 'x.git; touch /tmp/pwned'",
    "git-receive-pack 'x.git'; touch /tmp/pwned",
    "git-receive-pack '$(touch /tmp/pwned).git'",
    "git-receive-pack '`touch /tmp/pwned`.git'",
    "git-upload-pack '--upload-pack=touch /tmp/pwned'",
    'git-receive-pack "x.git"',
    "git-receive-pack ''x.git''",
    "git-receive-pack '" + "a" * 300 + ".git'",
    "git-receive-pack '" + "b" * 5000 + "'",
    "git receive-pack 'x.git'",
    "sh",
    "ls",
    "bash -c 'touch /tmp/pwned'",
    "touch /tmp/pwned",
    "scp -t /tmp/pwned",
    "git-upload-archive 'x.git'",
]


@pytest.mark.parametrize("command", HOSTILE)
async def test_hostile_commands_refused(alice: User, gitd: Gitd, command: str) -> None:
    Path("/tmp/pwned").unlink(missing_ok=True)
    before = sorted(p.name for p in gitd.repos.iterdir())
    result = alice.ssh(command)
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("remote: refused"), result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in gitd.repos.iterdir()) == before
    assert not Path("/tmp/pwned").exists()
    assert not (gitd.data_dir / "x.git").exists() and not Path("/tmp/x.git").exists()


async def test_subsystem_refused(alice: User, gitd: Gitd) -> None:
    argv = ["ssh", "-i", str(alice.key), "-p", str(gitd.port), *SSH_OPTS, "-s"]
    result = subprocess.run(
        [*argv, "git@127.0.0.1", "sftp"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "subsystem request failed" in result.stderr


async def test_non_deploy_branch_stored_without_deploy(alice: User, gitd: Gitd) -> None:
    project = await alice.project()
    work = alice.workdir("static", project)
    alice.git("checkout", "-q", "-b", "feature", cwd=work)
    result = alice.push(work, "feature")
    assert result.returncode == 0, result.stderr
    assert "remote: -----> Stored branch feature; only main deploys" in result.stderr
    assert alice.ls_remote(project) == {"refs/heads/feature": alice.head(work)}
    assert (await alice.state(project))["applicationCount"] == 0
    # Deleting a branch that does not deploy is fine.
    result = alice.push(work, ":feature")
    assert result.returncode == 0, result.stderr
    assert alice.ls_remote(project) == {}


async def test_login_timeout(gitd: Gitd) -> None:
    """A connection that never authenticates is closed by gitd after the login timeout
    (LOGIN_TIMEOUT): the socket reads end of file; the client's own timeout, twice as long,
    would raise instead."""
    with socket.create_connection(("127.0.0.1", gitd.port), timeout=2 * LOGIN_TIMEOUT) as s:
        assert s.recv(100).startswith(b"SSH-2.0-")
        while s.recv(4096):
            pass


# -- pushes that deploy ----------------------------------------------------------------------


@pytest.mark.docker
async def test_push_deploys_clone_and_branch_rules(alice: User, bob: User, gitd: Gitd) -> None:
    project = await alice.project()
    work = alice.workdir("python", project, light=True)
    sha = alice.head(work)
    result = alice.push(work)
    save_transcript(gitd, "ok", result)
    assert result.returncode == 0, result.stderr
    lines = remote_lines(result.stderr)
    assert any(line.startswith("-----> Building") for line in lines), result.stderr
    assert f"=====> Application deployed: http://{project}.localhost:8080" in lines
    assert f"remote: -----> Received {sha[:7]}; deploying {project}" in result.stderr
    body = await get_json(await alice.web_port(project))
    assert body["app"] == "python"
    state = await alice.state(project)
    assert state["liveApplication"]["commitSha"] == sha
    assert state["applications"][0]["cause"] == f"push {sha[:7]}"
    assert alice.ls_remote(project)["refs/heads/main"] == sha
    # The activity feed says which SSH key pushed (issue 18): its title and fingerprint.
    feed = await alice.api(
        "query($p: String) { activity(project: $p) { action source sshKey sshKeyFingerprint "
        "summary } }",
        p=project,
    )
    (deployed,) = [a for a in feed["activity"] if a["action"] == "deploy"]
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(alice.key.with_suffix(".pub"))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[1]
    assert deployed == {
        "action": "deploy",
        "source": "git",
        "sshKey": "laptop",
        "sshKeyFingerprint": fingerprint,
        "summary": f"deployed v1 (push {sha[:7]}) with SSH key laptop",
    }

    # Clone of one's own project: same contents. Someone else's: not found.
    clone = alice.home / f"clone-{project}"
    alice.git("clone", "-q", gitd.url(project), str(clone))
    assert alice.head(clone) == sha
    for name in ("app.py", "Procfile", "requirements.txt"):
        assert (clone / name).read_bytes() == (work / name).read_bytes()
    stolen = bob.git("clone", gitd.url(project), str(bob.home / "stolen2"), check=False)
    assert stolen.returncode != 0 and "not found" in stolen.stderr

    # Another branch is stored, not deployed.
    alice.git("checkout", "-q", "-b", "wip", cwd=work)
    wip = alice.commit(work, {"NOTES.md": "wip\n"})
    result = alice.push(work, "wip")
    assert result.returncode == 0, result.stderr
    assert "Stored branch wip; only main deploys" in result.stderr
    assert alice.ls_remote(project)["refs/heads/wip"] == wip
    assert (await alice.state(project))["applicationCount"] == 1

    # The deploy branch cannot be deleted.
    result = alice.push(work, ":main")
    assert result.returncode != 0
    assert "remote:  !     Deleting the deploy branch is refused" in result.stderr
    assert alice.ls_remote(project)["refs/heads/main"] == sha

    # A force push of another history deploys like any push.
    alice.git("checkout", "-q", "--orphan", "other", cwd=work)
    other = alice.commit(work, {"app.py": (work / "app.py").read_text()}, "rewrite")
    result = alice.push(work, "--force", "other:main")
    assert result.returncode == 0, result.stderr
    assert alice.ls_remote(project)["refs/heads/main"] == other
    assert (await alice.state(project))["liveApplication"]["commitSha"] == other


@pytest.mark.docker
async def test_failed_build_rejects_push(alice: User, gitd: Gitd) -> None:
    project = await alice.project()
    work = alice.workdir("python", project, light=True)
    good = alice.head(work)
    assert alice.push(work).returncode == 0
    port = await alice.web_port(project)
    bad = alice.commit(work, {"Dockerfile": (fixture("build-fails") / "Dockerfile").read_text()})
    result = alice.push(work)
    save_transcript(gitd, "failed", result)
    assert result.returncode != 0
    assert "compiling..." in result.stderr
    assert f"remote:  !     Push rejected: v2 of {project} failed" in result.stderr
    assert "[remote rejected] main -> main (pre-receive hook declined)" in result.stderr
    assert alice.ls_remote(project)["refs/heads/main"] == good
    assert (await get_json(port))["app"] == "python"
    state = await alice.state(project)
    assert state["liveApplication"]["number"] == 1
    assert [a["status"] for a in state["applications"]] == ["FAILED", "RUNNING"]
    assert state["applications"][0]["commitSha"] == bad


@pytest.mark.docker
async def test_second_version_switches_without_failed_requests(
    alice: User, gitd: Gitd, ingress: Ingress
) -> None:
    project = await alice.project()
    work = alice.workdir("python", project, light=True)
    assert alice.push(work).returncode == 0
    async with ingress.client(project) as http:
        async with within(30, "the ingress to route the app"):
            while (await http.get("/")).status_code != 200:
                await asyncio.sleep(0.2)

        app_py = (work / "app.py").read_text().replace('"VERSION", "v1"', '"VERSION", "v2"')
        alice.commit(work, {"app.py": app_py})
        results: list[str] = []
        stop = asyncio.Event()

        async def hammer() -> None:
            while not stop.is_set():
                try:
                    resp = await http.get("/")
                    results.append(
                        resp.json()["version"]
                        if resp.status_code == 200
                        else f"HTTP {resp.status_code}"
                    )
                except httpx.HTTPError as exc:
                    results.append(f"error {exc!r}")
                await asyncio.sleep(0.01)

        task = asyncio.create_task(hammer())
        try:
            result = await asyncio.to_thread(alice.push, work)
            assert result.returncode == 0, result.stderr
            async with within(10, "v2 to answer after the push"):
                while not results or results[-1] != "v2":
                    await asyncio.sleep(0.1)
        finally:
            stop.set()
            await task
    failures = [r for r in results if r not in ("v1", "v2")]
    assert not failures, failures[:5]
    assert results.count("v1") > 0 and results.count("v2") > 0
    assert len(results) > 50


@pytest.mark.docker
async def test_concurrent_pushes_stay_consistent(alice: User, gitd: Gitd) -> None:
    project = await alice.project()
    base = alice.workdir("python", project, light=True)
    assert alice.push(base).returncode == 0
    clones = []
    for i in (1, 2):
        clone = alice.home / f"c{i}-{project}"
        alice.git("clone", "-q", "-o", "paastech", gitd.url(project), str(clone))
        alice.commit(clone, {"NOTES.md": f"clone {i}\n"}, f"clone {i}")
        clones.append(clone)
    results = await asyncio.gather(*(asyncio.to_thread(alice.push, c) for c in clones))
    for i, r in enumerate(results):
        save_transcript(gitd, f"concurrent-{i}", r)
    ok = [r for r in results if r.returncode == 0]
    assert ok, [r.stderr for r in results]
    for r in results:
        if r.returncode != 0:
            assert "rejected" in r.stderr, r.stderr
    heads = {alice.head(c) for c, r in zip(clones, results, strict=True) if r.returncode == 0}
    main = alice.ls_remote(project)["refs/heads/main"]
    assert main in heads
    state = await alice.state(project)
    assert state["liveApplication"]["commitSha"] == main
    fsck = alice.git("--git-dir", str(gitd.repos / f"{project}.git"), "fsck", "--strict")
    assert fsck.returncode == 0


@pytest.mark.docker
async def test_50mb_push(alice: User, gitd: Gitd) -> None:
    project = await alice.project()
    work = alice.workdir("python", project, light=True)
    sha = alice.commit(work, {"blob.bin": os.urandom(50 * 1024 * 1024)}, "50 MB")
    result = alice.push(work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert alice.ls_remote(project)["refs/heads/main"] == sha
    assert (await get_json(await alice.web_port(project)))["app"] == "python"
