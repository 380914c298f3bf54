"""`python -m backend COMMAND`: a server (api, pomegranate, gitd, ingress) or an admin command.

A server starts straight from backend/servers.py, without loading the admin CLI's typer (about
5 MB in each of the four processes, issue 17); anything else is backend/admin_cli.py's. A bad
PAASTECH_ variable stops either with one line naming it, not a traceback."""

from __future__ import annotations

import sys

from backend.servers import SERVERS
from backend.settings import SettingsError

try:
    if len(sys.argv) == 2 and sys.argv[1] in SERVERS:
        SERVERS[sys.argv[1]]()
    else:
        from backend.admin_cli import cli

        cli()
except SettingsError as exc:
    sys.exit(f"paastech: {exc}")
