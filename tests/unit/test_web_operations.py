"""The web app's GraphQL: every operation it sends is a file in frontend/paastech_web/operations,
valid against schema.graphql with the fragments it spreads (operations/fragments), and every file
is sent; and the pure rules of what the project page
shows (idle when scaled to 0, what a rollback reverts, the commit shown once)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from graphql import (
    FragmentDefinitionNode,
    OperationDefinitionNode,
    build_schema,
    parse,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "frontend" / "paastech_web"
OPERATIONS = WEB / "operations"
SCHEMA = build_schema((ROOT / "schema.graphql").read_text())
FILES = sorted(OPERATIONS.glob("*.graphql"))
FRAGMENT_FILES = sorted((OPERATIONS / "fragments").glob("*.graphql"))

sys.path.insert(0, str(ROOT / "frontend"))
from paastech_web import api, project_model, status  # noqa: E402  (the web app is not installed here)

# Where the code names an operation: Session.request / api.call (name first), forms.run (third,
# after the state and the section), Subscriptions.start (second, after the key), and the
# project page's _lifecycle helper (second, after the action).
USES = (
    r'(?:request|api\.call)\(\s*"([A-Za-z]+)"',
    r'forms\.run\(\s*self,\s*[^,]+,\s*"([A-Za-z]+)"',
    r'subs\.start\(\s*[^,]+,\s*"([A-Za-z]+)"',
    r'_lifecycle\(\s*"[^"]+",\s*"([A-Za-z]+)"',
)


def test_there_are_operations() -> None:
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_operation_is_valid_against_the_schema(path: Path) -> None:
    # What api.call and api.subscriptions send: the file and the fragments it spreads.
    document = parse(api.operation(path.stem))
    errors = validate(SCHEMA, document)
    assert errors == [], [e.message for e in errors]
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert len(operations) == 1, "one operation per file"
    assert operations[0].name is not None and operations[0].name.value == path.stem


def test_fragments_one_per_file_named_after_it_and_each_used() -> None:
    assert FRAGMENT_FILES, "Metrics and MetricsLive share their selections as fragments"
    spread = {f for p in FILES for f in api.spread_fragments(p.read_text())}
    for path in FRAGMENT_FILES:
        definitions = parse(path.read_text()).definitions
        assert len(definitions) == 1 and isinstance(definitions[0], FragmentDefinitionNode), path
        assert definitions[0].name.value == path.stem
        assert path.stem in spread, f"{path.stem} is spread by no operation"
    # The metrics query and its live subscription select the same fields, from one place.
    for name in ("Metrics", "MetricsLive"):
        assert {"ProcessSeriesFields", "RequestPointFields"} <= set(
            api.spread_fragments(api.operation(name))
        )


def test_fragment_spreads_found_and_inline_fragments_left_alone() -> None:
    text = "query Q { a { ...One ... on B { c } ...  Two ...One } }"
    assert api.SPREAD.findall(text) == ["One", "Two", "One"]
    # A spread of a fragment that has no file is an error at once, not a request the API refuses.
    with pytest.raises(FileNotFoundError):
        api.spread_fragments("query Q { a { ...NoSuchFragment } }")


def test_a_broken_operation_is_caught() -> None:
    errors = validate(SCHEMA, parse("query Broken { project(name: 1) { noSuchField } }"))
    assert errors


def used_operations() -> set[str]:
    source = "\n".join(p.read_text() for p in WEB.rglob("*.py"))
    return {name for pattern in USES for name in re.findall(pattern, source)}


def test_every_operation_the_code_sends_has_a_file_and_every_file_is_used() -> None:
    names = {p.stem for p in FILES}
    used = used_operations()
    assert used, "no operations found in frontend/"
    assert used <= names, used - names
    assert names <= used, names - used


def test_no_inline_graphql_in_the_web_app() -> None:
    for path in WEB.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"""["'](?:query|mutation|subscription)\s*[\s({$]""", text), path
        assert not re.search(r'"""\s*\{\s*\w+\s*[({]', text), path


def test_scaled_to_zero_reads_idle_never_running() -> None:
    zero = [{"processType": "web", "replicas": 0}, {"processType": "worker", "replicas": 0}]
    one = [{"processType": "web", "replicas": 0}, {"processType": "worker", "replicas": 1}]
    assert status.shown_status("RUNNING", zero) == "IDLE"
    assert status.shown_status("RUNNING", one) == "RUNNING"
    assert status.shown_status("RUNNING", []) == "RUNNING"  # before the first release
    assert status.shown_status("FAILED", zero) == "FAILED"


def test_rollback_names_the_env_vars_it_reverts() -> None:
    text = project_model.env_reverts(["A", "OLD"], ["A", "GREETING"], 4)
    assert "Removed: GREETING." in text
    assert "Restored: OLD." in text
    assert "v4" in text
    same = project_model.env_reverts(["A"], ["A"], 2)
    assert "Removed" not in same and "Same env var names" in same


def app(number: int, status_: str, cause: str = "push", sha: str = "") -> dict:
    return {
        "number": number,
        "status": status_,
        "cause": cause,
        "commitSha": sha,
        "createdAt": "2026-12-03T10:00:00Z",
        "failureReason": None,
        "image": "img",
        "envKeys": ["A"],
    }


def test_release_rows_live_failed_and_the_commit_once() -> None:
    live = project_model.release_row(app(3, "RUNNING", sha="abcdef1234567"), 3, ["A"])
    assert live.live and not live.failed and live.commit == "abcdef1234"
    # The old live release going SUPERSEDED is not "live" any more, even before a refetch.
    old = project_model.release_row(app(3, "SUPERSEDED"), 3, ["A"])
    assert not old.live
    failed = project_model.release_row(app(2, "FAILED"), 3, ["A"])
    assert failed.failed and not failed.live
    once = project_model.release_row(app(4, "QUEUED", "push abcdef1", "abcdef1234567"), 3, [])
    assert once.commit == "" and "abcdef1" in once.cause


def test_numbers_from_forms() -> None:
    assert project_model.whole(" 12 ") == 12
    assert project_model.whole("1.5") is None
    assert project_model.whole("") is None
