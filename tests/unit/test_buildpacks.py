"""Stack detection and Dockerfile generation."""

from __future__ import annotations

import pytest

from backend.pomegranate.buildpacks import (
    NOTHING_RECOGNISED,
    exposed_port,
    plan_build,
    requirement_lines,
)
from backend.pomegranate.runtime import BuildError
from backend.settings import Settings

SETTINGS = Settings(
    python_base_image="img/python:1",
    node_base_image="img/node:1",
    static_base_image="img/busybox:1",
)


def plan(files):
    return plan_build(files, SETTINGS)


def test_dockerfile_is_used_as_is_and_wins():
    result = plan(
        {
            "Dockerfile": "FROM x\n# EXPOSE 1\nEXPOSE 8080/tcp 9000\n",
            "requirements.txt": "flask\n",
            "Procfile": None,
            "package.json": "{}",
            "index.html": None,
        }
        | {"Procfile": "web: ./serve\nworker: ./work\n"}
    )
    assert result.stack == "dockerfile"
    assert result.dockerfile is None
    assert result.exposed_port == 8080
    assert result.processes == {"web": "./serve", "worker": "./work"}


def test_dockerfile_without_procfile_uses_image_cmd():
    result = plan({"Dockerfile": b'FROM x\nCMD ["run"]\n'})
    assert result.processes == {"web": None}
    assert result.exposed_port is None


@pytest.mark.parametrize(
    ("text", "port"),
    [
        ("FROM x\nexpose 3000\n", 3000),
        ("FROM x\nEXPOSE $PORT\n", None),
        ("FROM x\nEXPOSE 53/udp 7000\n", 7000),
        ("FROM x\nRUN echo \\\n  EXPOSE 1\nEXPOSE \\\n  4000\n", 4000),
        ("FROM x\nEXPOSE 99999\n", None),
    ],
)
def test_exposed_port(text, port):
    assert exposed_port(text) == port


def test_python_with_requirements():
    result = plan(
        {
            "Procfile": "web: python3 app.py\nworker: python3 worker.py\n",
            "requirements.txt": "# deps\nflask==3.0  # web\n\n",
            "app.py": None,
        }
    )
    assert result.stack == "python"
    assert result.processes == {"web": "python3 app.py", "worker": "python3 worker.py"}
    assert result.exposed_port is None
    lines = result.dockerfile.splitlines()
    assert lines[0] == "FROM img/python:1"
    assert "WORKDIR /app" in lines
    copy_req = lines.index("COPY requirements.txt /app/requirements.txt")
    install = lines.index(
        "RUN python3 -m pip install --no-cache-dir --break-system-packages -r requirements.txt"
    )
    copy_all = lines.index("COPY --chown=1000:1000 . /app")
    # The dependency layer comes before the code copy, so a code-only change reuses it.
    assert copy_req < install < copy_all
    assert lines[-1] == "USER 1000:1000"
    assert not any(line.startswith("CMD") for line in lines)


def test_python_with_empty_requirements_installs_nothing():
    result = plan({"Procfile": "web: python3 app.py", "requirements.txt": "# stdlib only\n\n"})
    assert "pip" not in result.dockerfile
    assert "requirements.txt" not in result.dockerfile


def test_python_with_pyproject():
    result = plan(
        {
            "Procfile": "web: python3 -m app",
            "pyproject.toml": '[project]\nname = "a"\ndependencies = ["flask>=3", "x[y]"]\n',
        }
    )
    assert result.stack == "python"
    assert (
        "RUN python3 -m pip install --no-cache-dir --break-system-packages 'flask>=3' 'x[y]'"
        in result.dockerfile.splitlines()
    )
    no_deps = plan({"Procfile": "web: python3 -m app", "pyproject.toml": '[project]\nname="a"\n'})
    assert "pip" not in no_deps.dockerfile


def test_requirement_lines():
    assert requirement_lines("a\n  # c\n-r other.txt\nb #x\nurl#egg=c\n") == [
        "a",
        "-r other.txt",
        "b",
        "url#egg=c",
    ]


def test_node_with_dependencies_and_lockfile():
    result = plan(
        {
            "package.json": '{"scripts": {"start": "node index.js"}, "dependencies": {"a": "1"}}',
            "package-lock.json": None,
            "index.html": None,
        }
    )
    assert result.stack == "node"
    assert result.processes == {"web": "node index.js"}
    lines = result.dockerfile.splitlines()
    assert lines[0] == "FROM img/node:1"
    copy = lines.index("COPY package.json package-lock.json /app/")
    install = lines.index("RUN npm ci --omit=dev && npm cache clean --force")
    assert copy < install < lines.index("COPY --chown=1000:1000 . /app")
    assert 'CMD ["/bin/sh", "-c", "node index.js"]' in lines


def test_node_without_dependencies_or_lockfile():
    result = plan({"package.json": '{"name": "x"}', "server.js": None})
    assert "npm ci" not in result.dockerfile
    assert "npm install" not in result.dockerfile
    with_deps = plan({"package.json": '{"dependencies": {"a": "1"}, "scripts": {"start": "x"}}'})
    assert "RUN npm install --omit=dev && npm cache clean --force" in with_deps.dockerfile


def test_node_with_procfile():
    result = plan({"package.json": "{}", "Procfile": "web: node web.js\nworker: node w.js"})
    assert result.processes == {"web": "node web.js", "worker": "node w.js"}


def test_static():
    result = plan({"index.html": None, "style.css": None})
    assert result.stack == "static"
    assert result.processes == {"web": 'exec busybox httpd -f -p "${PORT:-5000}" -h /srv'}
    lines = result.dockerfile.splitlines()
    assert lines[0] == "FROM img/busybox:1"
    assert "COPY --chown=1000:1000 . /srv" in lines
    assert "USER 1000:1000" in lines


def test_procfile_alone_is_not_python():
    # A Procfile without requirements.txt/pyproject.toml and nothing else: not recognised.
    with pytest.raises(BuildError) as info:
        plan({"Procfile": "web: x", "app.py": None})
    assert info.value.message == NOTHING_RECOGNISED


def test_nothing_recognised_names_the_expected_files():
    with pytest.raises(BuildError) as info:
        plan({"README.md": None, "main.go": None})
    assert info.value.step is None
    for name in (
        "Dockerfile",
        "Procfile",
        "requirements.txt",
        "pyproject.toml",
        "package.json",
        "index.html",
    ):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("files", "step", "message"),
    [
        ({"Procfile": "web x", "requirements.txt": ""}, "Procfile", "line 1: expected"),
        ({"Procfile": "", "requirements.txt": ""}, "Procfile", "defines no process"),
        ({"Dockerfile": "FROM x", "Procfile": "Bad: x"}, "Procfile", "invalid process type"),
        ({"Procfile": "web: x", "pyproject.toml": "[project"}, "pyproject.toml", "not valid TOML"),
        ({"package.json": "{nope"}, "package.json", "not valid JSON"),
        ({"package.json": "[]"}, "package.json", "JSON object"),
        ({"package.json": "{}"}, "package.json", 'no "start" script'),
        ({"Procfile": b"\xff", "requirements.txt": ""}, "Procfile", "UTF-8"),
    ],
)
def test_malformed_files(files, step, message):
    with pytest.raises(BuildError) as info:
        plan(files)
    assert info.value.step == step
    assert message in info.value.message
