"""Issue 10: isolated builds. Every test is an attack by a second tenant (the attacker) on a first
one (the victim, serving through the embedded ingress), through the same Deploy path gitd uses.
Each attack fails with a clear reason (labels: succeeds with them stripped), the victim keeps
serving, and the victim's source never appears in anything the attacker can read."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import secrets
import subprocess
import tarfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiodocker
import httpx
import pytest

from backend.pomegranate.builder import CA_MOUNT, CA_VARIABLES, SOURCES_ALLOWED
from backend.pomegranate.docker_runtime import DockerRuntime, ForbiddenImage
from backend.pomegranate.registry import Registry
from backend.pomegranate.runtime import ProcessSpec
from backend.settings import Settings
from tests.conftest import PASSWORD
from tests.support.gqlclient import SIGNUP, Api
from tests.support.networks import churn
from tests.support.platform import (
    DeployOutcome,
    Platform,
    cleanup_project,
    docker_inspect,
    fixture,
    platform,
    push,
)

pytestmark = pytest.mark.docker

# The victim's source carries this; no attacker-readable output may.
MARKER = f"victim-secret-{secrets.token_hex(8)}"
LIMITS = {
    "build_memory_mb": 160,
    "build_pids_limit": 64,
    "build_disk_mb": 64,
    "build_timeout_seconds": 30,
    "health_check_timeout_seconds": 15,
}
PYTHON = "paastech/python:bookworm"
BUSYBOX = "paastech/busybox:latest"
STATE = """query($p: String!) { project(name: $p) {
  liveApplication { number image }
  processes { processType replica running hostPort } } }"""


@dataclass
class Tenant:
    api: Api
    id: str
    project: str


@dataclass
class Scene:
    plat: Platform
    victim: Tenant
    attacker: Tenant
    victim_image: str


async def _tenant(plat: Platform) -> Tenant:
    name = f"u{secrets.token_hex(4)}"
    data = await Api(plat.api_url)(
        SIGNUP, email=f"{name}@example.com", username=name, password=PASSWORD
    )
    api = Api(plat.api_url, data["signup"]["token"])
    project = f"t-{secrets.token_hex(4)}"
    await api("mutation($n: String!) { createProject(name: $n) { name } }", n=project)
    plat.projects.append(project)
    return Tenant(api, data["signup"]["client"]["id"], project)


def tree(files: dict[str, str], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def victim_tree() -> bytes:
    app = (fixture("dockerfile") / "app.py").read_text() + f"\n# {MARKER}\n"
    dockerfile = (fixture("dockerfile") / "Dockerfile").read_text()
    return tree({"Dockerfile": dockerfile, "app.py": app})


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("isolation"), **LIMITS) as p:
        yield p
        for project in p.projects:
            cleanup_project(project)


@pytest.fixture(scope="module")
async def scene(plat: Platform) -> AsyncIterator[Scene]:
    victim = await _tenant(plat)
    outcome = await push(plat, victim.id, victim.project, victim_tree())
    assert outcome.ok, outcome
    image = (await victim.api(STATE, p=victim.project))["project"]["liveApplication"]["image"]
    attacker = await _tenant(plat)
    yield Scene(plat, victim, attacker, image)


async def victim_serves(scene: Scene) -> None:
    """The victim still answers through the ingress, and the platform's API answers."""
    host = f"{scene.victim.project}.localhost"
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(
            f"http://127.0.0.1:{scene.plat.ingress_port}/", headers={"Host": host}
        )
    assert response.status_code == 200, response.text
    assert response.json()["app"] == "dockerfile"
    state = (await scene.victim.api(STATE, p=scene.victim.project))["project"]
    assert state["liveApplication"]["number"] == 1


async def attack(scene: Scene, source: bytes) -> DeployOutcome:
    outcome = await push(scene.plat, scene.attacker.id, scene.attacker.project, source)
    readable = "\n".join([*outcome.lines, outcome.reason])
    assert MARKER not in readable
    await victim_serves(scene)
    return outcome


def failed(outcome: DeployOutcome) -> str:
    assert not outcome.ok, outcome.lines[-10:]
    assert outcome.reason
    return outcome.reason


# ---------------------------------------------------------------------------- image sources


SOURCES = {
    "from": "FROM {image}\nRUN cat /app/app.py\n",
    "from-via-arg": "ARG BASE={image}\nFROM $BASE\nRUN cat /app/app.py\n",
    "later-stage": f"FROM {BUSYBOX} AS first\nRUN true\nFROM {{image}}\nRUN cat /app/app.py\n",
    "copy-from": f"FROM {BUSYBOX}\nCOPY --from={{image}} /app /stolen\nRUN cat /stolen/app.py\n",
    "copy-from-via-arg": (
        f"ARG SRC={{image}}\nFROM $SRC AS src\nFROM {BUSYBOX}\n"
        "COPY --from=src /app /stolen\nRUN cat /stolen/app.py\n"
    ),
}


def _names(scene: Scene) -> dict[str, str]:
    victim = scene.victim.project
    store = scene.plat.data_dir.resolve() / "builder" / "projects" / victim
    return {
        # What Docker's builder used to accept: the engine's tag of another project's image.
        "engine-tag": f"paastech/app-{victim}:1",
        # The platform registry, by the exact digest the victim runs (the build has no creds).
        "registry-digest": scene.victim_image,
        # The engine itself, and the victim's build storage on disk.
        "docker-daemon": f"docker-daemon:{docker_inspect(scene.victim_image)['Id']}",
        "containers-storage": (
            f"containers-storage:[overlay@{store}/root+{store}/run]localhost/build-{victim}:latest"
        ),
    }


@pytest.mark.parametrize("how", sorted(SOURCES))
@pytest.mark.parametrize(
    "name", ["engine-tag", "registry-digest", "docker-daemon", "containers-storage"]
)
async def test_another_tenants_image_is_never_a_build_source(
    scene: Scene, how: str, name: str
) -> None:
    image = _names(scene)[name]
    outcome = await attack(scene, tree({"Dockerfile": SOURCES[how].format(image=image)}))
    reason = failed(outcome)
    # Refused when the build tried to use the image, before any step of it ran.
    assert "exited with code" not in reason, reason
    assert not any("REACHED" in line for line in outcome.lines)
    assert image in reason or SOURCES_ALLOWED in reason, reason


# ---------------------------------------------------------------------------- labels


async def test_routing_and_ownership_labels_are_stripped(scene: Scene) -> None:
    victim = scene.victim.project
    dockerfile = (
        f"FROM {BUSYBOX}\n"
        "ARG ROUTER=traefik.http.routers.evil.rule\n"
        "ARG OWNER=paastech.project\n"
        f'LABEL $ROUTER="Host(`{victim}.localhost`)" traefik.enable=true $OWNER={victim} '
        "paastech.application=1 org.opencontainers.image.title=attacker\n"
        'CMD ["busybox", "httpd", "-f", "-p", "5000"]\n'
    )
    outcome = await attack(scene, tree({"Dockerfile": dockerfile, "index.html": "attacker"}))
    assert outcome.ok, outcome
    removed = next(line for line in outcome.lines if "Removed labels" in line)
    for label in ("traefik.http.routers.evil.rule", "traefik.enable", "paastech.project"):
        assert label in removed
    image = (await scene.attacker.api(STATE, p=scene.attacker.project))["project"][
        "liveApplication"
    ]["image"]
    labels = docker_inspect(image)["Config"]["Labels"] or {}
    # Only OCI metadata is left: the Dockerfile's title (and the base image's own version label
    # when the base image has one).
    assert labels.get("org.opencontainers.image.title") == "attacker"
    assert all(key.startswith("org.opencontainers.") for key in labels), labels
    # The registry keeps no unstripped copy (the label check runs beside the first push, whose
    # manifest is deleted once the stripped image is pushed): only the live image is tagged.
    digest = image.partition("@")[2]
    assert set((await Registry(Settings()).tags(scene.attacker.project)).values()) == {digest}
    number = (await scene.attacker.api(STATE, p=scene.attacker.project))["project"][
        "liveApplication"
    ]["number"]
    container = scene.plat.container(scene.attacker.project, number)
    container_labels = docker_inspect(container)["Config"]["Labels"]
    assert container_labels["paastech.project"] == scene.attacker.project
    assert "traefik.http.routers.evil.rule" not in container_labels


async def test_runtime_refuses_an_image_with_forbidden_labels(tmp_path: Path) -> None:
    """Defence in depth: an image that did not come through the builder (here: built straight on
    the engine) and carries routing labels is never started."""
    tag = f"paastech-test/forbidden-{secrets.token_hex(4)}:1"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BUSYBOX}\nLABEL traefik.enable=true traefik.http.routers.x.rule=Host(`api.x`)\n"
    )
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, str(tmp_path)], check=True, capture_output=True
    )
    runtime = DockerRuntime(Settings())
    try:
        spec = ProcessSpec("t-forbidden", 1, "web", 1, tag, None, {}, 5000, [], 64, 0.1, 32)
        with pytest.raises(
            ForbiddenImage, match=re.escape("traefik.enable, traefik.http.routers.x.rule")
        ):
            await runtime.start(spec)
        assert await runtime.list_containers("t-forbidden") == []
    finally:
        # The start made the project's network beside the image check (docker_runtime.py).
        await runtime.remove_project_network("t-forbidden")
        await runtime.close()
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


# ---------------------------------------------------------------------------- network


def _targets(scene: Scene) -> dict[str, str]:
    networks = docker_inspect(scene.plat.container(scene.victim.project, 1))["NetworkSettings"][
        "Networks"
    ]
    victim = next(iter(networks.values()))
    api_port = int(scene.plat.api_url.split(":")[2].split("/")[0])
    return {
        "loopback-api": f"127.0.0.1:{api_port}",
        "gateway-api": f"10.89.0.1:{api_port}",
        # The host as the apps' Docker network sees it, on Pomegranate's port.
        "docker-bridge-pomegranate": f"{victim['Gateway']}:{scene.plat.pomegranate.port}",
        "other-tenant-container": f"{victim['IPAddress']}:5000",
        "metadata": "169.254.169.254:80",
    }


@contextlib.asynccontextmanager
async def wildcard_listener() -> AsyncIterator[int]:
    """A service on the host bound to every address (0.0.0.0), as a careless one would be: only
    the build network's firewall keeps a build from reaching it through the bridge gateway."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"host service says hello\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "0.0.0.0", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "target",
    [
        "loopback-api",
        "gateway-api",
        "docker-bridge-pomegranate",
        "other-tenant-container",
        "metadata",
        "host-wildcard-listener",
    ],
)
async def test_build_steps_reach_nothing_local(scene: Scene, target: str) -> None:
    async with wildcard_listener() as port:
        address = f"10.89.0.1:{port}" if target == "host-wildcard-listener" else None
        address = address or _targets(scene)[target]
        await _probe(scene, address)


async def test_build_steps_reach_no_tenant_while_networks_are_created(scene: Scene) -> None:
    """Docker 20.10 rewrites its filter FORWARD rules each time it creates a network (any tenant's
    first deploy does); a build step probing another tenant's container in a loop meanwhile
    never connects. The same step reaches a package index (the control: its probe works)."""
    script = (
        "import socket, time\n"
        f"host, port = {_targets(scene)['other-tenant-container']!r}.split(':')\n"
        "attempts = connected = 0\n"
        "end = time.monotonic() + 10\n"
        "while time.monotonic() < end:\n"
        "    attempts += 1\n"
        "    try:\n"
        "        socket.create_connection((host, int(port)), timeout=0.05).close()\n"
        "        connected += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "control = socket.create_connection(('pypi.org', 443), timeout=20)\n"
        "print('CONTROL', control.getpeername()[1], flush=True)\n"
        "print('FLOOD', attempts, connected, flush=True)\n"
        "raise SystemExit(1)\n"
    )
    dockerfile = f"FROM {PYTHON}\nCOPY flood.py /flood.py\nRUN python3 /flood.py\n"
    done = asyncio.Event()
    creations = 0

    async def keep_churning() -> None:
        nonlocal creations
        async with aiodocker.Docker() as docker:
            while not done.is_set():
                await churn(docker, 1)
                creations += 1

    churner = asyncio.create_task(keep_churning())
    try:
        outcome = await attack(scene, tree({"Dockerfile": dockerfile, "flood.py": script}))
    finally:
        done.set()
        await churner
    failed(outcome)
    assert "CONTROL 443" in outcome.lines, outcome.lines[-5:]
    flood = next((line.split() for line in outcome.lines if line.startswith("FLOOD ")), None)
    assert flood is not None, outcome.lines[-5:]
    attempts, connected = int(flood[1]), int(flood[2])
    assert creations > 0 and attempts > 0 and connected == 0, (creations, attempts, connected)


async def _probe(scene: Scene, address: str) -> None:
    script = (
        "import socket\n"
        f"host, port = {address!r}.split(':')\n"
        "s = socket.create_connection((host, int(port)), timeout=5)\n"
        "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
        "print('REACHED', s.recv(200))\n"
    )
    dockerfile = f"FROM {PYTHON}\nCOPY probe.py /probe.py\nRUN python3 /probe.py\n"
    outcome = await attack(scene, tree({"Dockerfile": dockerfile, "probe.py": script}))
    reason = failed(outcome)
    assert reason == "the step exited with code 1 (at STEP 3/3: RUN python3 /probe.py)" or (
        "exited with code 1" in reason
    ), reason
    assert not any("REACHED" in line for line in outcome.lines)
    assert any(
        err in line
        for line in outcome.lines
        for err in ("refused", "unreachable", "prohibited", "timed out", "No route")
    ), outcome.lines[-5:]


async def test_build_steps_reach_package_indexes_with_the_host_ca(scene: Scene) -> None:
    """The host's CA bundle is mounted for RUN steps (the network intercepts TLS): an https
    fetch of pypi.org works, and nothing of the CA is left in the image."""
    dockerfile = (
        f"FROM {PYTHON}\n"
        'RUN python3 -c "import urllib.request; '
        "print('pypi', urllib.request.urlopen('https://pypi.org/simple/', timeout=20).status)\"\n"
        "RUN env | grep -E '^(SSL_CERT_FILE|PIP_CERT)=' | sort\n"
        'CMD ["python3", "-m", "http.server", "5000"]\n'
    )
    outcome = await attack(scene, tree({"Dockerfile": dockerfile}))
    assert outcome.ok, outcome.lines[-15:]
    assert "pypi 200" in outcome.lines
    assert f"SSL_CERT_FILE={CA_MOUNT}" in outcome.lines
    image = (await scene.attacker.api(STATE, p=scene.attacker.project))["project"][
        "liveApplication"
    ]["image"]
    config = docker_inspect(image)["Config"]
    assert not any(e.split("=")[0] in CA_VARIABLES for e in config.get("Env") or [])
    history = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert CA_MOUNT not in history and "ca-certificates.crt" not in history


# ---------------------------------------------------------------------------- limits


LIMIT_ATTACKS = {
    "fork-bomb": (
        "RUN i=0; while [ $i -lt 1000 ]; do sleep 60 & i=$((i+1)); done; wait",
        "process limit (build PIDs limit 64)",
    ),
    "memory-hog": (
        "RUN python3 -c \"b = b'x' * (1024 * 1024 * 1024); print(len(b))\"",
        "out of memory (build memory limit 160 MB)",
    ),
    "disk-filler-one-file": (
        "RUN dd if=/dev/zero of=/tmp/fill bs=1M count=1000",
        # RLIMIT_FSIZE or the storage watchdog, whichever comes first: both name the limit.
        "disk limit (build disk limit 64 MB)",
    ),
    "disk-filler-many-files": (
        "RUN for i in $(seq 1 400); do head -c 1048576 /dev/urandom > /tmp/fill$i; done; sleep 20",
        "disk limit (build disk limit 64 MB)",
    ),
    "sleep-past-the-time-limit": (
        "RUN sleep 600",
        "time limit (build_timeout_seconds 30s)",
    ),
}


@pytest.mark.parametrize("name", sorted(LIMIT_ATTACKS))
async def test_build_limits_stop_the_build_with_a_reason(scene: Scene, name: str) -> None:
    step, expected = LIMIT_ATTACKS[name]
    outcome = await attack(scene, tree({"Dockerfile": f"FROM {PYTHON}\n{step}\n"}))
    reason = failed(outcome)
    assert expected in reason, reason
    # Nothing of the build is left running: its cgroup is gone.
    assert not list(Path("/sys/fs/cgroup").glob(f"*/paastech-build/*-{scene.attacker.project}-*"))


# ---------------------------------------------------------------------------- the pushed tree


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../etc/passwd"])
async def test_symlink_outside_the_tree_is_refused(scene: Scene, target: str) -> None:
    dockerfile = f"FROM {BUSYBOX}\nCOPY leak /leak\nRUN cat /leak\n"
    outcome = await attack(scene, tree({"Dockerfile": dockerfile}, {"leak": target}))
    reason = failed(outcome)
    assert reason == f"the pushed tree has an entry that points outside it: leak -> {target}"
    assert not any(line.startswith("root:") for line in outcome.lines)


async def test_attacks_leave_the_host_responsive(scene: Scene) -> None:
    """After every attack above: a normal build of the attacker still works, quickly enough to
    be bounded by the build's own time limit."""
    async with asyncio.timeout(120):
        dockerfile = (
            f"FROM {BUSYBOX}\nRUN echo fine\n"
            'CMD ["busybox", "httpd", "-f", "-p", "5000", "-h", "/"]\n'
        )
        outcome = await attack(scene, tree({"Dockerfile": dockerfile}))
    assert outcome.ok, outcome.lines[-10:]
    assert "fine" in outcome.lines
