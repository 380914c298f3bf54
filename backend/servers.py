"""The four long-running platform processes, started without the admin CLI's typer.

`python -m backend api|pomegranate|gitd|ingress` (the Procfile's lines) come here straight from
backend/__main__.py: typer and click cost about 5 MB of every process's private memory, four
times over (issue 17); the other commands (`migrate`, `quota`, ...) are backend/admin_cli.py's.
Each function imports only its own server, so no process loads another's libraries.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def freeze_startup_objects() -> None:
    """Keep what a process made while starting (modules, the GraphQL schema, settings: about
    120,000 objects in the API) out of the garbage collector's generations.

    A full collection walked them all, tens of milliseconds with every request in flight paused,
    every few thousand requests: the p99 of the dashboard query (issue 17). They live as long as
    the process anyway (`gc.freeze`, as the CPython docs suggest for long-lived objects)."""
    gc.collect()
    gc.freeze()


def api() -> None:
    """Run the GraphQL API."""
    import uvicorn

    from backend.api.app import create_app
    from backend.settings import get_settings

    s = get_settings()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    app = create_app(s)  # made here, not by uvicorn's factory: the schema is frozen with the rest
    freeze_startup_objects()
    uvicorn.run(
        app,
        host=s.host,
        port=s.api_port,
        proxy_headers=bool(s.trusted_proxies),
        forwarded_allow_ips=s.trusted_proxies or None,
        log_level="info",
    )


def pomegranate() -> None:
    """Run Pomegranate, the deployment manager (gRPC, the only process that talks to Docker)."""
    from backend.pomegranate.server import serve

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    freeze_startup_objects()
    asyncio.run(serve())


def ingress() -> None:
    """Run the embedded ingress: routes app hostnames to containers, from their labels."""
    from backend.ingress.server import serve

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    freeze_startup_objects()
    asyncio.run(serve())


def gitd() -> None:
    """Run gitd, the SSH server of `git push` (deploys) and `git fetch`/`git clone`."""
    from gitd.server import serve

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # several lines per connection
    freeze_startup_objects()
    asyncio.run(serve())


SERVERS: dict[str, Callable[[], None]] = {
    "api": api,
    "pomegranate": pomegranate,
    "gitd": gitd,
    "ingress": ingress,
}
