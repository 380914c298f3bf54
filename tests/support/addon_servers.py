"""Add-on servers (issue 15) as the Docker-level tests reach them: a Client with a project to
attach them to, createAddon asked with the patience a first PostgreSQL start needs, and their
containers found by the label."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Sequence

import httpx

from tests.conftest import PASSWORD
from tests.support.gqlclient import SIGNUP, Api

CREATE = "mutation($p: String!, $k: String!) { createAddon(project: $p, kind: $k) { name } }"


async def owner_with_project(api_url: str, prefix: str) -> tuple[Api, str]:
    """A new Client (its API client) and an empty project of its, named ``prefix-<hex>``."""
    name = f"u{secrets.token_hex(4)}"
    data = await Api(api_url)(SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD)
    api = Api(api_url, data["signup"]["token"])
    project = f"{prefix}-{secrets.token_hex(4)}"
    await api("mutation($n: String!) { createProject(name: $n) { name } }", n=project)
    return api, project


def addon_containers(
    addon: str, docker: Sequence[str] = ("docker",), *, running: bool = False
) -> list[str]:
    """Ids of the add-on's containers (every one, or the running ones), by its label."""
    listing = ["ps", "-q"] if running else ["ps", "-aq"]
    return subprocess.run(
        [*docker, *listing, "--filter", f"label=paastech.addon={addon}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()


async def create_addon(api: Api, project: str, kind: str) -> str:
    """createAddon answers once the server runs: a first PostgreSQL start (initdb) on a loaded
    machine takes longer than the test client's 30 s."""
    async with httpx.AsyncClient(timeout=300) as http:
        response = await http.post(
            api.url,
            json={"query": CREATE, "variables": {"p": project, "k": kind}},
            headers={"Authorization": f"Bearer {api.token}"},
        )
    body = response.json()
    assert "errors" not in body, body
    return str(body["data"]["createAddon"]["name"])
