"""Commands in an add-on's server container, on whichever engine runs it (issue 15, 16): the
platform host's (DockerAddons) or a Swarm node's (SwarmAddons, through that node's engine).

The backup and restore formats live here, once: PostgreSQL ``pg_dump -Fc`` of the app database,
restored with ``pg_restore`` in one transaction; Redis an RDB snapshot (``redis-cli --rdb``),
restored by copying it to ``restore.rdb`` in the data directory, which the image's entrypoint
loads at the server's next start (the caller restarts the server).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import AsyncIterator

import aiodocker

DATA_DIR = "/var/lib/paastech/data"
RESTORE_FILE = "/tmp/paastech-restore"


class ExecFailed(Exception):
    """A backup or restore command failed; the message is for the user."""


async def exec_stream(
    docker: aiodocker.Docker, container_id: str, command: list[str], exit_code: list[int]
) -> AsyncIterator[tuple[int, bytes]]:
    """(1 stdout / 2 stderr, bytes) chunks of ``command`` run in the container (as its user);
    its exit code is appended to ``exit_code`` once the output ended."""
    container = docker.containers.container(container_id)
    execution = await container.exec(command, stdout=True, stderr=True, stdin=False)
    async with execution.start(detach=False) as stream:
        while True:
            message = await stream.read_out()
            if message is None:
                break
            yield message.stream, message.data
    exit_code.append(int((await execution.inspect()).get("ExitCode") or 0))


async def exec_command(
    docker: aiodocker.Docker, container_id: str, command: list[str], *, limit: int = 64 * 1024
) -> tuple[int, bytes, bytes]:
    """Run ``command`` in the container; exit code, and at most ``limit`` bytes of stdout and
    of stderr."""
    out, err = bytearray(), bytearray()
    exit_code: list[int] = []
    async for stream, data in exec_stream(docker, container_id, command, exit_code):
        target = out if stream == 1 else err
        if len(target) < limit:
            target.extend(data[: limit - len(target)])
    return exit_code[0], bytes(out), bytes(err)


def backup_command(kind: str) -> list[str]:
    if kind == "postgres":
        return ["pg_dump", "-Fc", "--no-owner", "-d", "app"]
    return [
        "sh",
        "-c",
        'f=$(mktemp) && redis-cli --rdb "$f" >/dev/null && cat "$f"; s=$?; rm -f "$f"; exit $s',
    ]


def restore_command(kind: str) -> list[str]:
    if kind == "postgres":
        return [
            "sh",
            "-c",
            "pg_restore --clean --if-exists --no-owner --role=app -d app "
            f"--single-transaction {RESTORE_FILE}; s=$?; rm -f {RESTORE_FILE}; exit $s",
        ]
    return [
        "sh",
        "-c",
        f"cp {RESTORE_FILE} {DATA_DIR}/restore.rdb; s=$?; rm -f {RESTORE_FILE}; exit $s",
    ]


async def backup_chunks(
    docker: aiodocker.Docker, container_id: str, name: str, kind: str
) -> AsyncIterator[bytes]:
    """The add-on's data as a backup file, in chunks; ExecFailed when the command fails."""
    errors = bytearray()
    exit_code: list[int] = []
    async for stream, data in exec_stream(docker, container_id, backup_command(kind), exit_code):
        if stream == 1:
            yield data
        elif len(errors) < 4096:
            errors.extend(data)
    if exit_code[0] != 0:
        raise ExecFailed(
            f"backup of {name} failed: {errors.decode(errors='replace').strip()[:500]}"
        )


async def restore_data(
    docker: aiodocker.Docker, container_id: str, name: str, kind: str, data: bytes
) -> None:
    """Copy the backup into the container and load it (PostgreSQL), or stage it for the next
    start (Redis); ExecFailed when that fails (PostgreSQL's data is then unchanged)."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        member = tarfile.TarInfo(RESTORE_FILE.rsplit("/", 1)[1])
        member.size = len(data)
        member.mode = 0o644
        tar.addfile(member, io.BytesIO(data))
    container = docker.containers.container(container_id)
    # aiodocker leaves put_archive unannotated.
    await container.put_archive("/tmp", archive.getvalue())  # type: ignore[no-untyped-call]
    code, _out, err = await exec_command(docker, container_id, restore_command(kind))
    if code != 0:
        raise ExecFailed(f"restore of {name} failed: {err.decode(errors='replace').strip()[:500]}")
