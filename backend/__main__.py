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
def quota(
    username: str = typer.Argument(help="the Client's username"),
    name: str = typer.Argument("", help="the quota to override; empty: show them all"),
    limit: str = typer.Argument("", help="a number >= 0, or `default` to drop the override"),
) -> None:
    """Administrators: show a Client's quotas, or override one (issue 11)."""
    from backend.db.config import close_db, init_db
    from backend.db.models import Client
    from backend.errors import PaasError
    from backend.services import quotas

    async def run() -> None:
        await init_db()
        try:
            if name:
                if not limit:
                    raise typer.BadParameter("give the limit (a number, or `default`)")
                try:
                    value = None if limit == "default" else float(limit)
                except ValueError:
                    raise typer.BadParameter(f"{limit!r} is not a number") from None
                await quotas.set_override(username, name, value)
            client = await Client.get_or_none(username=username)
            if client is None:
                raise typer.BadParameter(f"no client {username!r}")
            for q in await quotas.usage(client):
                typer.echo(f"{q.name:<30} {q.limit:>12g} {q.used:>12g}")
        finally:
            await close_db()

    try:
        asyncio.run(run())
    except PaasError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


@cli.command("export-schema")
def export_schema(path: Path = Path("schema.graphql")) -> None:
    """Write the GraphQL schema in SDL (schema.graphql is kept in sync by a test)."""
    from backend.api.schema import build_schema

    path.write_text(build_schema().as_str() + "\n")
    typer.echo(f"wrote {path}")


if __name__ == "__main__":
    cli()
