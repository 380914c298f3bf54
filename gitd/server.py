"""gitd: the SSH server of `git push` / `git fetch` (asyncssh).

Public-key authentication only, each key looked up through the API's internal GitAccess service.
An exec request may only run `git-receive-pack` or `git-upload-pack` on one of the caller's own
repositories (gitd/commands.py parses it); the real git runs as a subprocess wired to the channel.
`run <project> -- <command>...` (issue 14) relays a one-off command through the API's
Deployments.Run: the command runs in the app's container, never on this host.
receive-pack runs with gitd's pre-receive hook (gitd/hook.py), which deploys the pushed revision
and rejects the push when the deploy fails. A plain `ssh` login prints a greeting and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import grpc

from backend import repos
from backend.rpc import platform_pb2 as pb
from backend.rpc import platform_pb2_grpc as pb_grpc
from backend.rpc.auth import call_metadata
from backend.security import internal_secret
from backend.settings import Settings, get_settings
from gitd import commands

log = logging.getLogger("paastech.gitd")

HOST_KEY_FILE = "ssh_host_ed25519_key"
HOOKS_DIR = "hooks"

MAX_SESSIONS_PER_CONNECTION = 4
KEEPALIVE_INTERVAL_SECONDS = 30
KEEPALIVE_COUNT_MAX = 3
COMMAND_MAX_SECONDS = 30 * 60  # total time of one git command, deploy included
RPC_TIMEOUT_SECONDS = 10
WATCHDOG_INTERVAL_SECONDS = 1.0
CHUNK_BYTES = 64 * 1024
# All gitd passes to git and the hook from its own environment: never GIT_*, never the
# platform's other settings (the database URL and its password, the master key).
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")


class Access:
    """Client of the API's GitAccess service (shared secret)."""

    def __init__(self, settings: Settings) -> None:
        host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        self._channel = grpc.aio.insecure_channel(f"{host}:{settings.api_grpc_port}")
        self._stub = pb_grpc.GitAccessStub(self._channel)
        self._deployments = pb_grpc.DeploymentsStub(self._channel)

    async def authorize_key(self, fingerprint: str) -> pb.KeyReply:
        return await self._stub.AuthorizeKey(
            pb.KeyRequest(fingerprint=fingerprint),
            metadata=call_metadata(),
            timeout=RPC_TIMEOUT_SECONDS,
        )

    async def authorize_repo(self, client_id: int, project: str, write: bool) -> pb.RepoReply:
        return await self._stub.AuthorizeRepo(
            pb.RepoRequest(client_id=client_id, project=project, write=write),
            metadata=call_metadata(),
            timeout=RPC_TIMEOUT_SECONDS,
        )

    async def whoami(self, client_id: int) -> pb.WhoamiReply:
        return await self._stub.Whoami(
            pb.ClientRef(client_id=client_id), metadata=call_metadata(), timeout=RPC_TIMEOUT_SECONDS
        )

    def run(
        self, requests: AsyncIterator[pb.RunChunk]
    ) -> grpc.aio.StreamStreamCall[pb.RunChunk, pb.RunEvent]:
        """A one-off command (issue 14); cancelling the call stops and removes it."""
        return self._deployments.Run(requests, metadata=call_metadata())

    async def close(self) -> None:
        await self._channel.close()


class Connection(asyncssh.SSHServer):
    """One SSH connection: its authenticated Client, its sessions, its idle clock."""

    def __init__(self, gitd: Gitd) -> None:
        self.gitd = gitd
        self.conn: asyncssh.SSHServerConnection | None = None
        self.client_id = 0
        self.username = ""
        self.key_fingerprint = ""  # the key that authenticated: who pushed, in the activity feed
        self.address = ""
        self.sessions = 0
        self.started = self.last_activity = time.monotonic()
        self._watchdog: asyncio.Task[None] | None = None

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def close(self) -> None:
        if self.conn is not None:
            asyncio.get_running_loop().call_soon(self.conn.close)

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername") or ("unknown",)
        self.address = str(peer[0])
        self.gitd.limits.admit(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gitd.limits.forget(self)
        if self._watchdog is not None:
            self._watchdog.cancel()

    def begin_auth(self, username: str) -> bool:
        return True  # any user name; the key says who it is

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        fingerprint = key.get_fingerprint("sha256")
        try:
            reply = await self.gitd.access.authorize_key(fingerprint)
        except grpc.aio.AioRpcError as exc:
            log.error("GitAccess.AuthorizeKey failed: %s", exc.code().name)
            return False
        if not reply.found:
            return False
        # asyncssh verifies the signature right after this returns True; the last key
        # validated is the one that authenticates the connection.
        self.client_id, self.username = reply.client_id, reply.username
        self.key_fingerprint = fingerprint
        return True

    def auth_completed(self) -> None:
        log.info("client %d (%s) authenticated", self.client_id, self.username)
        self.touch()
        if not self.gitd.limits.authenticated(self):
            return
        self._watchdog = asyncio.get_running_loop().create_task(self._idle_watchdog())

    async def _idle_watchdog(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL_SECONDS)
            now = time.monotonic()
            if now - self.last_activity > self.gitd.idle_timeout:
                log.info("closing idle connection of client %d", self.client_id)
            elif now - self.started > self.gitd.connection_max_seconds:
                log.info("closing connection of client %d: open too long", self.client_id)
            else:
                continue
            if self.conn is not None:
                self.conn.close()
            return


class ConnectionLimits:
    """Unauthenticated connections (anyone can open them) are capped apart from authenticated
    ones, per address and in total. A full per-address cap refuses the new connection; a full
    total cap drops the oldest waiting one instead, so a flood of idle sockets from many
    addresses delays a real client by one handshake at most, never locks it out."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.waiting: dict[Connection, None] = {}  # unauthenticated, oldest first
        self.per_address: Counter[str] = Counter()
        self.signed_in: set[Connection] = set()

    def admit(self, conn: Connection) -> None:
        s = self.settings
        if self.per_address[conn.address] >= s.gitd_max_unauthenticated_per_address:
            log.warning("too many unauthenticated connections from %s: closing one", conn.address)
            conn.close()
            return
        if len(self.waiting) >= s.gitd_max_unauthenticated:
            oldest = next(iter(self.waiting))
            log.warning("too many unauthenticated connections: dropping the oldest")
            self._unwait(oldest)
            oldest.close()
        self.waiting[conn] = None
        self.per_address[conn.address] += 1

    def authenticated(self, conn: Connection) -> bool:
        self._unwait(conn)
        if len(self.signed_in) >= self.settings.gitd_max_authenticated:
            log.warning("too many authenticated connections: closing one")
            conn.close()
            return False
        self.signed_in.add(conn)
        return True

    def forget(self, conn: Connection) -> None:
        self._unwait(conn)
        self.signed_in.discard(conn)

    def _unwait(self, conn: Connection) -> None:
        if conn in self.waiting:
            del self.waiting[conn]
            self.per_address[conn.address] -= 1
            if self.per_address[conn.address] <= 0:
                del self.per_address[conn.address]


class Gitd:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.data_dir = self.settings.data_dir.resolve()
        self.access = Access(self.settings)
        self.limits = ConnectionLimits(self.settings)
        self.idle_timeout = self.settings.gitd_idle_timeout_seconds
        self.connection_max_seconds = self.settings.gitd_connection_max_seconds
        self.command_max_seconds = COMMAND_MAX_SECONDS
        self._push_locks: dict[str, asyncio.Lock] = {}
        self._server: asyncssh.SSHAcceptor | None = None

    @property
    def hooks_dir(self) -> Path:
        return self.data_dir / HOOKS_DIR

    # -- setup -----------------------------------------------------------------------------

    def host_key(self) -> asyncssh.SSHKey:
        """The server's ed25519 key, generated once and kept in the data dir (0600)."""
        path = self.data_dir / HOST_KEY_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            key = asyncssh.generate_private_key("ssh-ed25519", comment="paastech-gitd")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another gitd made it just now
            else:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(key.export_private_key())
                path.with_suffix(".pub").write_bytes(key.export_public_key())
        return asyncssh.read_private_key(path)

    def install_hook(self) -> None:
        """DATA_DIR/hooks/pre-receive: runs gitd.hook with this interpreter."""
        self.hooks_dir.mkdir(parents=True, exist_ok=True)
        script = f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m gitd.hook\n"
        target = self.hooks_dir / "pre-receive"
        tmp = target.with_name(f".pre-receive.{os.getpid()}")
        tmp.write_text(script)
        tmp.chmod(0o755)
        tmp.replace(target)

    async def start(self) -> asyncssh.SSHAcceptor:
        self.install_hook()
        s = self.settings
        self._server = await asyncssh.create_server(
            lambda: Connection(self),
            s.host,
            s.gitd_port,
            server_host_keys=[self.host_key()],
            process_factory=self.handle,
            encoding=None,
            # A pty only matters to `ssh -t ... run` (issue 14); git never asks for one, and a
            # plain login with one still only gets the greeting.
            allow_pty=True,
            line_editor=False,
            agent_forwarding=False,
            x11_forwarding=False,
            allow_scp=False,
            password_auth=False,
            kbdint_auth=False,
            login_timeout=s.gitd_login_timeout_seconds,
            keepalive_interval=KEEPALIVE_INTERVAL_SECONDS,
            keepalive_count_max=KEEPALIVE_COUNT_MAX,
            server_version="PaaSTech_gitd",
        )
        log.info(
            "gitd listening on %s:%d (push to %s)",
            s.host,
            s.gitd_port,
            repos.git_url("<project>", s),
        )
        return self._server

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self.access.close()

    # -- sessions --------------------------------------------------------------------------

    async def handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        conn: Connection = process.get_extra_info("connection").get_owner()
        conn.sessions += 1
        conn.touch()
        status = 1
        try:
            if conn.sessions > MAX_SESSIONS_PER_CONNECTION:
                status = refuse(process, "refused: too many sessions on one connection")
            elif process.subsystem is not None:
                status = refuse(process, commands.NOT_ALLOWED)
            elif process.command is None:
                status = await self.greet(process, conn)
            else:
                status = await self.run_command(process, conn)
        except grpc.aio.AioRpcError as exc:
            log.error("GitAccess call failed: %s", exc.code().name)
            status = refuse(process, "the platform is not reachable; try again later")
        except Exception:
            log.exception("session of client %d failed", conn.client_id)
            status = refuse(process, "internal error")
        finally:
            conn.sessions -= 1
            conn.touch()
        with contextlib.suppress(Exception):
            process.exit(status)

    async def greet(self, process: asyncssh.SSHServerProcess[bytes], conn: Connection) -> int:
        who = await self.access.whoami(conn.client_id)
        lines = [f"Hi {who.username}! You've authenticated to PaaSTech.", ""]
        if who.projects:
            lines.append("Your projects:")
            width = max(len(p) for p in who.projects)
            lines += [f"  {p:<{width}}  {repos.git_url(p, self.settings)}" for p in who.projects]
        else:
            lines.append("You have no projects yet: create one first.")
        example = who.projects[0] if who.projects else "<name>"
        host = self.settings.git_host or self.settings.host
        lines += [
            "",
            "To deploy a project:",
            f"  git remote add paastech {repos.git_url(example, self.settings)}",
            "  git push paastech main",
            "",
            "To run a one-off command in a project's container:",
            f"  ssh -t -p {self.settings.gitd_port} git@{host} run {example} -- sh",
            "",
            "There is no shell access to this host.",
        ]
        process.stdout.write(("\n".join(lines) + "\n").encode())
        return 0

    async def run_command(self, process: asyncssh.SSHServerProcess[bytes], conn: Connection) -> int:
        if commands.is_run(process.command):
            try:
                oneoff = commands.parse_run(process.command)
            except commands.Refused as exc:
                log.info("client %d: refused a run command", conn.client_id)
                return refuse(process, exc.message)
            return await self.run_oneoff(process, conn, oneoff)
        try:
            cmd = commands.parse(process.command)
        except commands.Refused as exc:
            log.info("client %d: refused a command", conn.client_id)
            return refuse(process, exc.message)
        reply = await self.access.authorize_repo(conn.client_id, cmd.project, cmd.write)
        if not reply.ok:
            return refuse(process, reply.message or f"project {cmd.project!r} not found")
        path = Path(reply.repo_path)
        if not repos.is_repo_path(path, self.settings) or not path.is_dir():  # noqa: ASYNC240
            log.error("refusing repository path %s for %s", path, cmd.project)
            return refuse(process, f"project {cmd.project!r} not found")
        log.info("client %d: %s %s", conn.client_id, cmd.service, cmd.project)
        if not cmd.write:
            argv = ["git", "upload-pack", "--strict", str(path)]
            return await self.run_git(process, conn, argv, self.git_env({}), path)
        argv = [
            "git",
            "-c",
            f"core.hooksPath={self.hooks_dir}",
            "-c",
            "receive.fsckObjects=true",
            "receive-pack",
            str(path),
        ]
        env = self.git_env(
            {
                "PAASTECH_PUSH_CLIENT_ID": str(conn.client_id),
                "PAASTECH_PUSH_KEY_FINGERPRINT": conn.key_fingerprint,
                "PAASTECH_PUSH_PROJECT": cmd.project,
                "PAASTECH_DEPLOY_BRANCH": reply.deploy_branch or "main",
            }
        )
        # One push per project at a time: a second push waits, then git checks it against the
        # ref the first one left (non-fast-forward pushes are rejected unless forced).
        lock = self._push_locks.setdefault(cmd.project, asyncio.Lock())
        if lock.locked():
            process.stderr.write(b"remote: waiting for another push to this project to finish\n")
        acquire = asyncio.ensure_future(lock.acquire())
        try:
            while not acquire.done():  # waiting for the lock is not idling
                await asyncio.wait({acquire}, timeout=WATCHDOG_INTERVAL_SECONDS)
                conn.touch()
        except BaseException:
            if acquire.done() and not acquire.cancelled():
                lock.release()
            else:
                acquire.cancel()
            raise
        try:
            return await self.run_git(process, conn, argv, env, path)
        finally:
            lock.release()

    async def run_oneoff(
        self, process: asyncssh.SSHServerProcess[bytes], conn: Connection, cmd: commands.RunCommand
    ) -> int:
        """Relay a one-off command: stdin (and terminal resizes) up, output down; its exit
        code is the session's. The client going away cancels the call, and the container is
        removed."""
        tty = process.get_terminal_type() is not None
        cols, rows = process.get_terminal_size()[:2] if tty else (0, 0)
        header = pb.RunHeader(
            project=cmd.project,
            client_id=conn.client_id,
            command=cmd.argv,
            tty=tty,
            size=pb.TerminalSize(rows=rows, cols=cols),
        )

        async def requests() -> AsyncIterator[pb.RunChunk]:
            yield pb.RunChunk(header=header)
            while True:
                try:
                    data = await process.stdin.read(CHUNK_BYTES)
                except asyncssh.TerminalSizeChanged as change:
                    size = pb.TerminalSize(rows=change.height, cols=change.width)
                    yield pb.RunChunk(resize=size)
                    continue
                except Exception:
                    data = b""  # the channel is going away: the watcher below handles it
                conn.touch()
                if not data:
                    yield pb.RunChunk(stdin_closed=True)
                    return
                yield pb.RunChunk(stdin=data)

        log.info("client %d: run on %s", conn.client_id, cmd.project)
        call = self.access.run(requests())

        async def relay() -> int:
            async for event in call:
                conn.touch()
                kind = event.WhichOneof("event")
                if kind == "stdout":
                    process.stdout.write(event.stdout)
                elif kind == "stderr":
                    process.stderr.write(event.stderr)
                elif kind == "exit":
                    if event.exit.reason:
                        process.stderr.write(f"remote: {event.exit.reason}\r\n".encode())
                    return event.exit.code if 0 <= event.exit.code <= 255 else 255
                elif kind == "refused":
                    return refuse(process, event.refused.message)
            return refuse(process, "the command ended without an exit status")

        async def alive() -> None:
            # A command may stay quiet for long (a migration, an idle shell): it is bounded by
            # run_timeout_seconds, not by the idle timeout meant for stalled git transfers.
            while True:
                conn.touch()
                await asyncio.sleep(WATCHDOG_INTERVAL_SECONDS)

        relaying = asyncio.create_task(relay())
        closed = asyncio.create_task(process.channel.wait_closed())
        heartbeat = asyncio.create_task(alive())
        try:
            await asyncio.wait({relaying, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not relaying.done():
                log.info("client %d: run on %s: the client went away", conn.client_id, cmd.project)
                return 1
            return relaying.result()
        finally:
            call.cancel()  # after an exit this is a no-op; otherwise it stops the command
            for task in (relaying, closed, heartbeat):
                task.cancel()
            await asyncio.gather(relaying, closed, heartbeat, return_exceptions=True)

    def git_env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
        env.setdefault("PATH", os.defpath)
        env["HOME"] = str(self.data_dir)  # no user's ~/.gitconfig
        env["GIT_CONFIG_NOSYSTEM"] = "1"
        # The hook runs inside the repository: give it absolute settings.
        env["PAASTECH_DATA_DIR"] = str(self.data_dir)
        env["PAASTECH_HOST"] = self.settings.host
        env["PAASTECH_API_GRPC_PORT"] = str(self.settings.api_grpc_port)
        # The hook's one secret: the internal-RPC key (it calls the API's Deployments service).
        env["PAASTECH_INTERNAL_KEY"] = internal_secret()
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        env.update(extra)
        return env

    async def run_git(
        self,
        process: asyncssh.SSHServerProcess[bytes],
        conn: Connection,
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
    ) -> int:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own process group: a timeout kills git and its hook
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        git_stdin = proc.stdin
        client_gone = asyncio.Event()

        async def to_git() -> None:
            try:
                while data := await process.stdin.read(CHUNK_BYTES):
                    conn.touch()
                    git_stdin.write(data)
                    await git_stdin.drain()
            except Exception:
                pass  # client gone, or git stopped reading
            finally:
                with contextlib.suppress(Exception):
                    git_stdin.close()

        async def from_git(reader: asyncio.StreamReader, writer: asyncssh.SSHWriter[bytes]) -> None:
            # Keep reading after the client is gone: git must not block on a full pipe (a
            # running deploy finishes and its push is recorded either way).
            while data := await reader.read(CHUNK_BYTES):
                conn.touch()
                if client_gone.is_set():
                    continue
                try:
                    writer.write(data)
                    await writer.drain()
                except Exception:
                    client_gone.set()

        async def watchdog() -> str:
            started = time.monotonic()
            while True:
                await asyncio.sleep(WATCHDOG_INTERVAL_SECONDS)
                now = time.monotonic()
                if now - started > self.command_max_seconds:
                    return f"the command took longer than {self.command_max_seconds} s"
                if now - conn.last_activity > self.idle_timeout:
                    return f"no data for {self.idle_timeout} s"

        pumps = [
            asyncio.create_task(from_git(proc.stdout, process.stdout)),
            asyncio.create_task(from_git(proc.stderr, process.stderr)),
        ]
        feeder = asyncio.create_task(to_git())
        guard = asyncio.create_task(watchdog())
        exited = asyncio.create_task(proc.wait())
        try:
            await asyncio.wait({exited, guard}, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                reason = guard.result()
                log.warning("killing %s: %s", argv[-2], reason)
                kill_group(proc)
                await exited
                with contextlib.suppress(Exception):
                    process.stderr.write(f"remote: gitd: stopped: {reason}\n".encode())
                return 1
            # Output git wrote before exiting still goes out, then the channel closes.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*pumps), 10)
            return exited.result()
        finally:
            if proc.returncode is None:
                kill_group(proc)
                await proc.wait()
            for task in (*pumps, feeder, guard, exited):
                task.cancel()
            await asyncio.gather(*pumps, feeder, guard, exited, return_exceptions=True)


def kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def refuse(process: asyncssh.SSHServerProcess[bytes], message: str) -> int:
    """One line on stderr, exit status 1."""
    line = message.replace("\n", " ").replace("\r", " ")
    process.stderr.write(f"remote: {line}\n".encode())
    return 1


def drop_master_key() -> None:
    """Keep only the internal-RPC key in this internet-facing process.

    Derived once from the master key when gitd was started with it; from here on neither gitd's
    settings nor its environment hold the master key (production runs gitd with
    PAASTECH_INTERNAL_KEY only: `python -m backend derive-key internal-rpc`)."""
    if not os.environ.get("PAASTECH_INTERNAL_KEY"):
        os.environ["PAASTECH_INTERNAL_KEY"] = internal_secret()
    os.environ.pop("PAASTECH_SECRET_KEY", None)
    get_settings.cache_clear()


async def serve(settings: Settings | None = None) -> None:
    drop_master_key()
    gitd = Gitd(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await gitd.start()
    try:
        await stop.wait()
        log.info("gitd stopping")
    finally:
        await gitd.close()
