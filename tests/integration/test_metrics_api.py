"""The metrics API (issue 18) on both databases: stored rows read back per range, bad ranges and
callers refused, the operators' /metrics closed when no operator token is set. The sampling
itself, against a real engine: test_metrics_platform.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx

from backend.metrics import histogram
from tests.conftest import Account, Server, unique

QUERY = """query($p: String!, $r: String!) { metrics(project: $p, range: $r) {
  project range resolutionSeconds
  processes { process points { at replicas cpuCores memoryBytes memoryLimitBytes restarts } }
  requests { at requests perSecond status2xx status5xx p50Ms p95Ms p99Ms } } }"""


async def _project(server: Server, alice: Account) -> tuple[str, int]:
    name = unique("met")
    await alice.api("mutation($p: String!) { createProject(name: $p) { name } }", p=name)
    rows = await server.db.fetch("SELECT id FROM project WHERE name = $1", name)
    return name, int(rows[0][0])


async def test_stored_points_are_served_by_range(server: Server, alice: Account) -> None:
    name, pid = await _project(server, alice)
    at = (datetime.now(UTC) - timedelta(minutes=2)).replace(second=0, microsecond=0)
    old = at - timedelta(days=3)
    for resolution, when, memory in ((10, at, 300 * 2**20), (300, old, 7)):
        await server.db.fetch(
            "INSERT INTO process_metric (project_id, process, resolution, at, replicas, "
            "cpu_cores, memory_bytes, memory_limit_bytes, net_rx_bytes_per_second, "
            "net_tx_bytes_per_second, restarts) VALUES ($1, 'web', $2, $3, 2, 0.75, $4, $5, "
            "0, 0, 1)",
            pid,
            resolution,
            when,
            memory,
            512 * 2**20,
        )
    buckets = [0] * histogram.BUCKETS
    buckets[histogram.bucket_of(4)] = 90
    buckets[histogram.bucket_of(700)] = 10
    await server.db.fetch(
        "INSERT INTO request_metric (project_id, resolution, at, requests, status_1xx, "
        "status_2xx, status_3xx, status_4xx, status_5xx, latency_buckets) "
        "VALUES ($1, 10, $2, 100, 0, 95, 0, 0, 5, $3)",
        pid,
        at,
        json.dumps(buckets),
    )

    fine = (await alice.api(QUERY, p=name, r="1h"))["metrics"]
    assert fine["resolutionSeconds"] == 10 and fine["project"] == name
    [web] = fine["processes"]
    assert web["process"] == "web"
    [point] = web["points"]
    assert point["memoryBytes"] == 300 * 2**20 and point["memoryLimitBytes"] == 512 * 2**20
    assert (point["replicas"], point["cpuCores"], point["restarts"]) == (2, 0.75, 1)
    [req] = fine["requests"]
    assert (req["requests"], req["perSecond"], req["status5xx"]) == (100, 10.0, 5)
    assert (req["p50Ms"], req["p95Ms"], req["p99Ms"]) == (5.0, 1000.0, 1000.0)

    coarse = (await alice.api(QUERY, p=name, r="7d"))["metrics"]
    assert coarse["resolutionSeconds"] == 300
    assert [p["memoryBytes"] for p in coarse["processes"][0]["points"]] == [7]
    assert coarse["requests"] == []

    # The project's rows go with it.
    await alice.api("mutation($p: String!) { deleteProject(name: $p) { name } }", p=name)
    left = await server.db.fetch("SELECT count(*) FROM process_metric WHERE project_id = $1", pid)
    assert left[0][0] == 0


async def test_bad_range_and_callers_are_refused(server: Server, alice: Account) -> None:
    name, _ = await _project(server, alice)
    for bad in ("2y", "", "1h; DROP TABLE process_metric", "x" * 500):
        err = await alice.api.error(QUERY, p=name, r=bad)
        assert (err.code, err.field) == ("VALIDATION", "range"), err.errors
    err = await alice.api.error(QUERY, p="no-such-project", r="1h")
    assert err.code == "NOT_FOUND"
    err = await alice.api.with_token(None).error(QUERY, p=name, r="1h")
    assert err.code == "UNAUTHENTICATED"


async def test_operator_metrics_are_closed_without_a_token_setting(server: Server) -> None:
    url = server.url.replace("/graphql", "/metrics")
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(url)).status_code == 401
        anything = await http.get(url, headers={"Authorization": "Basic b3A6b3A="})
        assert anything.status_code == 401
        guessed = await http.get(url, headers={"Authorization": "Bearer x"})
        assert guessed.status_code == 401 and "paastech_" not in guessed.text


WEBHOOKS = """query($p: String!) { webhooks(project: $p) { id url deliveries { event ok } } }"""
ADD = "mutation($p: String!, $u: String!) { addWebhook(project: $p, url: $u) { id url } }"


async def test_webhooks_are_validated_listed_and_removed(server: Server, alice: Account) -> None:
    name, _ = await _project(server, alice)
    for bad in ("ftp://x.example.com/", "not a url", "https://u:p@example.com/", ""):
        err = await alice.api.error(ADD, p=name, u=bad)
        assert (err.code, err.field) == ("VALIDATION", "url"), err.errors
    hook = (await alice.api(ADD, p=name, u="https://hooks.example.com/t"))["addWebhook"]
    err = await alice.api.error(ADD, p=name, u="https://hooks.example.com/t")
    assert (err.code, err.field) == ("CONFLICT", "url")
    listed = (await alice.api(WEBHOOKS, p=name))["webhooks"]
    assert listed == [{"id": hook["id"], "url": hook["url"], "deliveries": []}]
    err = await alice.api.error(
        "query($p: String!) { webhooks(project: $p) { deliveries(first: 0) { ok } } }", p=name
    )
    assert (err.code, err.field) == ("VALIDATION", "first")
    remove = "mutation($p: String!, $id: ID!) { removeWebhook(project: $p, id: $id) { id } }"
    err = await alice.api.error(remove, p=name, id="999999")
    assert (err.code, err.field) == ("NOT_FOUND", "id")
    await alice.api(remove, p=name, id=hook["id"])
    assert (await alice.api(WEBHOOKS, p=name))["webhooks"] == []
