"""Shell completion for bash, zsh and fish, colons included.

`paastech completion bash|zsh|fish` prints a script to source. The script asks
`paastech __complete WORD... CURRENT` for candidates, one per line. `__complete` is handled
before click parses anything (App.__call__), so that options among the words are data.

Bash splits words at ':' (COMP_WORDBREAKS), so `env:set` arrives as `env`, `:`, `set`: the bash
function joins such pieces back before asking, then trims the part before the last ':' from the
answers, as bash only replaces what follows it.

Project names, process types, release numbers and env var names come from the API, cached for
CACHE_SECONDS in `~/.cache/paastech/completion.json`; a lookup gives up after LOOKUP_SECONDS
(`PAASTECH_COMPLETION_TIMEOUT` overrides it) so that a slow or unreachable API never blocks the
shell (it completes nothing instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import time
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cli import config
from cli.client import EXIT_USAGE, Api, CliError

CACHE_SECONDS = 30.0
LOOKUP_SECONDS = 2.0
TIMEOUT_ENV = "PAASTECH_COMPLETION_TIMEOUT"
PROJECT_OPTS = ("-p", "--project", "-a", "--app")
SHELLS = ("bash", "zsh", "fish")

BASH = r"""# paastech completion for bash: eval "$(paastech completion bash)" in ~/.bashrc
_paastech_complete() {
    local -a words=()
    local i w
    # Join what bash split at ':' (env:set arrives as env : set).
    for ((i = 1; i <= COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        if ((${#words[@]} > 0)) && [[ "$w" == ":" || "${COMP_WORDS[i-1]}" == ":" ]]; then
            words[${#words[@]}-1]+="$w"
        else
            words+=("$w")
        fi
    done
    ((${#words[@]} == 0)) && words=("")
    local cur="${words[${#words[@]}-1]}"
    local -a cands=()
    mapfile -t cands < <(command paastech __complete "${words[@]}" 2>/dev/null)
    # bash replaces only what follows the last ':' of the word: trim what precedes it.
    if [[ "$cur" == *:* && "$COMP_WORDBREAKS" == *:* ]]; then
        local prefix="${cur%"${cur##*:}"}"
        for i in "${!cands[@]}"; do cands[i]="${cands[i]#"$prefix"}"; done
    fi
    COMPREPLY=("${cands[@]}")
    # TYPE= waits for its number: no space after it.
    if ((${#COMPREPLY[@]} == 1)) && [[ "${COMPREPLY[0]}" == *= ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}
complete -F _paastech_complete paastech
"""

ZSH = r"""#compdef paastech
# paastech completion for zsh: eval "$(paastech completion zsh)" in ~/.zshrc (after compinit)
_paastech() {
    local -a cands
    cands=("${(@f)$(command paastech __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    cands=(${cands:#})
    # compadd, not _describe: candidates contain ':' (env:set).
    compadd -Q -- "${cands[@]}"
}
compdef _paastech paastech
"""

FISH = r"""# paastech completion for fish: paastech completion fish | source
complete -c paastech -f \
    -a '(paastech __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}


def register(app: typer.Typer) -> None:
    @app.command("completion", rich_help_panel="Other")
    def completion(
        shell: Annotated[
            str, typer.Argument(metavar="SHELL", help="bash, zsh or fish.", show_default=False)
        ],
    ) -> None:
        """Print the completion script of a shell: eval "$(paastech completion bash)" in
        ~/.bashrc (zsh: ~/.zshrc; fish: paastech completion fish | source)."""
        if shell not in SCRIPTS:
            raise CliError(
                f"no completion for {shell!r}: choose bash, zsh or fish", EXIT_USAGE, "USAGE"
            )
        sys.stdout.write(SCRIPTS[shell])


# ------------------------------------------------------------------------------ candidates


def main(words: list[str]) -> int:
    """`paastech __complete WORD... CURRENT`: print the candidates for CURRENT."""
    with contextlib.suppress(Exception):  # completion must never print a traceback
        for candidate in candidates(words or [""]):
            sys.stdout.write(candidate + "\n")
    return 0


def _group() -> TyperGroup:
    import cli.main  # noqa: F401  # importing main registers the commands (and aliases)
    from cli.app import app

    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group


def _option_names(command: Any) -> list[str]:
    names: list[str] = []
    for param in command.params:
        if param.param_type_name == "option" and not getattr(param, "hidden", False):
            names += [o for o in param.opts + param.secondary_opts if o.startswith("--")]
    return [*names, "--help"]


def candidates(words: list[str]) -> list[str]:
    *before, cur = words
    group = _group()
    api_url = os.environ.get(config.API_URL_ENV, "").strip() or config.DEFAULT_API_URL
    name: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(before):
        word = before[i]
        if word == "--api" and i + 1 < len(before):
            api_url = before[i + 1]
            i += 2
            continue
        if word.startswith("--api="):
            api_url = word.split("=", 1)[1]
        elif not word.startswith("-"):
            name, rest = word, before[i + 1 :]
            break
        i += 1
    if name is None:
        if cur.startswith("-"):
            return _match(["--api", "--version", "--help"], cur)
        visible = [n for n, c in group.commands.items() if not c.hidden]
        hidden = [n for n, c in group.commands.items() if c.hidden]
        # Heroku's names complete too, but only once nothing visible matches.
        return _match(visible, cur) or _match(hidden, cur)
    command = group.commands.get(name)
    if command is None:
        return []
    prev = rest[-1] if rest else ""
    if prev in PROJECT_OPTS:
        return _match(_lookup(api_url, "projects", None), cur)
    if cur.startswith("-"):
        return _match(_option_names(command), cur)
    from cli.aliases import ALIASES

    target = ALIASES.get(name, command.name or name)  # Heroku's ps:restart completes as restart
    project = _project(rest)
    if target == "scale":
        return _match([f"{t}=" for t in _lookup(api_url, "processes", project)], cur)
    if target == "restart" and not _positionals(rest):  # `restart web` takes one PROCESS
        return _match(_lookup(api_url, "processes", project), cur)
    if target == "rollback" or (target == "logs" and ("--build" in rest or "-b" in rest)):
        return _match([f"v{n}" for n in _lookup(api_url, "releases", project)], cur)
    if target in ("env:get", "env:unset"):
        return _match(_lookup(api_url, "env", project), cur)
    if target == "help":
        return _match([*(n for n, c in group.commands.items() if not c.hidden), "aliases"], cur)
    if target == "completion":
        return _match(list(SHELLS), cur)
    return []


def _positionals(rest: list[str]) -> list[str]:
    """The arguments already typed that are neither options nor a project option's value."""
    return [
        w
        for i, w in enumerate(rest)
        if not w.startswith("-") and (i == 0 or rest[i - 1] not in PROJECT_OPTS)
    ]


def _match(values: list[str], cur: str) -> list[str]:
    return [v for v in values if v.startswith(cur)]


def _project(rest: list[str]) -> str | None:
    for i, word in enumerate(rest[:-1]):
        if word in PROJECT_OPTS:
            return rest[i + 1]
    for word in rest:
        for opt in ("--project=", "--app="):
            if word.startswith(opt):
                return word[len(opt) :]
    from cli import gitremote

    with contextlib.suppress(Exception):
        url = gitremote.remote_url() if gitremote.in_work_tree() else None
        return gitremote.project_from_url(url) if url else None
    return None


# ------------------------------------------------------------------------------ lookups


def _cache_path() -> Any:
    return config.cache_dir() / "completion.json"


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(data: dict[str, Any]) -> None:
    path = _cache_path()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)


def lookup_seconds() -> float:
    """LOOKUP_SECONDS, or PAASTECH_COMPLETION_TIMEOUT when it is a positive number (a bad value
    is ignored: completion must never fail the shell)."""
    try:
        value = float(os.environ.get(TIMEOUT_ENV, ""))
    except ValueError:
        return LOOKUP_SECONDS
    return value if 0 < value < float("inf") else LOOKUP_SECONDS


def _lookup(api_url: str, kind: str, project: str | None) -> list[str]:
    """Names from the API, cached briefly; [] when it cannot answer within LOOKUP_SECONDS."""
    if kind != "projects" and not project:
        return []
    token = config.env_token()
    if not token:
        creds = config.load(api_url)
        token = creds.token if creds else None
    if not token:
        return []
    # The token is part of the key (hashed): another account never sees these names.
    digest = hashlib.sha256(f"{api_url}\0{token}".encode()).hexdigest()[:16]
    key = f"{digest}:{kind}:{project or ''}"
    cache = _read_cache()
    entry = cache.get(key)
    now = time.time()
    if isinstance(entry, dict) and now - float(entry.get("at", 0)) < CACHE_SECONDS:
        return [str(v) for v in entry.get("values", [])]
    seconds = lookup_seconds()
    try:
        values = asyncio.run(
            asyncio.wait_for(_fetch(Api(api_url, token, seconds), kind, project), seconds)
        )
    except Exception:
        return []
    cache = {k: v for k, v in cache.items() if now - float(v.get("at", 0)) < CACHE_SECONDS}
    cache[key] = {"at": now, "values": values}
    _write_cache(cache)
    return values


async def _fetch(api: Api, kind: str, project: str | None) -> list[str]:
    if kind == "projects":
        return [p["name"] for p in (await api.execute("Projects"))["projects"]]
    if kind == "processes":
        settings = (await api.execute("Resources", project=project))["project"]["settings"]
        return [r["processType"] for r in settings["replicas"]]
    if kind == "releases":
        data = (await api.execute("Releases", project=project, first=20))["project"]
        return [str(a["number"]) for a in data["applications"]]
    if kind == "env":
        # Only the names are kept (never the values).
        return [
            v["key"] for v in (await api.execute("EnvVars", project=project))["project"]["envVars"]
        ]
    return []
