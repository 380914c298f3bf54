"""Entry point of the `paastech` command (console script `paastech = "cli.main:app"`).

The typer app lives in cli/app.py; each topic registers its commands on it when imported here.
Shell completion: `paastech --install-completion` (typer's).
"""

from __future__ import annotations

import importlib
from importlib.metadata import version

from cli.app import app

# Imported in this order, so that `--help` lists the topics in it.
for _topic in ("account", "quotas", "keys", "projects", "releases", "settings", "logs"):
    importlib.import_module(f"cli.commands.{_topic}")


@app.command("version", rich_help_panel="Other")
def show_version() -> None:
    """Print the installed PaaSTech version."""
    print(f"paastech {version('paastech')}")


if __name__ == "__main__":
    app(prog_name="paastech")
