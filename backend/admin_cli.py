"""The platform's admin commands: `python -m backend migrate|quota|supervise|export-schema|...`.

The server commands are listed here for `--help`; `python -m backend api` and the other servers
skip typer altogether (backend/__main__.py, backend/servers.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from backend import servers
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
    servers.api()


@cli.command()
def pomegranate() -> None:
    """Run Pomegranate, the deployment manager (gRPC, the only process that talks to Docker)."""
    servers.pomegranate()


@cli.command()
def ingress() -> None:
    """Run the embedded ingress: routes app hostnames to containers, from their labels."""
    servers.ingress()


@cli.command()
def gitd() -> None:
    """Run gitd, the SSH server of `git push` (deploys) and `git fetch`/`git clone`."""
    servers.gitd()


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


@cli.command()
def supervise(
    procfile: Path = Path("Procfile"), config_only: bool = typer.Option(False, "--config-only")
) -> None:
    """Run every Procfile line under runit (restarts crashed processes); `make up` uses it."""
    from backend import supervise as sup

    missing = sup.missing_tools()
    if missing and not config_only:
        tools = ", ".join(missing)
        typer.echo(f"cannot supervise: {tools} missing (apt-get install runit)", err=True)
        raise typer.Exit(2)
    layout = sup.Layout.for_data_dir(procfile.resolve().parent, get_settings().data_dir)
    try:
        services = sup.write_services(procfile, layout)
    except (OSError, ValueError) as exc:
        typer.echo(f"cannot supervise {procfile}: {exc}", err=True)
        raise typer.Exit(2) from None
    if config_only:
        typer.echo(str(services))
        return
    sup.exec_runsvdir(services)


@cli.command("export-schema")
def export_schema(path: Path = Path("schema.graphql")) -> None:
    """Write the GraphQL schema in SDL (schema.graphql is kept in sync by a test)."""
    from backend.api.schema import build_schema

    path.write_text(build_schema().as_str() + "\n")
    typer.echo(f"wrote {path}")


@cli.command("derive-key")
def derive_key(purpose: str) -> None:
    """Print the key derived for one purpose (internal-rpc for gitd, web-forwarding for the
    web app), so that a process can be given that key and not the master key."""
    from backend import security

    if purpose not in (security.INTERNAL_RPC, security.WEB_FORWARDING):
        typer.echo("derive-key: give internal-rpc or web-forwarding", err=True)
        raise typer.Exit(2)
    typer.echo(security.derive_key(purpose).hex())


@cli.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt env vars under a new master key (stop the platform first).

    With PAASTECH_SECRET_KEY set, the new key is read from PAASTECH_NEW_SECRET_KEY and you set
    PAASTECH_SECRET_KEY to it afterwards; otherwise a new DATA_DIR/secret.key is generated."""
    import os
    import secrets

    from backend.db.config import close_db, init_db
    from backend.keyrotation import reencrypt_all
    from backend.settings import write_private_file

    s = get_settings()
    old = s.resolved_secret_key()
    key_file = s.data_dir / "secret.key"
    if s.secret_key:
        new = os.environ.get("PAASTECH_NEW_SECRET_KEY", "").strip()
        if len(new) < 16 or new == old:
            typer.echo(
                "rotate-key: PAASTECH_SECRET_KEY is set: put a new key of at least 16 characters "
                "in PAASTECH_NEW_SECRET_KEY",
                err=True,
            )
            raise typer.Exit(2)
    else:
        new = secrets.token_urlsafe(48)
        # Kept next to the old key until the database is re-encrypted: a crash in between
        # leaves both keys on disk, never data under a key nobody has.
        write_private_file(key_file.with_name("secret.key.new"), new, replace=True)

    async def run() -> int:
        await init_db(s)
        try:
            return await reencrypt_all(old, new)
        finally:
            await close_db()

    count = asyncio.run(run())
    if s.secret_key:
        typer.echo(f"re-encrypted {count} values; now set PAASTECH_SECRET_KEY to the new key")
    else:
        key_file.with_name("secret.key.new").replace(key_file)
        typer.echo(f"re-encrypted {count} values; {key_file} holds the new key")
