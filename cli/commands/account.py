"""Account: signup, login, logout, whoami, API tokens."""

from __future__ import annotations

import contextlib
import secrets
import socket
from datetime import datetime
from typing import Annotated, Any

import typer

from backend import validation
from backend.errors import ValidationFailed
from cli import config, output
from cli.app import JsonOpt, anonymous, app, authed, run, state
from cli.client import EXIT_AUTH, Api, CliError
from cli.prompts import ask

PANEL = "Account"


def _validated(rule: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return rule(*args, **kwargs)
    except ValidationFailed as exc:
        raise CliError(exc.message) from None


def _token_name() -> str:
    host = (socket.gethostname() or "host")[:24]
    return f"cli {host} {datetime.now():%Y-%m-%d %H:%M} {secrets.token_hex(2)}"


async def _keep_login(api: Api, session_token: str, client: dict[str, Any]) -> config.Credentials:
    """Trade the login session for a named API token (revocable from `tokens`) and store it,
    revoking the token this machine stored before (logins must not pile tokens up)."""
    previous = config.load(state.api_url)
    session = api.with_token(session_token)
    name = _token_name()
    try:
        created = (await session.execute("CreateApiToken", name=name))["createApiToken"]
    except CliError as exc:
        output.note(f"could not create an API token ({exc.message}); keeping the session token")
        creds = config.Credentials(token=session_token, username=client["username"])
    else:
        creds = config.Credentials(
            token=created["token"],
            username=client["username"],
            token_id=created["apiToken"]["id"],
            token_name=name,
        )
        with contextlib.suppress(CliError):
            await session.execute("Logout")  # the session token is not needed any more
    path = config.save(state.api_url, creds)
    output.note(f"token '{creds.token_name or 'login'}' stored in {path}")
    if previous is not None and previous.token != creds.token:
        with contextlib.suppress(CliError):  # already revoked or expired: nothing to do
            await api.with_token(previous.token).execute("Logout")
            output.note(f"revoked this machine's previous token '{previous.token_name or 'login'}'")
    if config.env_token():
        output.note("note: PAASTECH_TOKEN is set and takes precedence over the stored token")
    return creds


EMAIL_RULE = "Email: an address like name@example.com."
USERNAME_RULE = (
    "Username: 3-32 characters: lowercase letters, digits, '-' or '_', starting with a letter "
    "or digit."
)
PASSWORD_RULE = (
    f"Password: at least {validation.PASSWORD_MIN} characters, mixing letters with digits or "
    "symbols, not your username; typed twice."
)


def _ask_until_valid(label: str, rule_text: str, check: Any, *, secret: bool = False) -> Any:
    """The rule first, then ask; on a bad answer say why and ask again (a pipe that runs out of
    lines ends with an error)."""
    output.note(rule_text, style=None)
    while True:
        answer = ask(label, secret=secret, confirm=secret)
        try:
            return check(answer)
        except ValidationFailed as exc:
            output.note(f"{exc.message}; try again", style="red")


def _print_client(client: dict[str, Any]) -> None:
    output.print_json({k: client[k] for k in ("id", "username", "email", "createdAt")})


@app.command("signup", rich_help_panel=PANEL)
def signup(
    email: Annotated[
        str | None, typer.Option("--email", "-e", metavar="EMAIL", help="Your email address.")
    ] = None,
    username: Annotated[
        str | None,
        typer.Option(
            "--username", "-u", metavar="NAME", help="3-32 characters: a-z, 0-9, - and _."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an account and log in. What is not given is asked for (the password twice, or
    from stdin), each rule stated first; a bad answer is asked again."""
    if email is not None:
        email = _validated(validation.email, email)
    else:
        email = _ask_until_valid("Email", EMAIL_RULE, validation.email)
    if username is not None:
        username = _validated(validation.username, username)
    else:
        username = _ask_until_valid("Username", USERNAME_RULE, validation.username)
    password = _ask_until_valid(
        "Password",
        PASSWORD_RULE,
        lambda p: validation.password(p, user=username, mail=email),
        secret=True,
    )

    async def go() -> None:
        api = anonymous()
        data = (await api.execute("Signup", email=email, username=username, password=password))[
            "signup"
        ]
        await _keep_login(api, data["token"], data["client"])
        if as_json:
            _print_client(data["client"])
        else:
            output.say(f"Signed up and logged in as {data['client']['username']}", "green")

    run(go())


@app.command("login", rich_help_panel=PANEL)
def login(
    login: Annotated[
        str | None,
        typer.Option(
            "--login",
            "-l",
            "--username",
            "-u",
            "--email",
            "-e",
            metavar="NAME",
            help="Email or username (asked if missing).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Log in with your email or username and password; stores an API token (mode 0600) and
    revokes the one this machine stored before."""
    who = (login or ask("Email or username")).strip()
    if not who:
        raise CliError("give your email or username", 2)
    password = ask("Password", secret=True)

    async def go() -> None:
        api = anonymous()
        data = (await api.execute("Login", login=who, password=password))["login"]
        await _keep_login(api, data["token"], data["client"])
        if as_json:
            _print_client(data["client"])
        else:
            output.say(f"Logged in as {data['client']['username']}", "green")

    run(go())


@app.command("logout", rich_help_panel=PANEL)
def logout(as_json: JsonOpt = False) -> None:
    """Revoke the token in use and forget the stored one."""
    from cli.app import token

    current = token()
    if not current:
        if as_json:
            output.print_json({"loggedOut": False})
        else:
            output.say("Not logged in.")
        return

    async def go() -> None:
        try:
            await anonymous().with_token(current).execute("Logout")
        except CliError as exc:
            if exc.exit_code != EXIT_AUTH:
                raise
            # Already revoked or expired: forgetting it is all that is left.
        stored = config.load(state.api_url)
        if stored and stored.token == current:
            config.forget(state.api_url)
        if as_json:
            output.print_json({"loggedOut": True})
        else:
            output.say("Logged out: the token is revoked.")
        if config.env_token():
            output.note("PAASTECH_TOKEN is still set in your environment: unset it")

    run(go())


@app.command("whoami", rich_help_panel=PANEL)
def whoami(as_json: JsonOpt = False) -> None:
    """Show who you are logged in as."""
    me = run(authed().execute("Me"))["me"]
    if as_json:
        output.print_json(
            {
                "id": me["id"],
                "username": me["username"],
                "email": me["email"],
                "createdAt": me["createdAt"],
            }
        )
        return
    output.say(f"{me['username']} <{me['email']}>")


def _token_rows(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stored = config.load(state.api_url)
    current_id = stored.token_id if stored and not config.env_token() else None
    return [
        {
            "id": t["id"],
            "name": t["name"],
            "kind": t["kind"],
            "createdAt": t["createdAt"],
            "lastUsedAt": t["lastUsedAt"],
            "expiresAt": t["expiresAt"],
            "current": t["id"] == current_id,
        }
        for t in tokens
    ]


@app.command("tokens", rich_help_panel=PANEL)
def tokens(as_json: JsonOpt = False) -> None:
    """List your API and session tokens (values are never shown again)."""
    rows = _token_rows(run(authed().execute("ApiTokens"))["apiTokens"])
    if as_json:
        output.print_json(rows)
        return
    output.table(
        ["id", "name", "kind", "created", "last used", "expires", "current"],
        [
            [
                r["id"],
                r["name"],
                r["kind"].lower(),
                output.age(r["createdAt"]),
                output.age(r["lastUsedAt"]) if r["lastUsedAt"] else "never",
                (r["expiresAt"] or "never")[:10],
                "*" if r["current"] else "",
            ]
            for r in rows
        ],
    )


@app.command("tokens:create", rich_help_panel=PANEL)
def tokens_create(
    name: Annotated[str, typer.Argument(help="A name to recognise the token by.")],
    expires_in_days: Annotated[
        int | None,
        typer.Option(
            "--expires-in-days",
            metavar="DAYS",
            min=1,
            max=validation.API_TOKEN_MAX_DAYS,
            help=f"Expire after DAYS days, 1-{validation.API_TOKEN_MAX_DAYS} (default never).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a named API token for scripts (use it as PAASTECH_TOKEN). Shown once."""
    name = _validated(validation.title, name, field="name", max_length=64)
    created = run(authed().execute("CreateApiToken", name=name, expiresInDays=expires_in_days))[
        "createApiToken"
    ]
    if as_json:
        output.print_json({"token": created["token"], **created["apiToken"]})
        return
    output.note(f"token '{name}' (id {created['apiToken']['id']}); it is shown only once:")
    output.say(created["token"])


@app.command("tokens:revoke", rich_help_panel=PANEL)
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="From `tokens`.")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a token by its id."""
    revoked = run(authed().execute("RevokeApiToken", id=token_id))["revokeApiToken"]
    stored = config.load(state.api_url)
    if stored and stored.token_id == revoked["id"]:
        config.forget(state.api_url)
        output.note("that was the token this CLI was logged in with: you are logged out")
    if as_json:
        output.print_json(revoked)
    else:
        output.say(f"Revoked token {revoked['id']} ({revoked['name']})")


@app.command("account:password", rich_help_panel=PANEL)
def account_password(as_json: JsonOpt = False) -> None:
    """Change your password: the current one, then the new one twice (or lines on stdin)."""
    api = authed()
    me = run(api.execute("Me"))["me"]
    current = ask("Current password", secret=True)
    new = _ask_until_valid(
        "New password",
        PASSWORD_RULE,
        lambda p: validation.password(p, user=me["username"], mail=me["email"]),
        secret=True,
    )
    client = run(api.execute("ChangePassword", currentPassword=current, newPassword=new))[
        "changePassword"
    ]
    if as_json:
        _print_client(client)
    else:
        output.say(f"Password of {client['username']} changed")


@app.command("account:delete", rich_help_panel=PANEL)
def account_delete(
    confirm: Annotated[
        str | None,
        typer.Option(
            "--confirm",
            metavar="USERNAME|EMAIL",
            help="Your username or email, to skip the question.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete your account: every project (containers, images, repositories), keys, tokens.
    Asks for your username or email (or --confirm) and your password."""
    api = authed()
    me = run(api.execute("Me"))["me"]
    if confirm is None:
        output.note(
            f"This deletes the account {me['username']} and all its projects, keys and tokens."
        )
        confirm = ask(f"Type {me['username']} (or your email) to confirm")
    if confirm.strip() not in (me["username"], me["email"]):
        raise CliError(
            f"confirmation '{confirm.strip()}' does not match {me['username']} or your email: "
            "nothing deleted"
        )
    password = ask("Password", secret=True)
    deleted = run(api.execute("DeleteAccount", password=password, confirm=confirm.strip()))[
        "deleteAccount"
    ]
    config.forget(state.api_url)
    if as_json:
        _print_client(deleted)
    else:
        output.say(f"Deleted the account {deleted['username']}")
