"""The Swarm's nodes, for the platform operator (issue 16): `nodes`, `nodes:add` (prints the
join command), `nodes:drain NODE`, `nodes:activate NODE`, `nodes:remove NODE`. They need the
operator token (PAASTECH_OPERATOR_TOKEN, the API's operator_token), not a Client login."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cli import output
from cli.app import JsonOpt, app, run, state
from cli.client import Api, CliError

PANEL = "Operator"
OPERATOR_ENV = "PAASTECH_OPERATOR_TOKEN"
NodeArg = Annotated[str, typer.Argument(metavar="NODE", help="The node's id or hostname.")]


def operator() -> Api:
    """The API with the operator token; exit 3 without one."""
    found = os.environ.get(OPERATOR_ENV, "").strip()
    if not found:
        raise CliError(
            f"node commands are for the platform operator: set {OPERATOR_ENV} "
            "(the API server's operator_token)",
            3,
            "FORBIDDEN",
        )
    return Api(state.api_url, operator_token=found)


def _gib(size: float) -> str:
    return f"{size / 1024**3:.1f} GiB"


@app.command("nodes", rich_help_panel=PANEL)
def nodes(as_json: JsonOpt = False) -> None:
    """List the Swarm's nodes: state, availability, tasks and resources."""
    found = run(operator().execute("Nodes"))["nodes"]
    if as_json:
        output.print_json(found)
        return
    output.table(
        ["hostname", "id", "role", "state", "availability", "address", "tasks", "cpus", "memory"],
        [
            [
                n["hostname"],
                n["id"][:12],
                n["role"] + (" (leader)" if n["leader"] else ""),
                n["state"],
                n["availability"],
                n["address"],
                n["tasks"],
                f"{n['cpus']:g}",
                _gib(n["memoryBytes"]),
            ]
            for n in found
        ],
    )


@app.command("nodes:add", rich_help_panel=PANEL)
def nodes_add() -> None:
    """Print the command a new machine runs to join the Swarm as a worker."""
    command = run(operator().execute("NodeJoinCommand"))["nodeJoinCommand"]
    output.say("On the new machine (Docker installed; ports 2377/tcp, 7946/tcp+udp and")
    output.say("4789/udp open between the nodes; the platform registry trusted), run:")
    typer.echo(command)


@app.command("nodes:drain", rich_help_panel=PANEL)
def nodes_drain(node: NodeArg, as_json: JsonOpt = False) -> None:
    """Drain a node: its tasks move to the other nodes; returns once none runs there."""
    drained = run(operator().execute("DrainNode", node=node))["drainNode"]
    if as_json:
        output.print_json(drained)
        return
    output.say(f"{drained['hostname']} drained: its tasks run on the other nodes")


@app.command("nodes:activate", rich_help_panel=PANEL)
def nodes_activate(node: NodeArg, as_json: JsonOpt = False) -> None:
    """Let the scheduler use a drained node again."""
    active = run(operator().execute("ActivateNode", node=node))["activateNode"]
    if as_json:
        output.print_json(active)
        return
    output.say(f"{active['hostname']} is {active['availability']}")


@app.command("nodes:remove", rich_help_panel=PANEL)
def nodes_remove(node: NodeArg) -> None:
    """Remove a drained worker from the Swarm (then run `docker swarm leave` on it)."""
    run(operator().execute("RemoveNode", node=node))
    output.say(f"{node} removed from the swarm")
