"""A private PostgreSQL cluster for tests that stop and start one (the shared server of
scripts/postgres.sh is never touched): Debian's initdb/pg_ctl, run as the postgres user, on a
free port, in a directory removed afterwards."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_port


def pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not versions:
        raise RuntimeError("PostgreSQL is not installed: run scripts/postgres.sh (make test-deps)")
    return versions[-1]


def _as_postgres(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@dataclass
class PrivatePostgres:
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgres://paastech@127.0.0.1:{self.port}/paastech"

    def start(self) -> None:
        _as_postgres(
            pg_bin() / "pg_ctl",
            "-D",
            self.root / "data",
            "-l",
            self.root / "server.log",
            "-w",
            "-t",
            "60",
            "start",
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}",
        )

    def stop(self, mode: str = "fast") -> None:
        _as_postgres(pg_bin() / "pg_ctl", "-D", self.root / "data", "-m", mode, "-w", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    root = Path(tempfile.mkdtemp(prefix="pt-pg-", dir="/tmp"))
    shutil.chown(root, "postgres", "postgres")
    pg = PrivatePostgres(root, free_port())
    _as_postgres(
        pg_bin() / "initdb", "-D", root / "data", "-U", "paastech", "--auth=trust", "-E", "UTF8"
    )
    try:
        pg.start()
        _as_postgres(
            pg_bin() / "createdb", "-h", root, "-p", str(pg.port), "-U", "paastech", "paastech"
        )
        yield pg
    finally:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(pg_bin() / "pg_ctl"),
                "-D",
                str(root / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
