"""Issue 17: a project listing reads only the columns of `application` its query selects
(backend/api/release_columns.py). Every field of Application, asked alone of a listing (so the
narrowest read), answers what the same release answers through `application(...)`, which
builds the full model; on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from graphql import GraphQLObjectType, get_named_type

from backend import security
from backend.api.schema import build_schema
from backend.settings import Settings
from tests.conftest import Account, Server, unique

SECRET_KEY = "test-secret-key-0123456789"  # tests/support/servers.py's, to seal env snapshots


def _selections() -> dict[str, str]:
    """Each field of Application with what to select of it (every leaf of an object field)."""
    schema = build_schema(Settings(secret_key="unit"))._schema
    application = schema.type_map["Application"]
    assert isinstance(application, GraphQLObjectType)
    out = {}
    for name, field in application.fields.items():
        inner = get_named_type(field.type)
        page = "(first: 2)" if "first" in field.args else ""  # within the query cost budget
        if isinstance(inner, GraphQLObjectType):
            out[name] = f"{name}{page} {{ {' '.join(inner.fields)} }}"
        else:
            out[name] = name
    return out


async def _release(server: Server, pid: int, number: int, **values: object) -> None:
    row = {
        "cause": "push 1a2b3c",
        "status": "superseded",
        "env_snapshot": "",
        "replicas": "{}",
        "domains": "[]",
        **values,
    }
    columns = ["project_id", "number", *row, "processes", "volumes", "created_at"]
    marks = ", ".join(f"${i}" for i in range(1, len(row) + 3))
    await server.db.fetch(
        f"INSERT INTO application ({', '.join(columns)}) VALUES ({marks}, '{{}}', '[]', "
        "CURRENT_TIMESTAMP)",
        pid,
        number,
        *row.values(),
    )


async def test_every_field_of_a_listed_release_is_the_models(
    server: Server, alice: Account
) -> None:
    name = unique("pr")
    await alice.api("mutation($n: String!) { createProject(name: $n) { name } }", n=name)
    pid = (await server.db.fetch("SELECT id FROM project WHERE name = $1", name))[0][0]
    env = security.env_cipher(SECRET_KEY).encrypt(json.dumps({"B": "2", "A": "1"}).encode())
    await _release(server, pid, 1, status="failed", failure_reason="build failed: exit 2")
    await _release(
        server,
        pid,
        2,
        status="running",
        commit_sha="a" * 40,
        image="paastech/app:v2",
        image_digest="sha256:" + "b" * 64,
        env_snapshot=env.decode(),
        replicas='{"worker": 1, "web": 2}',
        domains='["www.example.com", "api.example.com"]',
    )
    await _release(server, pid, 3, status="building", replicas='{"web": 0}')
    await server.db.fetch(
        "UPDATE application SET finished_at = CURRENT_TIMESTAMP WHERE number < 3"
        " AND project_id = $1",
        pid,
    )
    one = "query($p: String!, $n: Int!) {{ application(project: $p, number: $n) {{ number {} }} }}"
    for field, selection in _selections().items():
        listed = await alice.api(
            f"{{ projects {{ name applications {{ number {selection} }}"
            f" liveApplication {{ number {selection} }} }} }}"
        )
        (project,) = listed["projects"]
        assert [a["number"] for a in project["applications"]] == [3, 2, 1], field
        for release in project["applications"]:
            alone = await alice.api(one.format(selection), p=name, n=release["number"])
            assert release == alone["application"], field
        assert project["liveApplication"] == project["applications"][1], field
    # Project.state is loaded with the live release in one batch: the same as alone.
    listed = await alice.api("{ projects { state liveApplication { number } } }")
    alone = await alice.api("query($p: String!) { project(name: $p) { state } }", p=name)
    assert listed["projects"][0]["state"] == alone["project"]["state"] == "RUNNING"
    assert listed["projects"][0]["liveApplication"] == {"number": 2}
    # The values are not all empty: the comparison above saw real ones.
    full = await alice.api(one.format(" ".join(_selections().values())), p=name, n=2)
    live = full["application"]
    assert live["envKeys"] == ["A", "B"] and live["domains"][0] == "www.example.com"
    assert live["replicas"] == [
        {"processType": "web", "replicas": 2},
        {"processType": "worker", "replicas": 1},
    ]
    assert live["state"] == "RUNNING" and live["imageDigest"].startswith("sha256:")
