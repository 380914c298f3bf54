"""Platform process entry points: `python -m backend migrate|api|pomegranate|export-schema`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer
import uvicorn

from backend.settings import get_settings

cli = typer.Typer(no_args_is_help=True, add_completion=False)


@cli.command()
def migrate() -> None:
    """Apply pending database migrations."""
    from backend.db.config import migrate as run

    asyncio.run(run())
    typer.echo(f"database migrated: {get_settings().db_url.split('@')[-1]}")


@cli.command()
def api() -> None:
    """Run the GraphQL API."""
    s = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    uvicorn.run(
        "backend.api.app:create_app",
        factory=True,
        host=s.host,
        port=s.api_port,
        proxy_headers=bool(s.trusted_proxies),
        forwarded_allow_ips=s.trusted_proxies or None,
        log_level="info",
    )


@cli.command()
def pomegranate() -> None:
    """Run Pomegranate, the deployment manager (gRPC, the only process that talks to Docker)."""
    from backend.pomegranate.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health probe otherwise
    asyncio.run(serve())


@cli.command()
def ingress() -> None:
    """Run the embedded ingress: routes app hostnames to containers, from their labels."""
    from backend.ingress.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve())


@cli.command()
def gitd() -> None:
    """Run gitd, the SSH server of `git push` (deploys) and `git fetch`/`git clone`."""
    from gitd.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # several lines per connection
    asyncio.run(serve())


@cli.command()
def supervise(
    procfile: Path = Path("Procfile"), config_only: bool = typer.Option(False, "--config-only")
) -> None:
    """Run every Procfile line under supervisord (restarts crashed processes); `make up` uses it."""
    from backend import supervise as sup

    layout = sup.Layout.for_data_dir(procfile.resolve().parent, get_settings().data_dir)
    try:
        config = sup.write_config(procfile, layout)
    except (OSError, ValueError) as exc:
        typer.echo(f"cannot supervise {procfile}: {exc}", err=True)
        raise typer.Exit(2) from None
    if config_only:
        typer.echo(str(config))
        return
    sup.exec_supervisord(config)


@cli.command("export-schema")
def export_schema(path: Path = Path("schema.graphql")) -> None:
    """Write the GraphQL schema in SDL (schema.graphql is kept in sync by a test)."""
    from backend.api.schema import build_schema

    path.write_text(build_schema().as_str() + "\n")
    typer.echo(f"wrote {path}")


if __name__ == "__main__":
    cli()
