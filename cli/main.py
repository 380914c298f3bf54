"""Entry point of the `paastech` command. The user commands arrive with the CLI issue (#6)."""

from __future__ import annotations

from importlib.metadata import version

import typer

app = typer.Typer(
    help="PaaSTech: git push to deploy. (Account, project and deploy commands: coming with #6.)",
    no_args_is_help=True,
)


@app.callback()
def main() -> None:
    """PaaSTech: git push to deploy."""


@app.command("version")
def show_version() -> None:
    """Print the installed PaaSTech version."""
    typer.echo(f"paastech {version('paastech')}")


if __name__ == "__main__":
    app()
