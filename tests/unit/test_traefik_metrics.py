"""Traefik's Prometheus metrics -> per-project request metrics (issue 18, production): the text
parsed with prometheus_client's parser, router/service names mapped back to projects, counter
increases between scrapes (and Traefik restarts), latency buckets, and the scrape into the store
the embedded ingress's reports use. Fixtures: tests/fixtures/traefik/, Traefik v3's documented
metric names (traefik_service_requests_total, traefik_service_request_duration_seconds)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from tortoise import Tortoise

from backend.db.models import Client, Project, RequestMetric
from backend.metrics import histogram
from backend.metrics import traefik as T
from backend.metrics.collector import MetricsCollector
from backend.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traefik"
NOW = datetime(2026, 12, 3, 12, 0, 3, tzinfo=UTC)


def text(n: int) -> str:
    return (FIXTURES / f"metrics-{n}.txt").read_text()


@pytest.mark.parametrize(
    ("name", "project"),
    [
        ("blog@docker", "blog"),
        ("shop-2@swarm", "shop-2"),
        ("blog-domains@file", "blog"),  # backend/routing.py's custom-domain router
        ("api@file", None),  # the platform's own routes
        ("prometheus@internal", None),
        ("blog", None),  # no provider: not one of ours
        ("Evil@docker", None),
        ("a--b@docker", None),
        ("../etc@docker", None),
        ("blog@kubernetes", None),
        ("x" * 60 + "@docker", None),
        ("", None),
    ],
)
def test_names_map_back_to_projects(name: str, project: str | None) -> None:
    assert T.project_of(name) == project


def test_first_scrape_is_the_baseline_then_increases_count() -> None:
    first, second = T.parse(text(1)), T.parse(text(2))
    assert T.windows(T.increase(None, first)) == {}
    counts = T.windows(T.increase(first, second))
    assert set(counts) == {"blog", "shop"}  # api@file, @internal, a bad name: no project's
    blog = counts["blog"]
    # The service level only: the router series (8 + 2 of the same requests) are not added.
    assert blog.requests == 24
    assert (blog.status_2xx, blog.status_4xx, blog.status_5xx) == (20, 2, 2)
    expected = [0] * histogram.BUCKETS
    expected[histogram.bucket_of(1)] = 2
    expected[histogram.bucket_of(5)] = 12
    expected[histogram.bucket_of(50)] = 8
    expected[histogram.BUCKETS - 1] = 2  # above 60 s: the overflow bucket
    assert blog.latency_buckets == expected
    assert histogram.percentile(blog.latency_buckets, 0.5) == 5
    shop = counts["shop"]
    assert (shop.requests, shop.status_2xx) == (8, 8)
    assert shop.latency_buckets[histogram.bucket_of(1000)] == 8
    # Nothing new since: nothing to store.
    assert T.windows(T.increase(second, T.parse(text(2)))) == {}


def test_a_traefik_restart_counts_from_zero() -> None:
    after_restart = T.parse(text(1))  # the counters went down: Traefik started again
    counts = T.windows(T.increase(T.parse(text(2)), after_restart))
    assert counts["blog"].requests == 12 and counts["shop"].requests == 4


def test_router_series_when_traefik_exports_no_service_labels() -> None:
    def routers_only(body: str) -> str:
        return "\n".join(
            line for line in body.splitlines() if line.startswith("#") or "_service_" not in line
        )

    counts = T.windows(T.increase(T.parse(routers_only(text(1))), T.parse(routers_only(text(2)))))
    # Both of blog's routers (its own host and its custom domains): 16 + 4.
    assert counts == {"blog": counts["blog"]}
    assert counts["blog"].requests == 20 and counts["blog"].status_2xx == 20


@pytest.mark.parametrize(
    "body",
    [
        "traefik_service_requests_total{service=blog@docker} 1\n",  # unquoted label
        'traefik_service_requests_total{service="blog@docker"} many\n',
    ],
)
def test_text_that_is_not_prometheus_format_is_refused(body: str) -> None:
    with pytest.raises(ValueError):
        T.parse(body)


def test_hostile_values_are_ignored() -> None:
    base = 'traefik_service_requests_total{code="200",service="blog@docker"} %s\n'
    for value in ("NaN", "-5", "+Inf"):
        assert T.parse(base % value).values == {}


@pytest.fixture
async def project() -> AsyncIterator[Project]:
    await Tortoise.init(
        db_url="sqlite://:memory:", modules={"models": ["backend.db.models"]}, use_tz=True
    )
    await Tortoise.generate_schemas()
    owner = await Client.create(email="t@example.com", username="traefik", password_hash="x")
    yield await Project.create(owner=owner, name="blog")
    await Tortoise.close_connections()


@pytest.fixture
async def traefik() -> AsyncIterator[tuple[str, list[str]]]:
    """A local stand-in for Traefik's metrics entry point: answers the bodies in turn."""
    bodies: list[str] = []

    async def metrics(request: web.Request) -> web.Response:
        body = bodies.pop(0)
        if body == "500":
            return web.Response(status=500, text="boom")
        return web.Response(text=body, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/metrics", bodies
    await runner.cleanup()


async def test_scrapes_land_in_the_ingress_metrics_store(
    project: Project, traefik: tuple[str, list[str]]
) -> None:
    url, bodies = traefik
    collector = MetricsCollector(None, Settings())  # type: ignore[arg-type]
    scraper = T.TraefikScraper(url, collector.record_windows, period=10)
    bodies += [text(1), "500", "not { prometheus", text(2)]
    async with httpx.AsyncClient() as http:
        assert await scraper.scrape(http, NOW) == {}  # the baseline
        with pytest.raises(httpx.HTTPStatusError):
            await scraper.scrape(http, NOW)
        with pytest.raises(ValueError):
            await scraper.scrape(http, NOW)
        found = await scraper.scrape(http, NOW)  # since the baseline, failures in between
    assert found["blog"].requests == 24
    [row] = await RequestMetric.all()  # shop is no project here: ignored like the ingress's
    assert row.project_id == project.id  # type: ignore[attr-defined]
    assert (row.requests, row.status_2xx, row.status_4xx, row.status_5xx) == (24, 20, 2, 2)
    assert row.latency_buckets[histogram.bucket_of(5)] == 12
    assert collector.request_totals[("blog", "5xx")] == 2
    assert scraper.scrapes_total == 2
