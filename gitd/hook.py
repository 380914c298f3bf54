"""The pre-receive hook gitd installs: a push to the deploy branch deploys, or the push is rejected.

git runs it inside ``git receive-pack`` with "<old> <new> <ref>" lines on stdin, before any ref is
updated; the pushed objects are readable (in quarantine). Everything printed here reaches the
pusher as ``remote:`` lines. Exit 0 accepts the whole push, anything else rejects it.

gitd sets PAASTECH_PUSH_CLIENT_ID, PAASTECH_PUSH_KEY_FINGERPRINT (the SSH key that pushed, for
the activity feed), PAASTECH_PUSH_PROJECT and PAASTECH_DEPLOY_BRANCH, and gives it a minimal
environment: the data dir, the API's gRPC address and the internal-RPC key only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from backend import deploy_output
from backend.rpc import platform_pb2 as pb
from backend.rpc import platform_pb2_grpc as pb_grpc
from backend.rpc.auth import call_metadata
from backend.settings import get_settings

ZERO = "0" * 40
CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class RefUpdate:
    old: str
    new: str
    ref: str

    @property
    def deletes(self) -> bool:
        return set(self.new) == {"0"}

    @property
    def branch(self) -> str | None:
        return self.ref.removeprefix("refs/heads/") if self.ref.startswith("refs/heads/") else None


def say(line: str = "") -> None:
    """One line to the pusher, flushed now (git relays it as it comes)."""
    sys.stdout.buffer.write(line.encode("utf-8", "replace") + b"\n")
    sys.stdout.buffer.flush()


def fail(message: str) -> int:
    for line in deploy_output.failure_lines(message):
        say(line)
    return 1


def deploy_refs(deploy_branch: str) -> set[str]:
    refs = {f"refs/heads/{deploy_branch}"}
    if deploy_branch == "main":
        refs.add("refs/heads/master")
    return refs


def read_updates(text: str) -> list[RefUpdate]:
    updates = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            updates.append(RefUpdate(*parts))
    return updates


async def archive_chunks(sha: str) -> AsyncIterator[bytes]:
    """`git archive --format=tar <sha>`, read in chunks as git writes it."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        "archive",
        "--format=tar",
        sha,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.create_task(proc.stderr.read())
    try:
        while chunk := await proc.stdout.read(CHUNK_BYTES):
            yield chunk
        if await proc.wait() != 0:
            raise RuntimeError(f"git archive failed: {(await errors).decode(errors='replace')}")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        errors.cancel()


async def deploy(project: str, client_id: int, sha: str, key_fingerprint: str = "") -> int:
    settings = get_settings()
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"

    async def chunks() -> AsyncIterator[pb.DeployChunk]:
        yield pb.DeployChunk(
            header=pb.DeployHeader(
                project=project,
                client_id=client_id,
                commit_sha=sha,
                cause=f"push {sha[:7]}",
                key_fingerprint=key_fingerprint,
            )
        )
        async for data in archive_chunks(sha):
            yield pb.DeployChunk(data=data)

    say(deploy_output.heading(f"Received {sha[:7]}; deploying {project}"))
    follower = _Follower(project)
    async with grpc.aio.insecure_channel(f"{host}:{settings.api_grpc_port}") as channel:
        stub = pb_grpc.DeploymentsStub(channel)
        try:
            async for event in stub.Deploy(chunks(), metadata=call_metadata()):
                if (code := follower.handle(event)) is not None:
                    return code
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in GONE:
                return fail(f"Push rejected: the platform answered {exc.code().name}")
            if not follower.application:
                return fail("Push rejected: the platform is not reachable; try again later")
        if not follower.application:
            return fail("Push rejected: the deploy ended without an outcome")
        # The API went away during the release: it resumes the release when it is back
        # (issue 20), so wait for it and follow the release to its outcome.
        say(
            deploy_output.heading(
                f"The platform restarted during v{follower.application}; reconnecting"
            )
        )
        return await _reconnect(stub, follower, client_id)


# The API went away (killed, restarting): what a stream then ends with.
GONE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


RECONNECT_SECONDS = 120.0


class _Follower:
    """Prints a release's events as remote: lines; remembers what it showed."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.application = 0
        self.lines = 0
        self.deployed_shown = False

    def handle(self, event: pb.DeployEvent) -> int | None:
        """The hook's exit code once the outcome is known, else None."""
        kind = event.WhichOneof("event")
        if kind == "log":
            self.lines += 1
            # A 0-web release's last line ("nothing serves URL") stands for the deployed line.
            self.deployed_shown |= deploy_output.is_last(event.log)
            say(deploy_output.for_pusher(event.log))
        elif kind == "deployed":
            self.lines += 1  # a line of the build log, sent typed
            self.deployed_shown = True
            say(deploy_output.deployed(event.deployed.url))
        elif kind == "status":
            self.application = event.status.application or self.application
            if event.status.status == "queued":
                say(deploy_output.heading(f"Queued as v{event.status.application}"))
        elif kind == "finished":
            f = event.finished
            if f.ok:
                if not self.deployed_shown:
                    say(deploy_output.deployed(f.url))
                return 0
            if f.application:
                # The log already ended with the reason and the last build lines.
                return fail(f"Push rejected: v{f.application} of {self.project} failed")
            return fail(f"Push rejected: {f.reason}")
        return None


async def _reconnect(
    stub: pb_grpc.DeploymentsAsyncStub, follower: _Follower, client_id: int
) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECONNECT_SECONDS
    delay = 0.5
    while loop.time() < deadline:
        request = pb.FollowRequest(
            project=follower.project,
            client_id=client_id,
            application=follower.application,
            skip_lines=follower.lines,
        )
        try:
            async for event in stub.Follow(request, metadata=call_metadata()):
                if (code := follower.handle(event)) is not None:
                    return code
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in GONE:
                return fail(f"Push rejected: the platform answered {exc.code().name}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
    return fail(
        f"Push rejected: the platform did not come back within {RECONNECT_SECONDS:.0f} s; "
        f"v{follower.application} resumes when it does (see `paastech releases`)"
    )


async def run(stdin_text: str, env: dict[str, str]) -> int:
    project = env.get("PAASTECH_PUSH_PROJECT", "")
    client = env.get("PAASTECH_PUSH_CLIENT_ID", "")
    branch = env.get("PAASTECH_DEPLOY_BRANCH", "") or "main"
    if not project or not client.isdigit():
        return fail("Push rejected: this repository only accepts pushes through PaaSTech's gitd")
    targets = deploy_refs(branch)
    to_deploy: list[RefUpdate] = []
    for update in read_updates(stdin_text):
        if update.ref in targets:
            if update.deletes:
                return fail("Deleting the deploy branch is refused")
            to_deploy.append(update)
        elif update.branch is not None and update.deletes:
            say(deploy_output.heading(f"Deleted branch {update.branch}"))
        elif update.branch is not None:
            say(deploy_output.heading(f"Stored branch {update.branch}; only {branch} deploys"))
        else:
            say(deploy_output.heading(f"Stored {update.ref}"))
    if len(to_deploy) > 1:
        return fail(f"Push one deploy branch at a time ({' or '.join(sorted(targets))})")
    if not to_deploy:
        return 0
    fingerprint = env.get("PAASTECH_PUSH_KEY_FINGERPRINT", "")
    return await deploy(project, int(client), to_deploy[0].new, fingerprint)


def _log_error() -> None:
    import traceback

    try:
        path = get_settings().data_dir / "gitd-hook.log"
        with path.open("a") as fh:
            fh.write(traceback.format_exc())
    except OSError:
        pass


def main() -> None:
    text = sys.stdin.read()
    try:
        code = asyncio.run(run(text, dict(os.environ)))
    except KeyboardInterrupt:
        code = 1
    except Exception:  # never a traceback to the pusher: it goes to the data dir's log
        _log_error()
        code = fail("Push rejected: internal error in the deploy hook")
    finish(code)


def finish(code: int) -> None:
    """Exit now, output flushed. git, and so the pusher's `git push`, waits for this process to
    end; a normal interpreter exit after gRPC (its core's shutdown, module teardown) took
    0.6 to 1.9 s on the loaded bench machine, against 15 ms for os._exit (issue 17)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
