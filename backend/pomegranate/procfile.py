"""Procfile parsing: one ``type: command`` per line, ``#`` comments and blank lines ignored."""

from __future__ import annotations

import re
import shlex

PROCESS_TYPE = re.compile(r"^[a-z][a-z0-9_-]*$")
MAX_PROCESS_TYPE_LENGTH = 30


def validate_process_type(name: str) -> str:
    """Return ``name`` when it is a valid process type, else raise ValueError."""
    if not PROCESS_TYPE.match(name):
        raise ValueError(
            f"invalid process type {name!r}: use lowercase letters, digits, '-' and '_', "
            "starting with a letter"
        )
    if len(name) > MAX_PROCESS_TYPE_LENGTH:
        raise ValueError(
            f"invalid process type {name!r}: at most {MAX_PROCESS_TYPE_LENGTH} characters"
        )
    return name


def parse_procfile(text: str | bytes) -> dict[str, str]:
    """Parse a Procfile into an ordered {process type: command} dict.

    Raises ValueError with the line number on a malformed line, an invalid or duplicate process
    type, an empty command, or a Procfile that defines no process at all.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError("Procfile is not valid UTF-8") from exc
    text = text.removeprefix("\ufeff")
    processes: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        if not sep:
            raise ValueError(f"Procfile line {number}: expected 'type: command', got {line!r}")
        name = name.strip()
        command = command.strip()
        try:
            validate_process_type(name)
        except ValueError as exc:
            raise ValueError(f"Procfile line {number}: {exc}") from None
        if not command:
            raise ValueError(f"Procfile line {number}: process type {name!r} has no command")
        if name in processes:
            raise ValueError(f"Procfile line {number}: process type {name!r} defined twice")
        processes[name] = command
    if not processes:
        raise ValueError("Procfile defines no process")
    return processes


# Tokens after which a command is more than one simple command.
_SHELL_OPERATORS = frozenset({"&&", "||", ";", "|", "&", "(", ")", ";;", "|&", "<(", ">("})
_SHELL_WORDS = frozenset(
    {"if", "for", "while", "until", "case", "cd", "export", "exec", "set", "trap", "{", "!"}
)


def shell_command(command: str) -> str:
    """The ``/bin/sh -c`` text that runs a process command.

    A single simple command gets ``exec``, so the app replaces the shell as the init's child:
    Debian's dash does not exec the last command itself, and on `docker stop` the SIGTERM would
    kill the shell, the init would exit, and the kernel would SIGKILL the app mid-request instead
    of letting it shut down gracefully (gunicorn, node, uvicorn finish their requests in flight).
    Anything else (operators, variable assignments, shell keywords) runs as written.
    """
    if "\n" in command or "`" in command or "$(" in command:
        return command
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        tokens = list(lexer)
    except ValueError:
        return command
    if not tokens or tokens[0] in _SHELL_WORDS or "=" in tokens[0]:
        return command
    if any(token in _SHELL_OPERATORS for token in tokens):
        return command
    return f"exec {command}"
