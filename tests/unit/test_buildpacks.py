"""Stack detection and Dockerfile generation."""

from __future__ import annotations

import pytest

from backend.pomegranate.buildpacks import (
    NOTHING_RECOGNISED,
    PYTHON_NEEDS_PROCFILE,
    exposed_port,
    node_satisfies,
    plan_build,
    requirement_lines,
    runtime_table,
)
from backend.pomegranate.runtime import BuildError
from backend.settings import Settings

SETTINGS = Settings(
    python_base_image="img/python:1",
    node_base_image="img/node:1",
    static_base_image="img/busybox:1",
    python_runtimes="3.11=img/python:1,3.13=img/python:trixie",
    node_runtimes="18.19.0=img/node:1,22.12.0=img/node:22",
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
    # A virtualenv, first on PATH, never pip into the system Python.
    venv = lines.index("RUN [ -x /opt/venv/bin/python ] || python3 -m venv /opt/venv")
    assert "VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH" in lines[1]
    assert "break-system-packages" not in result.dockerfile
    copy_req = lines.index("COPY requirements.txt /app/requirements.txt")
    install = lines.index("RUN pip install --no-cache-dir -r requirements.txt")
    assert venv < copy_req
    copy_all = lines.index("COPY --chown=1000:1000 . /app")
    # The dependency layer comes before the code copy, so a code-only change reuses it.
    assert copy_req < install < copy_all
    assert lines[-1] == "USER 1000:1000"
    assert not any(line.startswith("CMD") for line in lines)


def test_python_with_empty_requirements_installs_nothing():
    result = plan({"Procfile": "web: python3 app.py", "requirements.txt": "# stdlib only\n\n"})
    assert "pip install" not in result.dockerfile
    assert "requirements.txt" not in result.dockerfile


def test_python_with_pyproject():
    result = plan(
        {
            "Procfile": "web: python3 -m app",
            "pyproject.toml": '[project]\nname = "a"\ndependencies = ["flask>=3", "x[y]"]\n',
        }
    )
    assert result.stack == "python"
    assert "RUN pip install --no-cache-dir 'flask>=3' 'x[y]'" in result.dockerfile.splitlines()
    no_deps = plan({"Procfile": "web: python3 -m app", "pyproject.toml": '[project]\nname="a"\n'})
    assert "pip install" not in no_deps.dockerfile


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
    install = lines.index("RUN npm ci --omit=dev --no-fund --no-audit && npm cache clean --force")
    assert copy < install < lines.index("COPY --chown=1000:1000 . /app")
    assert 'CMD ["/bin/sh", "-c", "node index.js"]' in lines


def test_node_without_dependencies_or_lockfile():
    result = plan({"package.json": '{"name": "x"}', "server.js": None})
    assert "npm ci" not in result.dockerfile
    assert "npm install" not in result.dockerfile
    with_deps = plan({"package.json": '{"dependencies": {"a": "1"}, "scripts": {"start": "x"}}'})
    assert (
        "RUN npm install --omit=dev --no-fund --no-audit && npm cache clean --force"
        in with_deps.dockerfile
    )


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


PYPROJECT = '[project]\nname = "a"\ndependencies = ["flask"]\n'


@pytest.mark.parametrize(
    ("lock", "tool", "command"),
    [
        ("uv.lock", "uv", "uv sync --frozen --no-dev --no-install-project"),
        ("poetry.lock", "poetry", "poetry install --only main --no-root"),
    ],
)
def test_python_lock_file_names_the_tool(lock, tool, command):
    result = plan({"Procfile": "web: x", "pyproject.toml": PYPROJECT, lock: None})
    lines = result.dockerfile.splitlines()
    copy = lines.index(f"COPY pyproject.toml {lock} /app/")
    (install,) = [i for i, line in enumerate(lines) if command in line]
    # The tool comes from PyPI into a virtualenv of its own, not into the app's.
    assert f"/opt/paastech-tools/bin/pip install --no-cache-dir {tool} " in lines[install]
    assert copy < install < lines.index("COPY --chown=1000:1000 . /app")
    assert "pip install --no-cache-dir flask" not in result.dockerfile


def test_python_without_procfile_asks_for_one():
    for files in ({"requirements.txt": "flask\n", "app.py": None}, {"pyproject.toml": PYPROJECT}):
        with pytest.raises(BuildError) as info:
            plan(files)
        assert info.value.step == "Procfile"
        assert info.value.message == PYTHON_NEEDS_PROCFILE
        assert "gunicorn app:app" in info.value.message


@pytest.mark.parametrize(
    ("files", "image"),
    [
        ({}, "img/python:1"),
        ({".python-version": "3.13\n"}, "img/python:trixie"),
        ({".python-version": "# pyenv\n3.11.9\n"}, "img/python:1"),
        ({"runtime.txt": "python-3.13.1"}, "img/python:trixie"),
        ({".python-version": "3"}, "img/python:trixie"),  # the newest 3.x
    ],
)
def test_python_version_selects_the_base_image(files, image):
    result = plan({"Procfile": "web: x", "requirements.txt": "", **files})
    assert result.dockerfile.splitlines()[0] == f"FROM {image}"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {".python-version": "3.9"},
            "Python '3.9' (from .python-version) is not available; available: 3.11, 3.13",
        ),
        ({"runtime.txt": "python-3.12.1"}, "available: 3.11, 3.13"),
        ({".python-version": "pypy3.10"}, "not a CPython 3 version"),
        ({"runtime.txt": "\n"}, "runtime.txt is empty"),
    ],
)
def test_unavailable_python_version_fails_with_the_list(files, message):
    with pytest.raises(BuildError) as info:
        plan({"Procfile": "web: x", "requirements.txt": "", **files})
    assert message in info.value.message
    assert info.value.step in files


@pytest.mark.parametrize(
    ("engines", "image"),
    [
        (None, "img/node:1"),
        ("18.x", "img/node:1"),
        ("^18.17", "img/node:1"),
        (">=18", "img/node:22"),
        ("20 || 22", "img/node:22"),
        ("~22.1", None),
        (">= 16 < 19", "img/node:1"),
    ],
)
def test_engines_node_selects_the_base_image(engines, image):
    package = {"scripts": {"start": "node a.js"}}
    if engines is not None:
        package["engines"] = {"node": engines}
    files = {"package.json": __import__("json").dumps(package)}
    if image is None:
        with pytest.raises(BuildError) as info:
            plan(files)
        assert info.value.message == (
            f"Node '{engines}' (from package.json engines.node) is not available; "
            "available: 18.19.0, 22.12.0"
        )
        return
    assert plan(files).dockerfile.splitlines()[0] == f"FROM {image}"


def test_node_satisfies():
    assert node_satisfies("18.19.0", "^18.0.0")
    assert not node_satisfies("18.19.0", "^18.20")
    assert node_satisfies("18.19.0", "16.0.0 - 18.19.0")
    assert node_satisfies("22.12.0", "*")
    assert not node_satisfies("22.12.0", "<22")
    assert node_satisfies("18.19.0", "<=18")
    with pytest.raises(ValueError):
        node_satisfies("18.19.0", "latest")


def test_bad_engines_node_is_a_clear_error():
    with pytest.raises(BuildError) as info:
        plan({"package.json": '{"engines": {"node": "lts"}, "scripts": {"start": "x"}}'})
    assert "engines.node 'lts' is not a version range" in info.value.message


@pytest.mark.parametrize(
    ("extra", "manifest", "install"),
    [
        (
            {"yarn.lock": None},
            "COPY package.json yarn.lock /app/",
            "npm install -g --no-fund --no-audit yarn@1 && yarn install --frozen-lockfile "
            "--production",
        ),
        (
            {"pnpm-lock.yaml": None},
            "COPY package.json pnpm-lock.yaml /app/",
            "npm install -g --no-fund --no-audit pnpm@9 && pnpm install --frozen-lockfile --prod",
        ),
    ],
)
def test_node_yarn_and_pnpm_lock_files(extra, manifest, install):
    files = {"package.json": '{"dependencies": {"a": "1"}, "scripts": {"start": "x"}}', **extra}
    lines = plan(files).dockerfile.splitlines()
    assert manifest in lines
    (run,) = [line for line in lines if line.startswith("RUN ")]
    assert run.startswith(f"RUN {install}")


def test_node_package_manager_field_pins_the_tool():
    pinned = '{"dependencies": {"a": "1"}, "scripts": {"start": "x"}, "packageManager": "%s"}'
    pnpm = plan({"package.json": pinned % "pnpm@8.15.4+sha512.abc", "pnpm-lock.yaml": None})
    assert "npm install -g --no-fund --no-audit pnpm@8.15.4 &&" in pnpm.dockerfile
    berry = plan({"package.json": pinned % "yarn@4.1.0", "yarn.lock": None})
    assert "corepack enable yarn && yarn workspaces focus --all --production" in berry.dockerfile


def test_runtime_table():
    assert runtime_table(" 3.11=a:1 , bad, =x, 3.13=b ") == {"3.11": "a:1", "3.13": "b"}


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


COLLECTSTATIC = "RUN python manage.py collectstatic --noinput"


@pytest.mark.parametrize(
    ("files", "collects"),
    [
        ({"requirements.txt": "Django==5.1.4\ngunicorn\n", "manage.py": None}, True),
        ({"requirements.txt": "django[argon2]>=5  # web\n", "manage.py": None}, True),
        (
            {
                "pyproject.toml": '[project]\nname="a"\ndependencies=["django~=5.1"]\n',
                "manage.py": None,
            },
            True,
        ),
        (
            {
                "pyproject.toml": '[tool.poetry.dependencies]\npython="^3.11"\nDjango="^5.1"\n',
                "poetry.lock": None,
                "manage.py": None,
            },
            True,
        ),
        # No manage.py, or Django not a dependency (a django-* package is not Django).
        ({"requirements.txt": "Django==5.1.4\n"}, False),
        ({"requirements.txt": "django-environ\nflask\n", "manage.py": None}, False),
        ({"pyproject.toml": "not toml [", "manage.py": None}, None),
    ],
)
def test_django_app_collects_static_files_in_the_build(files, collects):
    files = {"Procfile": "web: gunicorn site_config.wsgi", **files}
    if collects is None:  # a malformed pyproject.toml is still reported as such
        with pytest.raises(BuildError, match="not valid TOML"):
            plan(files)
        return
    lines = plan(files).dockerfile.splitlines()
    if not collects:
        assert COLLECTSTATIC not in lines
        return
    # After the code is copied (it needs the settings and the apps), before the app user, so that
    # STATIC_ROOT is written in the image and the code-only layer cache is unchanged above it.
    copy_all = lines.index("COPY --chown=1000:1000 . /app")
    assert copy_all < lines.index(COLLECTSTATIC) < lines.index("USER 1000:1000")
