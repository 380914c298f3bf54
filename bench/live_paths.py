"""Live paths (issue 17): how long a line takes from the process that writes it to the screen.

One platform with gitd (bench/push_to_live.py's `pushing_platform`: Pomegranate, the API, the
embedded ingress and gitd as subprocesses, fresh data dir, SQLite). The writer puts its own
wall-clock time in each line (`stamp <time.time()>`); the reader notes the time it read the line;
the sample is the difference (same machine, same clock: containers read the host's clock).

- app log -> `paastech logs -f`: the `ticker` fixture (tests/fixtures/apps/ticker, a line every
  100 ms) with the time added to each line, deployed by push(); `python -m cli.main logs -f -n 0
  -p <project>` as a subprocess (PAASTECH_TOKEN, PYTHONUNBUFFERED as on a terminal, which is
  line-buffered), its stdout read as it comes, for --duration seconds from 1 s after its
  first line.
  The path: container stdout -> the engine's log stream -> Pomegranate's RuntimeLogs -> the API
  -> the CLI's subscription.
- build output -> `remote:` line: the `dockerfile` fixture with a `RUN` that prints 30 stamps,
  100 ms apart (a random comment in it defeats the layer cache), pushed with `git push` (the real
  OpenSSH client and git); git's stderr read as it comes, lines split on CR and LF. The path:
  the builder -> Pomegranate's Build stream -> the API's build log -> gitd -> ssh -> git.
  3 pushes at --duration 10 (bench/deploy_latency.py's `repetitions`).

p50 and p99 of the samples (ms); the target is p99 < 200 ms. No baseline (there is no simpler
way to get the same line to the same place): the ratio column is empty. Checks: every deploy
succeeds, every stamp line is read (none lost), at least 10 samples per row. The projects,
their containers and images, the processes and the temporary directory are removed after.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.deploy_latency import repetitions
from bench.push_to_live import PROJECT, Git, pushing_platform
from bench.registry import BenchmarkFailed, Options, Row, register

LOGS = "live path: app log -> paastech logs -f"
BUILD = "live path: build output -> git push remote:"
TARGET_MS = 200.0
STAMP = re.compile(r"stamp (\d+\.\d+)")
BUILD_STAMPS = 30
ROOT = Path(__file__).resolve().parent.parent
SETTLE_SECONDS = 1.0
FIRST_LINE_SECONDS = 60.0


def stamped_ticker(source: str) -> str:
    """The ticker fixture's app.py printing its clock in each tick."""
    old = 'print(f"tick {n}", flush=True)'
    if old not in source:
        raise BenchmarkFailed("the ticker fixture no longer prints `tick N`: update the bench")
    return source.replace(old, 'print(f"tick {n} stamp {time.time():.6f}", flush=True)')


def stamped_dockerfile(token: str) -> str:
    program = (
        "import time; [(print('stamp %.6f' % time.time(), flush=True), time.sleep(0.1)) "
        f"for _ in range({BUILD_STAMPS})]"
    )
    return (
        "FROM paastech/python:bookworm\n"
        "WORKDIR /app\n"
        f'RUN python3 -u -c "{program}"  # {token}\n'
        "COPY app.py /app/app.py\n"
        "ENV PORT=5000\n"
        "EXPOSE 5000\n"
        'CMD ["python3", "app.py"]\n'
    )


def latencies(lines: list[tuple[str, float]]) -> list[float]:
    """ms from each stamp to when its line was read."""
    found = []
    for text, read_at in lines:
        if match := STAMP.search(text):
            found.append((read_at - float(match.group(1))) * 1000)
    return found


def row(benchmark: str, subject: str, samples: list[float], notes: list[str]) -> Row:
    if len(samples) < 10:
        raise BenchmarkFailed(f"{benchmark}: only {len(samples)} samples")
    p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
    verdict = "met" if p99 < TARGET_MS else "missed"
    return Row(
        benchmark=benchmark,
        subject=subject,
        p50_ms=statistics.median(samples),
        p99_ms=p99,
        requests=len(samples),
        notes=[f"{len(samples)} lines; target p99 < {TARGET_MS:.0f} ms: {verdict}", *notes],
    )


async def read_lines(
    stream: asyncio.StreamReader, out: list[tuple[str, float]], *, split_cr: bool = False
) -> None:
    """Every line of ``stream`` with the time it was read, until EOF."""
    pending = b""
    while chunk := await stream.read(4096):
        now = time.time()
        pending += chunk
        *whole, pending = re.split(rb"\r|\n" if split_cr else rb"\n", pending)
        out.extend((line.decode(errors="replace"), now) for line in whole)
    if pending:
        out.append((pending.decode(errors="replace"), time.time()))


async def follow_logs(api_url: str, token: str, project: str, seconds: float) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAASTECH_", "XDG_"))}
    env.update(
        PAASTECH_API_URL=api_url,
        PAASTECH_TOKEN=token,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
    )
    with tempfile.TemporaryDirectory(prefix="paastech-bench-cli-") as home:
        env.update(HOME=home, XDG_CONFIG_HOME=home)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli.main",
            "logs",
            "-f",
            "-n",
            "0",
            "-p",
            project,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        lines: list[tuple[str, float]] = []
        assert proc.stdout is not None and proc.stderr is not None
        reader = asyncio.create_task(read_lines(proc.stdout, lines))
        try:
            # The CLI's start-up and subscription (seconds on a loaded machine): measure from
            # the first stamped line on, plus a settle second.
            async with asyncio.timeout(FIRST_LINE_SECONDS):
                while not latencies(lines):
                    if proc.returncode is not None:
                        err = (await proc.stderr.read()).decode(errors="replace")
                        raise BenchmarkFailed(f"paastech logs -f exited: {err[-300:]}")
                    await asyncio.sleep(0.05)
            await asyncio.sleep(SETTLE_SECONDS)
            settled = len(lines)
            await asyncio.sleep(seconds)
            measured = lines[settled:]
        finally:
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    ticks = [int(m.group(1)) for text, _ in measured if (m := re.search(r"tick (\d+)", text))]
    if ticks and ticks != list(range(ticks[0], ticks[0] + len(ticks))):
        raise BenchmarkFailed("paastech logs -f lost or reordered lines")
    return latencies(measured)


async def push_build(git: Git, work: Path) -> list[float]:
    await asyncio.to_thread(
        git.commit, work, "Dockerfile", stamped_dockerfile(secrets.token_hex(8))
    )
    proc = await asyncio.create_subprocess_exec(
        "git",
        "push",
        "paastech",
        "main",
        cwd=work,
        env=git.env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines: list[tuple[str, float]] = []
    try:
        async with asyncio.timeout(300):
            await read_lines(proc.stderr, lines, split_cr=True)
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = "\n".join(line for line, _ in lines)
    if code != 0 or "=====> Application deployed" not in text:
        raise BenchmarkFailed(f"git push exited {code}: {text[-400:]}")
    found = latencies([(line, at) for line, at in lines if line.startswith("remote:")])
    if len(found) != BUILD_STAMPS:
        raise BenchmarkFailed(f"{len(found)} of {BUILD_STAMPS} build stamps reached git push")
    return found


@register(LOGS, "app writes a line -> `paastech logs -f` prints it; build step -> `remote:`")
async def live_paths(opts: Options) -> list[Row]:
    from tests.support.platform import fixture, push, tar_dir

    with tempfile.TemporaryDirectory(prefix="paastech-bench-live-") as tmp:
        async with pushing_platform(Path(tmp)) as (s, git):
            ticker = await s.project()
            app = stamped_ticker((fixture("ticker") / "app.py").read_text())
            outcome = await push(
                s.plat, s.client_id, ticker, tar_dir(fixture("ticker"), {"app.py": app})
            )
            if not outcome.ok:
                raise BenchmarkFailed(f"ticker deploy failed: {outcome.reason}")
            log_samples = await follow_logs(s.plat.api_url, s.token, ticker, opts.duration)

            builder = await s.project()
            url = (await s.gql(PROJECT, p=builder))["project"]["gitUrl"]
            work = await asyncio.to_thread(git.workdir, fixture("dockerfile"), url)
            build_samples: list[float] = []
            for _ in range(repetitions(opts)):
                build_samples.extend(await push_build(git, work))
    return [
        row(
            LOGS,
            "ticker line -> paastech logs -f stdout",
            log_samples,
            ["container stdout -> engine -> Pomegranate -> API -> CLI"],
        ),
        row(
            BUILD,
            "RUN output -> git push stderr remote:",
            build_samples,
            ["builder -> Pomegranate -> API build log -> gitd -> ssh -> git"],
        ),
    ]
