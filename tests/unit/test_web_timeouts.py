"""How long the web app waits for the API, and what it says when the API takes longer.

gql cuts a request at 10 s unless told otherwise: a busy API creating an add-on (which answers
once the server runs) was shown as "not reachable" while it carried the change out."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "frontend"))
from paastech_web import api  # noqa: E402  (the web app is not installed here)


async def _silent_server() -> tuple[asyncio.Server, str]:
    """Accepts, reads the request and never answers."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.Event().wait()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/graphql"


async def test_a_request_past_its_time_says_it_may_still_be_under_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, url = await _silent_server()
    monkeypatch.setenv("PAASTECH_API_URL", url)
    monkeypatch.setattr(api, "REQUEST_TIMEOUT", 0.3)
    try:
        with pytest.raises(api.ApiError) as caught:
            await api.call("Projects", "token")
    finally:
        server.close()
    assert caught.value.code == "TIMEOUT"
    assert "did not answer within 0.3 s" in caught.value.message
    assert "may still be under way" in caught.value.message


async def test_gqls_own_ten_seconds_never_cut_a_request(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float | None] = []

    class Recording(api.Client):  # type: ignore[misc, name-defined]
        def __init__(self, *args: object, **kwargs: object) -> None:
            seen.append(kwargs.get("execute_timeout"))  # type: ignore[arg-type]
            super().__init__(*args, **kwargs)

    server, url = await _silent_server()
    monkeypatch.setenv("PAASTECH_API_URL", url)
    monkeypatch.setattr(api, "Client", Recording)
    monkeypatch.setattr(api, "LONG_REQUEST_TIMEOUT", 0.2)
    try:
        with pytest.raises(api.ApiError):
            await api.call("CreateAddon", "token", p="x", k="redis", plan=None)
    finally:
        server.close()
    assert seen == [0.2]


def test_add_on_operations_wait_longer_than_the_server_start() -> None:
    from backend.pomegranate.addons import READY_TIMEOUT

    for name in api.LONG_OPERATIONS:
        assert (api.OPERATIONS_DIR / f"{name}.graphql").is_file(), name
        assert api.request_timeout(name) > READY_TIMEOUT
    assert api.request_timeout("Projects") >= 60
