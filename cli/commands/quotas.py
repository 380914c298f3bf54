"""Quotas: what the logged-in Client may hold or use, and how much is in use (issue 11)."""

from __future__ import annotations

from cli import output
from cli.app import JsonOpt, app, authed, run

PANEL = "Account"


def _figure(value: float) -> str:
    # -1: unknown right now (volume_mb while the deployment manager is unreachable)
    return "unknown" if value < 0 else f"{value:g}"


@app.command("quotas", rich_help_panel=PANEL)
def quotas(as_json: JsonOpt = False) -> None:
    """Show your quotas: each limit and your current usage."""
    rows = run(authed().execute("Quotas"))["me"]["quotas"]
    if as_json:
        output.print_json(rows)
        return
    output.table(
        ["QUOTA", "LIMIT", "USED"],
        [(q["name"], _figure(q["limit"]), _figure(q["used"])) for q in rows],
    )
