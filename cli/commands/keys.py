"""SSH keys: list, add, remove."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import output
from cli.app import JsonOpt, app, authed, run
from cli.client import EXIT_USAGE, CliError

PANEL = "SSH keys"
DEFAULT_KEYS = ("id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub")


def default_key() -> Path:
    ssh = Path.home() / ".ssh"
    for name in DEFAULT_KEYS:
        if (ssh / name).is_file():
            return ssh / name
    raise CliError(
        f"no public key found in {ssh} ({', '.join(DEFAULT_KEYS)}): give its path, or make one "
        "with `ssh-keygen -t ed25519`",
        EXIT_USAGE,
    )


@app.command("keys", rich_help_panel=PANEL)
def keys(as_json: JsonOpt = False) -> None:
    """List your SSH public keys."""
    rows = [
        {
            "id": k["id"],
            "title": k["title"],
            "fingerprint": k["fingerprint"],
            "createdAt": k["createdAt"],
        }
        for k in run(authed().execute("SshKeys"))["sshKeys"]
    ]
    if as_json:
        output.print_json(rows)
        return
    if not rows:
        output.note("no SSH keys yet: paastech keys:add")
        return
    output.table(
        ["id", "title", "fingerprint", "added"],
        [[r["id"], r["title"], r["fingerprint"], output.age(r["createdAt"])] for r in rows],
    )


@app.command("keys:add", rich_help_panel=PANEL)
def keys_add(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="A public key file; default the first of ~/.ssh/id_ed25519.pub, "
            "id_ecdsa.pub, id_rsa.pub.",
            show_default=False,
        ),
    ] = None,
    title: Annotated[
        str | None, typer.Option(metavar="TITLE", help="A title (default: the key's comment).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an SSH public key, for `git push`."""
    path = path or default_key()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}", EXIT_USAGE) from None
    if "PRIVATE KEY" in text:
        raise CliError(f"{path} is a private key: give the .pub file", EXIT_USAGE)
    key = run(authed().execute("AddSshKey", publicKey=text, title=title))["addSshKey"]
    if as_json:
        output.print_json(key)
    else:
        output.say(f"Added key {key['id']} '{key['title']}' {key['fingerprint']}")


@app.command("keys:remove", rich_help_panel=PANEL)
def keys_remove(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="From `keys`.")],
    as_json: JsonOpt = False,
) -> None:
    """Remove an SSH key by its id."""
    key = run(authed().execute("RemoveSshKey", id=key_id))["removeSshKey"]
    if as_json:
        output.print_json(key)
    else:
        output.say(f"Removed key {key['id']} '{key['title']}'")
