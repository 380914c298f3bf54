"""Sign-up, login/logout, bearer tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from backend import security, validation
from backend.db.columns import column
from backend.db.models import ApiToken, Client
from backend.errors import Conflict, NotFound, RateLimited, Unauthenticated, ValidationFailed
from backend.events import EventKind, get_bus, token_topic
from backend.ratelimit import FailureLimiter
from backend.services import activity
from backend.settings import get_settings

SESSION = "session"
API = "api"
API_TOKEN_MAX_DAYS = validation.API_TOKEN_MAX_DAYS

_login_failures: FailureLimiter | None = None
_signups: FailureLimiter | None = None


def login_limiter() -> FailureLimiter:
    global _login_failures
    if _login_failures is None:
        _login_failures = FailureLimiter(get_settings().login_failure_window_seconds)
    return _login_failures


def signup_limiter() -> FailureLimiter:
    global _signups
    if _signups is None:
        _signups = FailureLimiter(get_settings().signup_window_seconds)
    return _signups


async def _hash(password: str) -> str:
    try:
        return await security.hash_password_async(password)
    except security.HashingBusy:
        raise RateLimited("the server is busy; try again in a moment", retry_after=1) from None


async def _verify(password_hash: str, password: str) -> bool:
    try:
        return await security.verify_password_async(password_hash, password)
    except security.HashingBusy:
        raise RateLimited("the server is busy; try again in a moment", retry_after=1) from None


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once; only its digest is stored
    record: ApiToken


async def signup(email: str, username: str, password: str, remote_addr: str) -> Client:
    """A new account. Every attempt counts against the caller's address (one per alias of a
    request too), so neither accounts nor "username taken" answers can be had in bulk."""
    settings = get_settings()
    limiter = signup_limiter()
    key = f"signup:{remote_addr}"
    wait = limiter.retry_after(key, settings.signup_max_per_address)
    if wait:
        raise RateLimited(
            f"too many sign-ups from your address; try again in {wait} s", retry_after=wait
        )
    limiter.fail(key)
    email = validation.email(email)
    username = validation.username(username)
    validation.password(password, user=username, mail=email)
    if await Client.filter(email=email).exists():
        raise Conflict("an account with this email already exists", field="email")
    if await Client.filter(username=username).exists():
        raise Conflict("this username is taken", field="username")
    try:
        return await Client.create(
            email=email, username=username, password_hash=await _hash(password)
        )
    except IntegrityError as exc:  # lost a race with an identical sign-up: name what is taken
        if await Client.filter(email=email).exists():
            raise Conflict("an account with this email already exists", field="email") from exc
        raise Conflict("this username is taken", field="username") from exc


async def login(identifier: str, password: str, remote_addr: str) -> IssuedToken:
    """Email or username + password -> a new session token. Failures are rate limited."""
    settings = get_settings()
    limiter = login_limiter()
    ident = identifier.strip().lower()[:254]
    field = "email" if "@" in ident else "username"
    lookup: dict[str, Any] = {field: ident}
    client = await Client.get_or_none(**lookup)
    # One counter per (account, address) whichever name was typed (per typed name for unknown
    # accounts): a guesser elsewhere slows down only their own attempts, never the owner's.
    account = f"account:{client.id}" if client else f"unknown:{ident}"
    pair_key = f"{account}@{remote_addr}"
    address_key = f"address:{remote_addr}"
    wait = max(
        limiter.delay(
            pair_key,
            settings.login_max_failures_per_account,
            settings.login_delay_base_seconds,
            settings.login_delay_max_seconds,
        ),
        limiter.retry_after(address_key, settings.login_max_failures_per_address),
    )
    if wait:
        raise RateLimited(f"too many failed logins; try again in {wait} s", retry_after=wait)

    # Always verify a hash, so the response time does not say whether the account exists.
    ok = await _verify(client.password_hash if client else security.dummy_hash(), password)
    if client is None or not ok:
        limiter.fail(pair_key)
        limiter.fail(address_key)
        raise Unauthenticated("wrong username/email or password")
    limiter.reset(pair_key)
    return await start_session(client)


async def start_session(client: Client) -> IssuedToken:
    """A login session, named by the device it comes from (the request's user agent). The
    Client's expired sessions go now: they could never be used again."""
    now = datetime.now(UTC)
    await ApiToken.filter(client=client, kind=SESSION, expires_at__lte=now).delete()
    device = activity.current_actor().device
    expires = now + timedelta(days=get_settings().session_token_days)
    issued = await _issue(client, name="login", kind=SESSION, expires_at=expires, device=device)
    await activity.record(client, "session.login", token=issued.record, device=device)
    return issued


async def _issue(
    client: Client, *, name: str, kind: str, expires_at: datetime | None, device: str = ""
) -> IssuedToken:
    token = security.new_token()
    record = await ApiToken.create(
        client=client,
        name=name,
        kind=kind,
        token_sha256=security.token_digest(token),
        expires_at=expires_at,
        device=device[:120],
    )
    return IssuedToken(token=token, record=record)


async def authenticate(token: str | None) -> tuple[Client, ApiToken] | None:
    """The Client and token record behind a bearer token, or None if unknown/expired/revoked."""
    if not token or not token.startswith(security.TOKEN_PREFIX) or len(token) > 200:
        return None
    # One joined query (select_related), not a second one for the client: this runs on every
    # request, and the round trips to the database thread were a fifth of a small query's CPU.
    record = await ApiToken.get_or_none(token_sha256=security.token_digest(token)).select_related(
        "client"
    )
    if record is None:
        return None
    now = datetime.now(UTC)
    if record.expires_at is not None and record.expires_at <= now:
        return None
    # Coarse last-used stamp: one write per minute per token at most.
    if record.last_used_at is None or now - record.last_used_at > timedelta(minutes=1):
        record.last_used_at = now
        await record.save(update_fields=["last_used_at"])
    return record.client, record


async def _revoked(token_id: int) -> None:
    """Tell the websockets opened with this token to close (backend/api/app.py watches)."""
    await get_bus().publish(token_topic(token_id), EventKind.TOKEN_REVOKED, {"id": token_id})


async def logout(token: ApiToken) -> None:
    await token.delete()
    await _revoked(token.id)
    await activity.record(token.client_id, "session.logout", kind=token.kind, name=token.name)


async def create_api_token(client: Client, name: str, expires_in_days: int | None) -> IssuedToken:
    name = validation.title(name, field="name", max_length=64)
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= API_TOKEN_MAX_DAYS:
            raise ValidationFailed(
                f"expiresInDays must be between 1 and {API_TOKEN_MAX_DAYS}", field="expiresInDays"
            )
        expires_at = datetime.now(UTC) + timedelta(days=expires_in_days)
    if await ApiToken.filter(client=client, kind=API, name=name).exists():
        raise Conflict(f"you already have a token named {name!r}", field="name")
    issued = await _issue(client, name=name, kind=API, expires_at=expires_at)
    await activity.record(client, "token.create", name=name, id=issued.record.id)
    return issued


async def list_tokens(client: Client) -> list[ApiToken]:
    return await ApiToken.filter(client=client).order_by("-created_at", "-id")


async def revoke_token(client: Client, token_id: int) -> ApiToken:
    async with in_transaction():
        record = await ApiToken.get_or_none(id=token_id, client=client)
        if record is None:
            raise NotFound("token not found", field="id")
        await record.delete()
    await _revoked(record.id)
    await activity.record(client, "token.revoke", name=record.name, id=record.id, kind=record.kind)
    return record


async def list_sessions(client: Client) -> list[ApiToken]:
    """The Client's login sessions that can still be used, the most recently used first."""
    now = datetime.now(UTC)
    rows = await ApiToken.filter(client=client, kind=SESSION, expires_at__gt=now)
    return sorted(rows, key=lambda t: (t.last_used_at or t.created_at, t.id), reverse=True)


async def revoke_session(client: Client, session_id: int) -> ApiToken:
    """Log one device out: its session token stops working at once (open websockets close)."""
    async with in_transaction():
        record = None
        if 0 < session_id < 2**31:  # an id no row can have is not looked up (an int column)
            record = await ApiToken.get_or_none(id=session_id, client=client, kind=SESSION)
        if record is None:
            raise NotFound("session not found", field="id")
        await record.delete()
    await _revoked(record.id)
    await activity.record(client, "session.revoke", id=record.id, device=record.device)
    return record


async def _revoke_other_sessions(client: Client, keep: ApiToken | None) -> int:
    others = ApiToken.filter(client=client, kind=SESSION)
    if keep is not None:
        others = others.exclude(id=keep.id)
    ids: list[int] = await column(others, "id")
    await ApiToken.filter(id__in=ids).delete()
    for token_id in ids:
        await _revoked(token_id)
    return len(ids)


async def check_password(client: Client, password: str) -> None:
    """The account's password, asked again before it is changed or the account deleted."""
    if not await _verify(client.password_hash, password):
        # Not UNAUTHENTICATED: the token is fine, and clients treat that code as "log in again".
        raise ValidationFailed("wrong password", field="password")


async def change_password(
    client: Client, current: str, new: str, keep: ApiToken | None = None
) -> Client:
    """A new password; every other login session is revoked (another device that knew the old
    password is logged out). ``keep`` is the token of the request, which stays. Named API
    tokens stay: they are revoked one by one (`tokens:revoke`)."""
    # Errors name the argument at fault, so a form puts each next to its field.
    try:
        await check_password(client, current)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, field="currentPassword") from None
    try:
        validation.password(new, user=client.username, mail=client.email)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, field="newPassword") from None
    if new == current:
        raise ValidationFailed("the new password is the current one", field="newPassword")
    client.password_hash = await _hash(new)
    await client.save(update_fields=["password_hash"])
    revoked = await _revoke_other_sessions(client, keep)
    await activity.record(client, "account.password", sessionsRevoked=revoked)
    return client
