"""Stack detection and Dockerfile generation from the files at the root of a source tree.

Detection order (first match wins):

1. ``Dockerfile``: used as is; its ``EXPOSE`` port (if any) is reported.
2. ``Procfile`` + ``requirements.txt`` or ``pyproject.toml``: Python.
3. ``package.json``: Node.
4. ``requirements.txt`` or ``pyproject.toml`` without a Procfile: a clear error asking for one
   (no rule guesses a Python app's WSGI/ASGI module reliably).
5. ``index.html``: a static site served by busybox httpd.

Generated Dockerfiles install dependencies in a layer of their own, before the code is copied, so
that a push that changes only code reuses the cached dependency layer. Python apps install into a
virtualenv at /opt/venv (never into Debian's Python). Runtime versions (``.python-version``,
``runtime.txt``, ``engines.node``) pick among the platform's base images (settings
python_runtimes/node_runtimes); an unavailable version fails with the list. Images run as uid 1000.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field

from backend.pomegranate.procfile import parse_procfile
from backend.pomegranate.runtime import BuildError
from backend.settings import Settings, get_settings

DOCKERFILE = "Dockerfile"
PROCFILE = "Procfile"
REQUIREMENTS = "requirements.txt"
PYPROJECT = "pyproject.toml"
UV_LOCK = "uv.lock"
POETRY_LOCK = "poetry.lock"
PYTHON_VERSION = ".python-version"
RUNTIME_TXT = "runtime.txt"
PACKAGE_JSON = "package.json"
NODE_LOCKFILES = ("package-lock.json", "npm-shrinkwrap.json")
YARN_LOCK = "yarn.lock"
PNPM_LOCK = "pnpm-lock.yaml"
INDEX_HTML = "index.html"
MANAGE_PY = "manage.py"

# Root files whose content detection needs; every other root file only needs to be named.
FILES_TO_READ = frozenset(
    {DOCKERFILE, PROCFILE, REQUIREMENTS, PYPROJECT, PACKAGE_JSON, PYTHON_VERSION, RUNTIME_TXT}
)

APP_USER = "1000:1000"
VENV = "/opt/venv"
# Lock-file tools (uv, poetry) live in a virtualenv of their own, so they never end up among the
# app's packages.
TOOLS_VENV = "/opt/paastech-tools"

NOTHING_RECOGNISED = (
    "no Dockerfile, Procfile with requirements.txt/pyproject.toml, package.json or index.html "
    "found at the root of the repository"
)
PYTHON_NEEDS_PROCFILE = (
    "a Python app needs a Procfile naming its web process, e.g. "
    "'web: gunicorn app:app --bind 0.0.0.0:$PORT' (Flask, Django's project.wsgi) or "
    "'web: uvicorn main:app --host 0.0.0.0 --port $PORT' (FastAPI)"
)


@dataclass(slots=True)
class BuildPlan:
    stack: str  # "dockerfile" | "python" | "node" | "static"
    dockerfile: str | None  # generated Dockerfile text; None: the user's own Dockerfile is used
    # process type -> command (run with /bin/sh -c); None means the image's own CMD/ENTRYPOINT.
    processes: dict[str, str | None] = field(default_factory=dict)
    exposed_port: int | None = None  # from the user's Dockerfile EXPOSE


def _text(value: str | bytes | None, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            raise BuildError(name, f"{name} is not valid UTF-8") from None
    return value.removeprefix("\ufeff")


def _procfile(files: Mapping[str, str | bytes | None]) -> dict[str, str | None]:
    try:
        return dict(parse_procfile(_text(files[PROCFILE], PROCFILE)))
    except ValueError as exc:
        raise BuildError(PROCFILE, str(exc)) from None


def _logical_lines(text: str) -> list[str]:
    """Dockerfile lines with comments dropped and backslash continuations joined."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def exposed_port(dockerfile: str) -> int | None:
    """The first literal TCP port of the Dockerfile's EXPOSE instructions, if any."""
    for line in _logical_lines(dockerfile):
        parts = line.split()
        if len(parts) < 2 or parts[0].upper() != "EXPOSE":
            continue
        for item in parts[1:]:
            port, _, proto = item.partition("/")
            if proto and proto.lower() != "tcp":
                continue
            if port.isdigit() and 0 < int(port) < 65536:
                return int(port)
    return None


def requirement_lines(text: str) -> list[str]:
    """Real requirement lines of a requirements file (comments and blank lines dropped)."""
    result = []
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line:
            result.append(line)
    return result


def runtime_table(spec: str) -> dict[str, str]:
    """Parse a ``version=image,version=image`` setting (the first entry is the default)."""
    table: dict[str, str] = {}
    for item in spec.split(","):
        version, sep, image = item.strip().partition("=")
        if sep and version.strip() and image.strip():
            table[version.strip()] = image.strip()
    return table


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _unavailable(what: str, source: str, wanted: str, table: Mapping[str, str]) -> BuildError:
    available = ", ".join(sorted(table, key=_version_key))
    return BuildError(
        source, f"{what} {wanted!r} (from {source}) is not available; available: {available}"
    )


def python_version_request(files: Mapping[str, str | bytes | None]) -> tuple[str, str] | None:
    """(requested version, file naming it) from .python-version or runtime.txt, if any."""
    for name in (PYTHON_VERSION, RUNTIME_TXT):
        if name not in files:
            continue
        lines = [
            line.strip()
            for line in _text(files[name], name).splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        if not lines:
            raise BuildError(name, f"{name} is empty: write a version such as 3.11")
        wanted = lines[0].removeprefix("python-").removeprefix("python")
        if not re.fullmatch(r"3(\.\d+){0,2}", wanted):
            raise BuildError(name, f"{name}: {lines[0]!r} is not a CPython 3 version such as 3.11")
        return wanted, name
    return None


def select_python(files: Mapping[str, str | bytes | None], settings: Settings) -> str:
    """The base image for the requested Python version (major.minor; the patch level is
    Debian's), or the default image when nothing is requested."""
    table = runtime_table(settings.python_runtimes)
    request = python_version_request(files)
    if request is None:
        return settings.python_base_image
    wanted, source = request
    parts = wanted.split(".")
    matches = [v for v in table if v.split(".")[: len(parts[:2])] == parts[:2]]
    if not matches:
        raise _unavailable("Python", source, wanted, table)
    return table[max(matches, key=_version_key)]


_COMPARATOR = re.compile(r"^(\^|~|>=|<=|>|<|=)?v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?")


def _satisfies_one(version: tuple[int, int, int], comparator: str) -> bool:
    match = _COMPARATOR.match(comparator)
    if not match or match.group(0) != comparator.split("-")[0]:
        raise ValueError(comparator)
    op = match.group(1) or "="
    raw = [p for p in match.group(2, 3, 4) if p is not None]
    wild = next((i for i, p in enumerate(raw) if not p.isdigit()), len(raw))
    fixed = [int(p) for p in raw[:wild]]
    if not fixed:
        return True  # "*" / "x"
    low = (*fixed, *[0] * (3 - len(fixed)))
    if op == "=" and len(fixed) < 3:  # "18", "18.x", "18.2": a range on the given parts
        return version[: len(fixed)] == tuple(fixed)
    if op == "^":
        upper_index = next((i for i, p in enumerate(low) if p != 0), len(fixed) - 1)
        upper_index = min(upper_index, len(fixed) - 1)
        upper = list(low[: upper_index + 1])
        upper[-1] += 1
        return low <= version and version[: upper_index + 1] < tuple(upper)
    if op == "~":
        keep = 2 if len(fixed) >= 2 else 1
        return low <= version and version[:keep] == tuple(low[:keep])
    return {
        "=": version == low,
        ">=": version >= low,
        ">": version > low if len(fixed) == 3 else version[: len(fixed)] > tuple(fixed),
        "<=": version <= low if len(fixed) == 3 else version[: len(fixed)] <= tuple(fixed),
        "<": version < low,
    }[op]


def node_satisfies(version: str, spec: str) -> bool:
    """Whether ``version`` (x.y.z) satisfies an npm semver range (``||``, space-joined
    comparators, ``^``, ``~``, x-ranges, ``a - b``). Raises ValueError on a range it can't read."""
    parts = [*_version_key(version), 0, 0, 0][:3]
    current = (parts[0], parts[1], parts[2])
    for alternative in spec.split("||"):
        alternative = re.sub(r"(\^|~|>=|<=|>|<|=)\s+", r"\1", alternative.strip())
        hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", alternative)
        comparators = (
            [f">={hyphen.group(1)}", f"<={hyphen.group(2)}"] if hyphen else alternative.split()
        )
        if all(_satisfies_one(current, c) for c in comparators or ["*"]):
            return True
    return False


def select_node(package: Mapping[str, object], settings: Settings) -> str:
    table = runtime_table(settings.node_runtimes)
    engines = package.get("engines")
    wanted = engines.get("node") if isinstance(engines, dict) else None
    if wanted is None:
        return settings.node_base_image
    if not isinstance(wanted, str):
        raise BuildError(PACKAGE_JSON, 'engines.node must be a string such as ">=18"')
    try:
        matches = [v for v in table if node_satisfies(v, wanted)]
    except ValueError:
        raise BuildError(
            PACKAGE_JSON, f'engines.node {wanted!r} is not a version range such as ">=18"'
        ) from None
    if not matches:
        raise _unavailable("Node", f"{PACKAGE_JSON} engines.node", wanted, table)
    return table[max(matches, key=_version_key)]


_DJANGO = re.compile(r"^django(?![\w.-])", re.IGNORECASE)


def uses_django(files: Mapping[str, str | bytes | None]) -> bool:
    """Whether Django is a declared dependency: a requirements.txt line, a PEP 621 dependency or a
    Poetry dependency named `django` (not `django-something`)."""
    if REQUIREMENTS in files:
        names = requirement_lines(_text(files[REQUIREMENTS], REQUIREMENTS))
    else:
        try:
            pyproject = tomllib.loads(_text(files.get(PYPROJECT), PYPROJECT))
        except tomllib.TOMLDecodeError:
            return False  # _python reports the malformed file
        deps = pyproject.get("project", {}).get("dependencies", [])
        poetry = pyproject.get("tool", {}).get("poetry", {}).get("dependencies", {})
        names = [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []
        names += list(poetry) if isinstance(poetry, dict) else []
    return any(_DJANGO.match(name.strip()) for name in names)


def _python(files: Mapping[str, str | bytes | None], settings: Settings) -> BuildPlan:
    processes = _procfile(files)
    image = select_python(files, settings)
    lines = [
        f"FROM {image}",
        "ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "
        f"VIRTUAL_ENV={VENV} PATH={VENV}/bin:$PATH",
        # A virtualenv of its own: the image's Debian Python stays untouched (PEP 668). The
        # platform's Python images carry it pre-made (scripts/base-images.sh); another image
        # (an operator's runtime, an image of an older revision) gets it made here.
        f"RUN [ -x {VENV}/bin/python ] || python3 -m venv {VENV}",
        "WORKDIR /app",
    ]
    pip = "pip install --no-cache-dir"
    if REQUIREMENTS in files:
        if requirement_lines(_text(files[REQUIREMENTS], REQUIREMENTS)):
            lines.append(f"COPY {REQUIREMENTS} /app/{REQUIREMENTS}")
            lines.append(f"RUN {pip} -r {REQUIREMENTS}")
    else:
        try:
            pyproject = tomllib.loads(_text(files[PYPROJECT], PYPROJECT))
        except tomllib.TOMLDecodeError as exc:
            raise BuildError(PYPROJECT, f"{PYPROJECT} is not valid TOML: {exc}") from None
        deps = pyproject.get("project", {}).get("dependencies", [])
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise BuildError(PYPROJECT, "[project].dependencies must be a list of strings")
        tools = f"python3 -m venv {TOOLS_VENV} && {TOOLS_VENV}/bin/{pip}"
        if UV_LOCK in files:
            # The lock file names the tool: uv installs exactly what uv.lock pins.
            lines.append(f"COPY {PYPROJECT} {UV_LOCK} /app/")
            lines.append(
                f"RUN {tools} uv && UV_PROJECT_ENVIRONMENT={VENV} {TOOLS_VENV}/bin/uv sync "
                "--frozen --no-dev --no-install-project --no-cache"
            )
        elif POETRY_LOCK in files:
            # Poetry installs into the active virtualenv (VIRTUAL_ENV) rather than its own.
            lines.append(f"COPY {PYPROJECT} {POETRY_LOCK} /app/")
            lines.append(
                f"RUN {tools} poetry && {TOOLS_VENV}/bin/poetry install --only main --no-root "
                "--no-interaction --no-cache"
            )
        elif deps:
            # The dependency list is part of the instruction, so the layer is cached until it
            # changes, without copying pyproject.toml (which changes for other reasons too).
            lines.append(f"RUN {pip} {' '.join(shlex.quote(d) for d in deps)}")
    lines.append(f"COPY --chown={APP_USER} . /app")
    if MANAGE_PY in files and uses_django(files):
        # Heroku's rule: a Django app (manage.py at the root, Django among the dependencies) gets
        # its static files collected at build time, into the image, for whitenoise or the like.
        # It runs without the app's env (builds never see it), so the settings need defaults.
        lines.append(f"RUN python {MANAGE_PY} collectstatic --noinput")
    lines.append(f"USER {APP_USER}")
    return BuildPlan(stack="python", dockerfile="\n".join(lines) + "\n", processes=processes)


def _node_install(files: Mapping[str, str | bytes | None], package: Mapping[str, object]) -> str:
    """The install command for the lock file present: npm, yarn or pnpm (installed from the npm
    registry, at the version package.json's packageManager names when it does)."""
    manager = package.get("packageManager")
    name, _, version = str(manager).partition("@") if isinstance(manager, str) else ("", "", "")
    version = version.split("+")[0]  # drop corepack's "+sha512..." hash
    if YARN_LOCK in files or name == "yarn":
        if version and not version.startswith("1."):
            # Yarn 2+ is not published as the npm "yarn" package: corepack fetches it.
            setup = "npm install -g --no-fund --no-audit corepack && corepack enable yarn"
            return f"{setup} && yarn workspaces focus --all --production && yarn cache clean"
        setup = f"npm install -g --no-fund --no-audit yarn@{shlex.quote(version or '1')}"
        return (
            f"{setup} && yarn install --frozen-lockfile --production --non-interactive "
            "&& yarn cache clean"
        )
    if PNPM_LOCK in files or name == "pnpm":
        setup = f"npm install -g --no-fund --no-audit pnpm@{shlex.quote(version or '9')}"
        return f"{setup} && pnpm install --frozen-lockfile --prod && pnpm store prune"
    if any(lock in files for lock in NODE_LOCKFILES):
        return "npm ci --omit=dev --no-fund --no-audit && npm cache clean --force"
    return "npm install --omit=dev --no-fund --no-audit && npm cache clean --force"


def _node(files: Mapping[str, str | bytes | None], settings: Settings) -> BuildPlan:
    try:
        package = json.loads(_text(files[PACKAGE_JSON], PACKAGE_JSON) or "{}")
    except json.JSONDecodeError as exc:
        raise BuildError(PACKAGE_JSON, f"{PACKAGE_JSON} is not valid JSON: {exc}") from None
    if not isinstance(package, dict):
        raise BuildError(PACKAGE_JSON, f"{PACKAGE_JSON} must hold a JSON object")
    if PROCFILE in files:
        processes = _procfile(files)
    else:
        scripts = package.get("scripts") or {}
        start = scripts.get("start") if isinstance(scripts, dict) else None
        if not start and "server.js" not in files:
            raise BuildError(
                PACKAGE_JSON,
                'package.json has no "start" script, and there is no server.js or Procfile',
            )
        # The start script itself (what `npm start` runs), so images without npm work too.
        processes = {"web": str(start) if start else "node server.js"}
    image = select_node(package, settings)
    lines = [
        f"FROM {image}",
        "ENV NODE_ENV=production",
        "WORKDIR /app",
    ]
    if package.get("dependencies"):
        locks = [n for n in (*NODE_LOCKFILES, YARN_LOCK, PNPM_LOCK) if n in files]
        manifests = " ".join([PACKAGE_JSON, *locks])
        lines.append(f"COPY {manifests} /app/")
        lines.append(f"RUN {_node_install(files, package)}")
    lines += [
        "ENV PATH=/app/node_modules/.bin:$PATH",
        f"COPY --chown={APP_USER} . /app",
        f"USER {APP_USER}",
        f"CMD {json.dumps(['/bin/sh', '-c', processes.get('web') or 'node server.js'])}",
    ]
    return BuildPlan(stack="node", dockerfile="\n".join(lines) + "\n", processes=processes)


STATIC_COMMAND = 'exec busybox httpd -f -p "${PORT:-5000}" -h /srv'


def _static(files: Mapping[str, str | bytes | None], settings: Settings) -> BuildPlan:
    processes: dict[str, str | None] = (
        _procfile(files) if PROCFILE in files else {"web": STATIC_COMMAND}
    )
    lines = [
        f"FROM {settings.static_base_image}",
        f"COPY --chown={APP_USER} . /srv",
        f"USER {APP_USER}",
        f'CMD ["/bin/sh", "-c", {json.dumps(STATIC_COMMAND)}]',
    ]
    return BuildPlan(stack="static", dockerfile="\n".join(lines) + "\n", processes=processes)


def plan_build(
    root_files: Mapping[str, str | bytes | None], settings: Settings | None = None
) -> BuildPlan:
    """Detect the stack of a source tree and plan its build.

    ``root_files`` maps every file name at the root of the tree to its content; only the names in
    FILES_TO_READ need content (others may map to None). Raises BuildError when nothing is
    recognised or a recognised file is malformed.
    """
    settings = settings or get_settings()
    if DOCKERFILE in root_files:
        processes: dict[str, str | None] = (
            _procfile(root_files) if PROCFILE in root_files else {"web": None}
        )
        return BuildPlan(
            stack="dockerfile",
            dockerfile=None,
            processes=processes,
            exposed_port=exposed_port(_text(root_files[DOCKERFILE], DOCKERFILE)),
        )
    if PROCFILE in root_files and (REQUIREMENTS in root_files or PYPROJECT in root_files):
        return _python(root_files, settings)
    if PACKAGE_JSON in root_files:
        return _node(root_files, settings)
    if REQUIREMENTS in root_files or PYPROJECT in root_files:
        raise BuildError(PROCFILE, PYTHON_NEEDS_PROCFILE)
    if INDEX_HTML in root_files:
        return _static(root_files, settings)
    raise BuildError(None, NOTHING_RECOGNISED)
