"""Persistent volumes (issue 15) against the whole platform with real Docker and one git push: the
app (non-root) writes into its volume, and the file outlives a restart, a rollback and
a scale; replicas share it; bad inputs and quota refusals change nothing; a second Client can
neither see, remove nor reach the volume; removing it and deleting the project remove the data."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from tests.cli.conftest import Cli, new_cli
from tests.cli.test_docker import developer, push, releases, workdir
from tests.support.gqlclient import Api
from tests.support.platform import Platform, cleanup_project, docker_inspect, gitd_process, platform
from tests.support.servers import admin_quota, reserved_port

# Each test makes up to three releases: on a loaded machine that takes longer than the default.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

GITD_PORT = reserved_port()
T = TypeVar("T")
ADD = """mutation($p: String!, $path: String!, $types: [String!], $name: String) {
  addVolume(project: $p, mountPath: $path, processTypes: $types, name: $name) { project { name } }
}"""
REMOVE = """mutation($p: String!, $name: String!, $confirm: String!) {
  removeVolume(project: $p, name: $name, confirm: $confirm) { volume { name } }
}"""
VOLUMES = "query($p: String!) { project(name: $p) { volumes { name mountPath } } }"


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("volumes-platform")
    with platform(
        data_dir, health_check_timeout_seconds=30, gitd_port=GITD_PORT, quota_volumes_per_project=2
    ) as p:
        try:
            yield p
        finally:
            for project in p.projects:
                cleanup_project(project)


@pytest.fixture(scope="module")
def app(plat: Platform, tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, str]:
    """A user whose volume fixture runs (v1) with a volume at /data, added before the push."""
    with gitd_process(plat, GITD_PORT):
        cli = developer(plat, GITD_PORT, tmp_path_factory.mktemp("volumes"))
        cli.ok("keys:add")
        project = f"v-{secrets.token_hex(4)}"
        work = workdir(cli, "volume")
        cli.ok("projects:create", project, cwd=work)
        plat.projects.append(project)
        added = cli.ok("volumes:add", "/data", "-p", project)
        assert f"Added volume data at /data on {project} (web)" in added.out
        assert "nothing is running yet" in added.err
        pushed = push(cli, work)
        assert pushed.returncode == 0, pushed.stderr
    return cli, project


def until(what: str, attempts: int, probe: Callable[[], T | None]) -> T:
    """Poll ``probe`` (at least 0.25 s apart) until it gives something; fail naming ``what``."""
    for _ in range(attempts):
        found = probe()
        if found is not None and found is not False:
            return found
        time.sleep(0.25)
    pytest.fail(f"gave up waiting: {what}")


def api_of(cli: Cli) -> Api:
    stored = json.loads((cli.config_home / "paastech" / "credentials.json").read_text())
    return Api(cli.api_url, stored["credentials"][cli.api_url]["token"])


def get(plat: Platform, project: str, path: str) -> httpx.Response:
    url = f"http://127.0.0.1:{plat.ingress_port}{path}"
    with httpx.Client(timeout=10) as http:
        return http.get(url, headers={"Host": f"{project}.localhost"})


def served(plat: Platform, project: str, path: str) -> httpx.Response:
    """The app's answer through the ingress, once it routes to the live release."""

    def answer() -> httpx.Response | None:
        try:
            response = get(plat, project, path)
        except httpx.HTTPError:
            return None
        return response if response.status_code in (200, 404) else None

    return until(f"{project}{path} answers through the ingress", 240, answer)


def docker_volumes(project: str) -> list[str]:
    out = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", f"label=paastech.project={project}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(out.split())


def volume_names(cli: Cli, project: str) -> list[tuple[str, str]]:
    return [(v["name"], v["mountPath"]) for v in cli.ok("volumes", "-p", project, "--json").json()]


def test_the_app_writes_and_the_data_outlives_restart_and_rollback(
    plat: Platform, app: tuple[Cli, str]
) -> None:
    cli, project = app
    who = served(plat, project, "/").json()
    # Non-root (the buildpack's USER 1000), and the volume is its own.
    assert who["uid"] not in (0, None) and who["writable"] is True
    assert served(plat, project, "/write?file=note&text=kept").json() == {"wrote": "note"}

    listed = cli.ok("volumes", "-p", project, "--json").json()
    assert [(v["name"], v["mountPath"], v["processTypes"]) for v in listed] == [
        ("data", "/data", ["web"])
    ]
    assert listed[0]["sizeBytes"] >= len("kept")
    assert "data" in cli.ok("volumes", "-p", project).out

    cli.ok("restart", "-p", project, timeout=180)  # v2: new containers
    assert served(plat, project, "/read?file=note").json() == {"text": "kept"}
    cli.ok("rollback", "-p", project, timeout=180)  # v3: v1's image again
    assert served(plat, project, "/read?file=note").json() == {"text": "kept"}


def test_replicas_share_one_volume_of_the_project(plat: Platform, app: tuple[Cli, str]) -> None:
    cli, project = app
    cli.ok("scale", "web=2", "-p", project, timeout=180)  # v4: two replicas share the volume
    live = releases(cli, project)[0]
    assert live["number"] == 4 and live["status"] == "RUNNING"
    sources = {
        tuple(m["Name"] for m in docker_inspect(plat.container(project, 4, "web", r))["Mounts"])
        for r in (1, 2)
    }
    assert len(sources) == 1 and len(next(iter(sources))) == 1
    (docker_name,) = next(iter(sources))
    assert docker_name.startswith(f"{plat.instance}.{project}.data.")
    assert docker_volumes(project) == [docker_name]
    labels = json.loads(
        subprocess.run(
            ["docker", "volume", "inspect", docker_name], capture_output=True, text=True, check=True
        ).stdout
    )[0]["Labels"]
    assert labels["paastech.project"] == project and labels["paastech.volume"] == "data"
    # Each replica reads what the other wrote.
    for replica in (1, 2):
        port = docker_inspect(plat.container(project, 4, "web", replica))["NetworkSettings"][
            "Ports"
        ]["5000/tcp"][0]["HostPort"]
        with httpx.Client(timeout=10) as http:
            read = http.get(f"http://127.0.0.1:{port}/read?file=note")
        assert read.json() == {"text": "kept"}


def test_bad_inputs_are_refused_and_change_nothing(plat: Platform, app: tuple[Cli, str]) -> None:
    cli, project = app
    api = api_of(cli)
    before = (volume_names(cli, project), len(releases(cli, project)))

    async def refused(path: str, **kwargs: object) -> tuple[str | None, str | None, str]:
        error = await api.error(ADD, p=project, path=path, **kwargs)
        return error.code, error.field, error.errors[0]["message"]

    for path, why in [
        ("data", "absolute"),
        ("/", "'/'"),
        ("/data/../etc", "normalised"),
        ("/etc", "system directory"),
        ("/proc/x", "system directory"),
        ("/app", "app's code"),
    ]:
        code, field, message = asyncio.run(refused(path))
        assert (code, field) == ("VALIDATION", "mountPath") and why in message, message
    code, field, message = asyncio.run(refused("/data"))
    assert (code, field) == ("VALIDATION", "mountPath") and "volume data" in message
    code, field, message = asyncio.run(refused("/data/inner"))
    assert (code, field) == ("VALIDATION", "mountPath")
    code, field, message = asyncio.run(refused("/files", types=["worker"]))
    assert (code, field) == ("VALIDATION", "processTypes") and "no process type worker" in message
    for types in (["Bad!"], [], ["web"] * 11):
        code, field, message = asyncio.run(refused("/files", types=types))
        assert (code, field) == ("VALIDATION", "processTypes"), message
    code, field, _ = asyncio.run(refused("/files", name="data"))
    assert (code, field) == ("VALIDATION", "name")
    code, field, _ = asyncio.run(refused("/files", name="Bad Name"))
    assert (code, field) == ("VALIDATION", "name")
    # The CLI checks the path itself (a usage error) and says why.
    assert "absolute" in cli.fails(2, "volumes:add", "relative", "-p", project).err
    # Removal needs the project's name as confirmation.
    wrong = asyncio.run(api.error(REMOVE, p=project, name="data", confirm="yes"))
    assert (wrong.code, wrong.field) == ("VALIDATION", "confirm")
    mismatch = cli.fails(1, "volumes:remove", "data", "-p", project, "--confirm", "nope")
    assert "does not match" in mismatch.err
    missing = asyncio.run(api.error(REMOVE, p=project, name="nope", confirm=project))
    assert missing.code == "NOT_FOUND"
    assert (volume_names(cli, project), len(releases(cli, project))) == before


def test_a_second_client_can_neither_see_remove_nor_mount_the_volume(
    plat: Platform, app: tuple[Cli, str], tmp_path: Path
) -> None:
    cli, project = app
    other = new_cli(plat.api_url, tmp_path)
    other.signup()
    attacker = api_of(other)
    assert other.fails(4, "volumes", "-p", project).code == 4
    assert other.fails(4, "volumes:remove", "data", "-p", project, "--confirm", project).code == 4
    for error in (
        asyncio.run(attacker.error(VOLUMES, p=project)),
        asyncio.run(attacker.error(REMOVE, p=project, name="data", confirm=project)),
        asyncio.run(attacker.error(ADD, p=project, path="/steal")),
    ):
        assert error.code == "NOT_FOUND", error.errors
    # Its own project's volume of the same name is another Docker volume, labelled as its own.
    theirs = f"v-{secrets.token_hex(4)}"
    other.ok("projects:create", theirs)
    plat.projects.append(theirs)
    asyncio.run(attacker(ADD, p=theirs, path="/data", name="data"))
    assert asyncio.run(attacker(VOLUMES, p=theirs))["project"]["volumes"] == [
        {"name": "data", "mountPath": "/data"}
    ]
    assert volume_names(cli, project) == [("data", "/data")]
    assert docker_volumes(theirs) == []  # created only when a container of its own uses it
    other.ok("projects:delete", theirs, "--confirm", theirs)


def test_quotas_refuse_and_removal_deletes_the_data(plat: Platform, app: tuple[Cli, str]) -> None:
    cli, project = app
    api = api_of(cli)
    username = asyncio.run(api("{ me { username } }"))["me"]["username"]
    # volume_mb: the volumes use about 3 MB; a limit of 2 refuses a new one; nothing changes.
    big = served(plat, project, f"/write?file=big&size={3 * 1024 * 1024}")
    assert big.json() == {"wrote": "big"}
    admin_quota(plat.data_dir, username, "volume_mb", "2")
    refused = asyncio.run(api.error(ADD, p=project, path="/files"))
    assert (
        refused.code == "VALIDATION" and "quota volume_mb exceeded" in refused.errors[0]["message"]
    )
    quotas = {q["name"]: q for q in cli.ok("quotas", "--json").json()}
    assert quotas["volume_mb"]["limit"] == 2 and quotas["volume_mb"]["used"] >= 3
    assert quotas["volumes_per_project"]["used"] == 1
    admin_quota(plat.data_dir, username, "volume_mb", "default")

    # volumes_per_project is 2 on this platform: a second one is added (a release), a third not.
    cli.ok("volumes:add", "/srv/files", "--name", "files", "-p", project, timeout=180)
    assert volume_names(cli, project) == [("data", "/data"), ("files", "/srv/files")]
    third = cli.fails(1, "volumes:add", "/srv/more", "-p", project)
    assert "quota volumes_per_project exceeded: limit 2, in use 2" in third.err
    assert len(docker_volumes(project)) == 2  # the new release created and mounted it

    # Removing it: a release without it, then its Docker volume goes.
    number = releases(cli, project)[0]["number"]
    removed = cli.ok("volumes:remove", "files", "-p", project, "--confirm", project, timeout=180)
    assert f"Removed volume files (/srv/files) from {project}" in removed.out
    assert f"v{number + 1} of {project}" in removed.out  # the release the API answered
    until("the release without it", 240, lambda: releases(cli, project)[0]["number"] > number)
    until("its Docker volume is removed", 480, lambda: len(docker_volumes(project)) == 1)
    assert served(plat, project, "/read?file=note").json() == {"text": "kept"}

    # Pomegranate down: the volumes are still listed, their sizes unknown (-1), as the quota.
    plat.pomegranate.stop()
    try:
        listed = cli.ok("volumes", "-p", project, "--json").json()
        assert [(v["name"], v["sizeBytes"]) for v in listed] == [("data", -1)]
        assert "unknown" in cli.ok("volumes", "-p", project).out
        quotas = {q["name"]: q for q in cli.ok("quotas", "--json").json()}
        assert quotas["volume_mb"]["used"] == -1
        assert re.search(r"volume_mb\s+10240\s+unknown", cli.ok("quotas").out)
    finally:
        plat.pomegranate.start()
    until(
        "the API reaches Pomegranate again",
        240,
        lambda: cli.ok("volumes", "-p", project, "--json").json()[0]["sizeBytes"] > 0,
    )

    # Deleting the project deletes its volumes.
    cli.ok("projects:delete", project, "--confirm", project, timeout=180)
    until("the project's volumes are removed", 240, lambda: docker_volumes(project) == [])
