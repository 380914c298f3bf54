"""The pre-receive hook ends with os._exit (a normal exit after gRPC held `git push` open for up
to seconds): its remote: lines must still all be out, and its exit status kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ZERO = "0" * 40
SHA = "1" * 40


def hook(stdin: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gitd.hook"],
        input=stdin,
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=ROOT,
        timeout=60,
    )


PUSH_ENV = {"PAASTECH_PUSH_PROJECT": "web", "PAASTECH_PUSH_CLIENT_ID": "7"}


def test_accepting_push_exits_zero_with_every_line() -> None:
    lines = "".join(f"{ZERO} {SHA} refs/heads/b{i}\n" for i in range(50))
    done = hook(lines, **PUSH_ENV)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert len(out) == 50
    assert out[-1].endswith("Stored branch b49; only main deploys")


def test_refusal_keeps_status_and_lines() -> None:
    done = hook(f"{ZERO} {SHA} refs/heads/main\n")
    assert done.returncode == 1
    assert "only accepts pushes through PaaSTech's gitd" in done.stdout


def test_two_deploy_refs_refused_with_status_one() -> None:
    text = f"{ZERO} {SHA} refs/heads/main\n{ZERO} {SHA} refs/heads/master\n"
    done = hook(text, **PUSH_ENV)
    assert done.returncode == 1
    assert "Push one deploy branch at a time" in done.stdout
    assert done.stderr == ""
