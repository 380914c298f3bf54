"""The committed gRPC stubs are exactly what scripts/gen-protos.sh makes from the .proto files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_stubs_match_protos(tmp_path: Path) -> None:
    subprocess.run(
        [str(ROOT / "scripts/gen-protos.sh"), str(tmp_path)],
        cwd=ROOT,
        check=True,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
    )
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2*"))
    assert generated, "protoc produced nothing"
    for rel in generated:
        committed = ROOT / rel
        assert committed.exists(), f"{rel} is not committed: run `make protos`"
        assert committed.read_text() == (tmp_path / rel).read_text(), (
            f"{rel} is stale: run `make protos`"
        )
