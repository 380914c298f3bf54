"""Platform memory (issue 17): each process's RSS idle, after 10 deploys and after 100.

The platform runs as `make up` runs it (tests/support/supervised.py: `python -m backend
supervise` on the Procfile, i.e. runit and every Procfile line but the web app, on free ports, a
fresh data dir, SQLite). What is counted where:

- platform: api, pomegranate, gitd, ingress (each program's whole process tree);
- supervisor: every other process of the supervisor's tree (the shell `make up` leaves in the
  foreground, runsvdir, and per program a runsv and an svlogd), the cost of running the Procfile;
- the target (< 200 MB) is on platform + supervisor;
- registry (Debian's docker-registry, a Go program) is reported on its own row, outside the
  total: it is the image store, a separate program the platform talks to. The web app (Reflex
  and bun, its own virtualenv) is not started here (it needs the frontend build; tests/e2e
  covers it) and is not in the total either.

Per process, from /proc/PID/smaps_rollup: RSS, PSS (shared pages divided among the processes
sharing them) and USS (private pages: what killing it would free). Samples: idle (every
program serving, before any request), after 10 deploys and after N (100 at
the default --duration 10; 10 x --duration, at least 20). A deploy is a new release of one
running app (the `static` fixture, 1 replica): the first and every N/4-th (5 of 100) a real
`git push` of a changed index.html through gitd, the others `setEnvVars` (a config change: a
new release without a build); each waits until its release is RUNNING. The leak check is RSS
after N / RSS after 10 (the issue's bound: within 1.10). requests/s, p50 and p99 stay empty: the
figures are in the notes (MB = 2^20 bytes). Everything is removed afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.deploy_latency import DEPLOY_TIMEOUT, POLL, Session
from bench.push_to_live import ADD_KEY, PROJECT, Git
from bench.registry import BenchmarkFailed, Options, Row, register

NAME = "platform memory"
PLATFORM = ("api", "pomegranate", "gitd", "ingress")
SUPERVISOR = ("runit",)
OUTSIDE = ("registry",)
TARGET_MB = 200
FIRST = 10
LIVE = "query($p: String!) { project(name: $p) { liveApplication { number status } } }"
SET_ENV = """mutation($p: String!, $v: String!) {
  setEnvVars(project: $p, vars: [{key: "BENCH", value: $v}]) { project { name } } }"""


@dataclass(frozen=True)
class Usage:
    """Memory of one process or a group (kB)."""

    rss: int = 0
    pss: int = 0
    uss: int = 0  # private pages
    # Shared pages of each mapped file (libpython, the extension modules): a group counts each
    # file once (its largest share in one process), not once per process as a sum of RSS does.
    files: dict[str, int] = field(default_factory=dict)
    processes: int = 0  # of the supervisor's (the programs' are one tree each)

    def __add__(self, other: Usage) -> Usage:
        files = dict(self.files)
        for path, kb in other.files.items():
            files[path] = max(kb, files.get(path, 0))
        return Usage(
            self.rss + other.rss,
            self.pss + other.pss,
            self.uss + other.uss,
            files,
            self.processes + other.processes,
        )

    @property
    def once(self) -> int:
        """Private pages plus each file's shared pages counted once: what the group costs."""
        return self.uss + sum(self.files.values())


def smaps(pid: int) -> Usage:
    """Usage of one process from /proc/PID/smaps; zero if it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return Usage()
    totals = {"Rss": 0, "Pss": 0, "Private": 0}
    files: dict[str, int] = {}
    mapping = ""
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if not (len(parts) == 2 and parts[1] == "kB"):
            if "-" in key.split(" ", 1)[0]:  # a mapping's header: range perms offset dev inode path
                head = line.split(maxsplit=5)
                inode = head[4] if len(head) > 4 else "0"
                # Anonymous shared pages (none between exec'd processes) count per process.
                mapping = head[5] if len(head) > 5 and inode != "0" else f"{pid}:anon"
            continue
        kb = int(parts[0])
        if key in ("Rss", "Pss"):
            totals[key] += kb
        elif key.startswith("Private_"):
            totals["Private"] += kb
        elif key in ("Shared_Clean", "Shared_Dirty"):
            files[mapping] = files.get(mapping, 0) + kb
    return Usage(totals["Rss"], totals["Pss"], totals["Private"], files)


def children() -> dict[int, list[int]]:
    """ppid -> pids of every process now."""
    out: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # The command name (2nd field) is in parentheses and may hold spaces.
        ppid = int(text.rpartition(")")[2].split()[1])
        out.setdefault(ppid, []).append(int(stat.parent.name))
    return out


def tree(pid: int, kids: dict[int, list[int]]) -> list[int]:
    """A process and all its descendants."""
    out = [pid]
    for child in kids.get(pid, []):
        out += tree(child, kids)
    return out


def usage(pids: list[int], **extra: int) -> Usage:
    return sum((smaps(p) for p in pids), Usage(**extra))


def sample(supervisor: int, pids: dict[str, int]) -> dict[str, Usage]:
    """Usage of each program (its process tree), and as "runit" of the supervisor's other
    processes (the supervisor's tree without the programs')."""
    kids = children()
    trees = {name: tree(pid, kids) for name, pid in pids.items()}
    out = {name: usage(members) for name, members in trees.items()}
    programs = {p for members in trees.values() for p in members}
    own = [p for p in tree(supervisor, kids) if p not in programs]
    out["runit"] = usage(own, processes=len(own))
    return out


def _mb(kb: int) -> str:
    return f"{kb / 1024:.1f}"


def memory_row(
    subject: str, samples: list[dict[str, Usage]], names: tuple[str, ...], n: int
) -> Row:
    def total(s: dict[str, Usage]) -> Usage:
        result = Usage()
        for name in names:
            result = result + s[name]
        return result

    idle, ten, last = (total(s) for s in samples)
    ratio = last.rss / ten.rss if ten.rss else float("nan")
    return Row(
        benchmark=NAME,
        subject=subject,
        requests=n,
        notes=[
            f"RSS MB idle {_mb(idle.rss)}, after {FIRST} {_mb(ten.rss)}, after {n} {_mb(last.rss)}",
            f"after {n}/after {FIRST} x{ratio:.3f}",
            f"PSS {_mb(idle.pss)}/{_mb(ten.pss)}/{_mb(last.pss)}",
            f"USS {_mb(idle.uss)}/{_mb(ten.uss)}/{_mb(last.uss)}",
            f"shared files counted once {_mb(idle.once)}/{_mb(ten.once)}/{_mb(last.once)}",
        ],
    )


def deploy_count(opts: Options) -> int:
    return max(2 * FIRST, min(100, round(10 * opts.duration)))


def by_git(number: int, total: int) -> bool:
    """The first deploy and every quarter of the run are git pushes (5 in 100)."""
    return number == 1 or number % (total // 4) == 0


async def wait_live(s: Session, project: str, number: int) -> None:
    """Poll until release `number` is the project's RUNNING live application."""
    async with asyncio.timeout(DEPLOY_TIMEOUT):
        while True:
            live = (await s.gql(LIVE, p=project))["project"]["liveApplication"]
            if live and live["number"] == number and live["status"] == "RUNNING":
                return
            if live and live["number"] > number:
                raise BenchmarkFailed(f"release {live['number']} live, expected {number}")
            await asyncio.sleep(POLL)


@register(NAME, "RSS/PSS/USS of each `make up` process idle, after 10 and after 100 deploys")
async def platform_memory(opts: Options) -> list[Row]:
    from tests.support.platform import fixture
    from tests.support.supervised import supervised

    total = deploy_count(opts)
    with tempfile.TemporaryDirectory(prefix="paastech-bench-memory-") as tmp:
        data_dir, home = Path(tmp) / "platform", Path(tmp) / "home"
        data_dir.mkdir()
        home.mkdir()
        with supervised(data_dir, health_check_timeout_seconds=60) as sup:
            states = sup.states()
            pids = {n: states[n][1] for n in sup.names}
            if not all(pids.values()):
                raise BenchmarkFailed(f"not every program runs: {states}")
            samples = [sample(sup.proc.pid, pids)]
            async with httpx.AsyncClient(timeout=60) as http:
                s = Session(sup.platform, http)
                try:
                    await s.signup()
                    git = Git(home, sup.ports["gitd"])
                    await s.gql(ADD_KEY, k=await asyncio.to_thread(git.keygen))
                    project = await s.project()
                    url = (await s.gql(PROJECT, p=project))["project"]["gitUrl"]
                    work = await asyncio.to_thread(git.workdir, fixture("static"), url)
                    page = (work / "index.html").read_text()
                    pushes = 0
                    started = time.monotonic()
                    for number in range(1, total + 1):
                        if by_git(number, total):
                            text = f"{page}<!-- {secrets.token_hex(8)} -->\n"
                            await asyncio.to_thread(git.commit, work, "index.html", text)
                            code, err = await git.push(work)
                            if code != 0 or "Application deployed" not in err:
                                raise BenchmarkFailed(f"git push {number}: {err[-500:]}")
                            pushes += 1
                        else:
                            await s.gql(SET_ENV, p=project, v=secrets.token_hex(4))
                        await wait_live(s, project, number)
                        if number in (FIRST, total):
                            samples.append(sample(sup.proc.pid, pids))
                    took = time.monotonic() - started
                    if sup.states() != states:
                        raise BenchmarkFailed(f"a program restarted: {sup.states()} vs {states}")
                finally:
                    await s.cleanup()
    rows = [memory_row(name, samples, (name,), total) for name in PLATFORM]
    plat = memory_row("platform (api+pomegranate+gitd+ingress)", samples, PLATFORM, total)
    count = samples[-1]["runit"].processes
    sup_row = memory_row(
        f"supervisor (runit: {count} processes, runsvdir, runsv and svlogd per program, sh)",
        samples,
        SUPERVISOR,
        total,
    )
    everything = memory_row("platform + supervisor", samples, (*PLATFORM, *SUPERVISOR), total)
    group = [sum((x[n] for n in (*PLATFORM, *SUPERVISOR)), Usage()) for x in samples]
    everything.notes.insert(
        0,
        f"target < {TARGET_MB} MB, after {total}: sum of RSS {group[2].rss / 1024 / TARGET_MB:.0%} "
        f"of it, shared files counted once {group[2].once / 1024 / TARGET_MB:.0%}",
    )
    everything.notes.append(
        f"{total} deploys ({pushes} git pushes, the rest setEnvVars) in {took:.0f} s"
    )
    outside = [
        memory_row(f"{name} (separate program, not in the total)", samples, (name,), total)
        for name in OUTSIDE
    ]
    return [*rows, plat, sup_row, everything, *outside]
