"""A project's releases: newest first, paginated, batched across projects, on both databases."""

from __future__ import annotations

from tests.conftest import Account, Server, unique

PAGE = """query($first: Int!, $offset: Int!) { projects { name applicationCount
  applications(first: $first, offset: $offset) { number status } liveApplication { number } } }"""


async def _releases(server: Server, project: str, statuses: list[str]) -> None:
    pid = (await server.db.fetch("SELECT id FROM project WHERE name = $1", project))[0][0]
    for number, status in enumerate(statuses, start=1):
        await server.db.fetch(
            "INSERT INTO application (project_id, number, cause, status, env_snapshot, replicas, domains, processes, volumes, created_at)"
            " VALUES ($1, $2, 'test', $3, '', '{}', '[]', '{}', '[]', CURRENT_TIMESTAMP)",
            pid,
            number,
            status,
        )


async def test_applications_newest_first_paginated_per_project(
    server: Server, alice: Account
) -> None:
    a, b = unique("pa"), unique("pb")
    for name in (a, b):
        await alice.api("mutation($n: String!) { createProject(name: $n) { name } }", n=name)
    await _releases(server, a, ["superseded", "superseded", "running", "failed", "building"])
    await _releases(server, b, ["failed"])

    data = await alice.api(PAGE, first=2, offset=0)
    got = {p["name"]: p for p in data["projects"]}
    assert [x["number"] for x in got[a]["applications"]] == [5, 4]
    assert got[a]["applicationCount"] == 5
    assert got[a]["liveApplication"] == {"number": 3}
    assert [x["number"] for x in got[b]["applications"]] == [1]
    assert got[b]["liveApplication"] is None

    data = await alice.api(PAGE, first=2, offset=2)
    got = {p["name"]: p for p in data["projects"]}
    assert [x["number"] for x in got[a]["applications"]] == [3, 2]
    assert got[b]["applications"] == []

    for first, offset, field in ((0, 0, "first"), (101, 0, "first"), (5, -1, "offset")):
        err = await alice.api.error(PAGE, first=first, offset=offset)
        assert (err.code, err.field) == ("VALIDATION", field)


async def test_a_failing_field_beside_batched_ones_is_a_coded_error(alice: Account) -> None:
    """`processes` fails here (no Pomegranate runs beside this API) while `liveApplication` is
    batched by one loader from two branches of the query. graphql-core cancels the failing
    field's siblings; that must not cancel the batch the other branch awaits: before the loaders
    were shielded this was a 500 (found by the PostgreSQL fuzz run)."""
    for name in (unique("pa"), unique("pb")):
        await alice.api("mutation($n: String!) { createProject(name: $n) { name } }", n=name)
    query = """{ me { projects { liveApplication { number } } }
      projects { name processes { state } liveApplication { number cause } } }"""
    for _ in range(10):
        err = await alice.api.error(query)
        assert err.code == "UNAVAILABLE", err.errors


LISTING = """query($first: Int!) { projects { ...P newest: applications(first: $first) { number } }
  me { projects { name applications(first: 1) { number } } } }
fragment P on Project { name liveApplication { number status createdAt cause }
  applications(first: 2, offset: 1) { number status createdAt finishedAt domains replicas {
    processType replicas } } }"""
ONE = """query($n: String!, $first: Int!) { project(name: $n) { name
  liveApplication { number status createdAt cause }
  applications(first: 2, offset: 1) { number status createdAt finishedAt domains replicas {
    processType replicas } }
  newest: applications(first: $first) { number } } }"""


async def test_a_listing_answers_what_each_project_answers_alone(
    server: Server, alice: Account, bob: Account
) -> None:
    """Issue 17: a project listing loads the releases its query asks (through fragments, aliases,
    literals and variables) for all projects at once, from plain rows; the answer is the one
    each project gives alone (resolved through the DataLoader), and only the caller's own."""
    a, b = unique("pa"), unique("pb")
    for name in (a, b):
        await alice.api("mutation($n: String!) { createProject(name: $n) { name } }", n=name)
    await _releases(server, a, ["superseded", "running", "failed", "building"])
    await _releases(server, b, ["crashed"])

    data = await alice.api(LISTING, first=3)
    listed = {p["name"]: p for p in data["projects"]}
    assert set(listed) == {a, b}
    for name in (a, b):
        alone = (await alice.api(ONE, n=name, first=3))["project"]
        assert listed[name] == alone
    assert [x["number"] for x in listed[a]["newest"]] == [4, 3, 2]
    assert listed[a]["liveApplication"]["number"] == 2
    assert listed[b]["liveApplication"]["status"] == "CRASHED"
    assert listed[a]["applications"][0]["replicas"] == []
    assert {p["name"]: p["applications"] for p in data["me"]["projects"]} == {
        a: [{"number": 4}],
        b: [{"number": 1}],
    }

    # Bob, a second Client, lists his own projects only: none of Alice's releases appear.
    mine = unique("pc")
    await bob.api("mutation($n: String!) { createProject(name: $n) { name } }", n=mine)
    theirs = await bob.api(LISTING, first=3)
    assert [p["name"] for p in theirs["projects"]] == [mine]
    assert theirs["projects"][0]["newest"] == []
    assert theirs["projects"][0]["liveApplication"] is None
    assert [p["name"] for p in theirs["me"]["projects"]] == [mine]
