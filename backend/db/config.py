"""Tortoise ORM configuration, built from the settings."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise

from backend.settings import Settings, get_settings


def tortoise_config(settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or get_settings()
    return {
        "connections": {"default": settings.db_url},
        "apps": {
            "models": {
                "models": ["backend.db.models"],
                "default_connection": "default",
                "migrations": "backend.db.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# For the `tortoise` command line (makemigrations): `tortoise -c backend.db.config.TORTOISE_ORM`.
TORTOISE_ORM = tortoise_config()


def _ensure_data_dir(settings: Settings | None) -> None:
    (settings or get_settings()).data_dir.mkdir(parents=True, exist_ok=True)


async def init_db(settings: Settings | None = None) -> None:
    _ensure_data_dir(settings)
    # Global fallback: uvicorn runs the lifespan in another task than the requests; this is
    # what Tortoise's own Starlette/FastAPI integration does.
    await Tortoise.init(config=tortoise_config(settings), _enable_global_fallback=True)


async def migrate(settings: Settings | None = None) -> None:
    """Apply every pending migration (`python -m backend migrate`: `make up` and the tests)."""
    from tortoise.migrations.api import migrate as run_migrations

    _ensure_data_dir(settings)
    await run_migrations(config=tortoise_config(settings))
    await Tortoise.close_connections()


async def close_db() -> None:
    await Tortoise.close_connections()
