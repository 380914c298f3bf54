"""Stack detection and Dockerfile generation from the files at the root of a source tree.

Detection order (first match wins):

1. ``Dockerfile``: used as is; its ``EXPOSE`` port (if any) is reported.
2. ``Procfile`` + ``requirements.txt`` or ``pyproject.toml``: Python.
3. ``package.json``: Node.
4. ``index.html``: a static site served by busybox httpd.

Generated Dockerfiles install dependencies in a layer of their own, before the code is copied, so
that a push that changes only code reuses the cached dependency layer. Images run as uid 1000.
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
PACKAGE_JSON = "package.json"
NODE_LOCKFILES = ("package-lock.json", "npm-shrinkwrap.json")
INDEX_HTML = "index.html"

# Root files whose content detection needs; every other root file only needs to be named.
FILES_TO_READ = frozenset({DOCKERFILE, PROCFILE, REQUIREMENTS, PYPROJECT, PACKAGE_JSON})

APP_USER = "1000:1000"

NOTHING_RECOGNISED = (
    "no Dockerfile, Procfile with requirements.txt/pyproject.toml, package.json or index.html "
    "found at the root of the repository"
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


def _python(files: Mapping[str, str | bytes | None], settings: Settings) -> BuildPlan:
    processes = _procfile(files)
    lines = [
        f"FROM {settings.python_base_image}",
        "ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1",
        "WORKDIR /app",
    ]
    pip = "python3 -m pip install --no-cache-dir --break-system-packages"
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
        if deps:
            # The dependency list is part of the instruction, so the layer is cached until it
            # changes, without copying pyproject.toml (which changes for other reasons too).
            lines.append(f"RUN {pip} {' '.join(shlex.quote(d) for d in deps)}")
    lines += [f"COPY --chown={APP_USER} . /app", f"USER {APP_USER}"]
    return BuildPlan(stack="python", dockerfile="\n".join(lines) + "\n", processes=processes)


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
    lockfile = next((name for name in NODE_LOCKFILES if name in files), None)
    lines = [
        f"FROM {settings.node_base_image}",
        "ENV NODE_ENV=production",
        "WORKDIR /app",
    ]
    if package.get("dependencies"):
        manifests = " ".join([PACKAGE_JSON, *([lockfile] if lockfile else [])])
        lines.append(f"COPY {manifests} /app/")
        install = "npm ci --omit=dev" if lockfile else "npm install --omit=dev"
        lines.append(f"RUN {install} && npm cache clean --force")
    lines += [
        "ENV PATH=/app/node_modules/.bin:$PATH",
        f"COPY --chown={APP_USER} . /app",
        f"USER {APP_USER}",
        f"CMD {json.dumps(['/bin/sh', '-c', processes.get('web') or 'node server.js'])}",
    ]
    return BuildPlan(stack="node", dockerfile="\n".join(lines) + "\n", processes=processes)


STATIC_COMMAND = 'exec busybox httpd -f -p "${PORT:-5000}" -h /srv'


def _static(files: Mapping[str, str | bytes | None], settings: Settings) -> BuildPlan:
    processes = _procfile(files) if PROCFILE in files else {"web": STATIC_COMMAND}
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
    if INDEX_HTML in root_files:
        return _static(root_files, settings)
    raise BuildError(None, NOTHING_RECOGNISED)
