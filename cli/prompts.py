"""Questions to the user: typer prompts on a terminal, plain lines from a pipe."""

from __future__ import annotations

import sys

import typer

from cli.client import EXIT_USAGE, CliError


def ask(label: str, *, secret: bool = False, confirm: bool = False) -> str:
    if sys.stdin.isatty():
        answer: str = typer.prompt(label, hide_input=secret, confirmation_prompt=confirm)
        return answer
    # From a pipe (scripts, tests): one line each, no echo games, no /dev/tty.
    line = sys.stdin.readline()
    if not line:
        raise CliError(f"no input for {label.lower()} (stdin is closed)", EXIT_USAGE)
    return line.rstrip("\r\n")
