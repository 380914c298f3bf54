"""Entry point of the `paastech` command (console script `paastech = "cli.main:app"`).

The typer app lives in cli/app.py; each topic registers its commands on it when imported here.
Shell completion: `paastech completion bash|zsh|fish` (cli/completion.py).
"""

from __future__ import annotations

import importlib
from importlib.metadata import version

from cli import aliases, completion
from cli.app import app

# Imported in this order, so that `--help` lists the topics in it. A new topic adds its module
# name here.
TOPICS = (
    "account",
    "activity",
    "quotas",
    "keys",
    "projects",
    "releases",
    "run",
    "settings",
    "volumes",
    "addons",
    "logs",
    "nodes",
    "metrics",
    "help",
)
for _topic in TOPICS:
    importlib.import_module(f"cli.commands.{_topic}")
completion.register(app)


@app.command("version", rich_help_panel="Other")
def show_version() -> None:
    """Print the installed PaaSTech version."""
    print(f"paastech {version('paastech')}")


aliases.register(app)  # last: aliases copy the commands registered above

if __name__ == "__main__":
    app(prog_name="paastech")
