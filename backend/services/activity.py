"""The activity feed (issue 18): one record per action on a Client's account or projects.

The one place actions are recorded: services call ``record`` after a change is made. Who acts
is not passed down through every call: the API sets the request's ``Actor`` (Client, token,
source, device) once per request (backend/api/app.py) and gitd's pushes set theirs in the
internal gRPC servicer; ``record`` reads it from a context variable.

A record never holds a secret: env var keys are recorded, never their values. Retention is
bounded per Client: the newest ``MAX_PER_CLIENT`` records of the last ``MAX_AGE_DAYS`` days.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.db.models import Activity, ApiToken, Client, Project, SSHKey
from backend.errors import NotFound, ValidationFailed
from backend.events import EventKind, activity_topic, get_bus

# Where a request comes from: the CLI and the web app say so in this header; gitd's pushes are
# "git"; anything else (a script, curl, an unknown value) is "api".
SOURCE_HEADER = "x-paastech-source"
# The browser's user agent, sent by the web app (whose own requests come from its server).
DEVICE_HEADER = "x-paastech-device"
CLIENT_SOURCES = ("web", "cli")
SOURCES = ("web", "cli", "git", "api")

MAX_PER_CLIENT = 1000
MAX_AGE_DAYS = 90
MAX_PAGE = 200
_DETAIL_TEXT_MAX = 200
# Detail keys of a git push's record: the SSH key's title and fingerprint.
SSH_KEY = "sshKey"
SSH_KEY_FINGERPRINT = "sshKeyFingerprint"
_DETAIL_ITEMS_MAX = 50


@dataclass(frozen=True)
class Actor:
    """Who is acting in this request or push."""

    client_id: int | None = None
    token_id: int | None = None
    token_name: str = ""
    source: str = "api"
    device: str = ""
    # A git push: the SSH key that authenticated it (recorded in each record's detail).
    ssh_key_title: str = ""
    ssh_key_fingerprint: str = ""


_NOBODY = Actor()
_actor: ContextVar[Actor | None] = ContextVar("paastech_actor", default=None)


def current_actor() -> Actor:
    return _actor.get() or _NOBODY


def set_actor(actor: Actor) -> Token[Actor | None]:
    return _actor.set(actor)


async def git_actor(client_id: int, key_fingerprint: str) -> Actor:
    """A push's actor: the Client and the SSH key gitd authenticated it with. The key is looked
    up among the Client's own keys only; one removed since still shows its fingerprint."""
    fingerprint = "".join(ch for ch in key_fingerprint if ch.isprintable())[:100]
    title = ""
    if fingerprint:
        key = await SSHKey.get_or_none(client_id=client_id, fingerprint=fingerprint)
        title = key.title if key is not None else ""
    return Actor(
        client_id=client_id, source="git", ssh_key_title=title, ssh_key_fingerprint=fingerprint
    )


def source_of(header: str | None) -> str:
    value = (header or "").strip().lower()
    return value if value in CLIENT_SOURCES else "api"


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"))
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)
_PRODUCT = re.compile(r"^([A-Za-z][\w.-]{0,40})/([\w.+-]{1,20})")


def device_of(user_agent: str | None) -> str:
    """A short, readable name of the device behind a user agent: "Firefox on Linux",
    "paastech-cli 0.1", or the start of the string. Only for display: a client says what it
    wants here."""
    ua = "".join(ch for ch in (user_agent or "") if ch.isprintable()).strip()[:500]
    if not ua:
        return "unknown device"
    system = next((name for marker, name in _SYSTEMS if marker in ua), "")
    browser = next((name for marker, name in _BROWSERS if marker in ua), "")
    if not browser and "Safari/" in ua and "Version/" in ua:
        browser = "Safari"
    if browser:
        return f"{browser} on {system}" if system else browser
    product = _PRODUCT.match(ua)
    if product and not ua.startswith("Mozilla/"):
        return f"{product.group(1)} {product.group(2)}"[:60]
    return ua[:60]


def _clean(value: Any) -> Any:
    """Detail values: short text, numbers, booleans, short lists of those."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list | tuple | set):
        return [_clean(v) for v in list(value)[:_DETAIL_ITEMS_MAX]]
    return str(value)[:_DETAIL_TEXT_MAX]


async def record(
    client: Client | int,
    action: str,
    *,
    project: Project | None = None,
    project_name: str = "",
    token: ApiToken | None = None,
    **detail: Any,
) -> Activity:
    """Record one action of ``client`` (the owner of what changed), done by the current actor.
    ``project_name`` names a project that is gone (its deletion); ``token`` names the token
    acting when the actor has none yet (a login's new session)."""
    actor = current_actor()
    client_id = client if isinstance(client, int) else client.id
    if actor.ssh_key_fingerprint:
        detail.setdefault(SSH_KEY, actor.ssh_key_title)
        detail.setdefault(SSH_KEY_FINGERPRINT, actor.ssh_key_fingerprint)
    row = await Activity.create(
        client_id=client_id,
        project=project,
        project_name=(project.name if project is not None else project_name)[:40],
        action=action[:40],
        detail={k: _clean(v) for k, v in detail.items()},
        source=actor.source if actor.source in SOURCES else "api",
        token_id=token.id if token is not None else actor.token_id,
        token_name=(token.name if token is not None else actor.token_name)[:64],
    )
    await prune(client_id)
    await get_bus().publish(activity_topic(client_id), EventKind.ACTIVITY, {"id": row.id})
    return row


async def prune(client_id: int, now: datetime | None = None) -> int:
    """Keep the newest MAX_PER_CLIENT records of the last MAX_AGE_DAYS days; the count removed."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=MAX_AGE_DAYS)
    removed = await Activity.filter(client_id=client_id, at__lt=cutoff).delete()
    oldest_kept = (
        await Activity.filter(client_id=client_id)
        .order_by("-id")
        .offset(MAX_PER_CLIENT - 1)
        .limit(1)
        .values_list("id", flat=True)
    )
    if oldest_kept:
        removed += await Activity.filter(client_id=client_id, id__lt=oldest_kept[0]).delete()
    return removed


async def list_activity(
    client: Client, project: Project | None, first: int, after: int | None
) -> list[Activity]:
    """Newest first; ``after`` is the id of the last record of the previous page."""
    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed(f"first must be between 1 and {MAX_PAGE}", field="first")
    if after is not None and not 0 < after < 2**63:  # no row has it (nor could the column)
        raise NotFound("no such activity record", field="after")
    query = Activity.filter(client=client)
    if project is not None:
        query = query.filter(project=project)
    if after is not None:
        query = query.filter(id__lt=after)
    return await query.order_by("-id").limit(first)


async def get_for(client_id: int, activity_id: int) -> Activity | None:
    return await Activity.get_or_none(id=activity_id, client_id=client_id)


def _keys(d: dict[str, Any]) -> str:
    return ", ".join(d.get("keys") or [])


_SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "deploy": lambda d: (
        f"deployed v{d.get('release')} ({d.get('cause')})"
        + (f" with SSH key {d[SSH_KEY]}" if d.get(SSH_KEY) else "")
    ),
    "rollback": lambda d: f"rolled back to v{d.get('to')} as v{d.get('release')}",
    "restart": lambda d: f"restarted as v{d.get('release')}",
    "restart.processes": lambda d: (
        "restarted "
        + (
            f"{d.get('processType')}.{d['replica']}"
            if d.get("replica")
            else str(d.get("processType"))
        )
    ),
    "stop": lambda d: f"stopped v{d.get('release')}",
    "start": lambda d: f"started as v{d.get('release')}",
    "scale": lambda d: f"scaled {d.get('processType')} to {d.get('replicas')}",
    "resources": lambda d: (
        "resources " + " ".join(f"{k}={d[k]}" for k in ("memoryMb", "cpu") if d.get(k) is not None)
    ),
    "settings": lambda d: "settings: " + ", ".join(d.get("changes") or []),
    "env.set": lambda d: f"set env {_keys(d)}",
    "env.unset": lambda d: f"unset env {_keys(d)}",
    "domain.add": lambda d: f"added domain {d.get('hostname')}",
    "domain.verify": lambda d: f"verified domain {d.get('hostname')}",
    "domain.remove": lambda d: f"removed domain {d.get('hostname')}",
    "volume.add": lambda d: f"added volume {d.get('name')} at {d.get('mountPath')}",
    "volume.remove": lambda d: f"removed volume {d.get('name')}",
    "addon.create": lambda d: f"created add-on {d.get('addon')} ({d.get('plan')})",
    "addon.attach": lambda d: f"attached add-on {d.get('addon')}",
    "addon.detach": lambda d: f"detached add-on {d.get('addon')}",
    "addon.rotate": lambda d: f"rotated the credentials of {d.get('addon')}",
    "addon.remove": lambda d: f"removed add-on {d.get('addon')}",
    "addon.backup": lambda d: f"backed up {d.get('addon')}",
    "addon.restore": lambda d: f"restored {d.get('addon')} from backup {d.get('backup')}",
    "key.add": lambda d: f"added SSH key {d.get('title')}",
    "key.remove": lambda d: f"removed SSH key {d.get('title')}",
    "token.create": lambda d: f"created API token {d.get('name')}",
    "token.revoke": lambda d: f"revoked {d.get('kind', 'api')} token {d.get('name')}",
    "session.login": lambda d: f"logged in ({d.get('device')})",
    "session.logout": lambda d: "logged out",
    "session.revoke": lambda d: f"revoked the session of {d.get('device')}",
    "account.password": lambda d: (
        f"changed the password ({d.get('sessionsRevoked', 0)} other sessions revoked)"
    ),
    "project.create": lambda d: "created the project",
    "project.delete": lambda d: "deleted the project",
}


def summary(row: Activity) -> str:
    """One line for people, from the action and its detail."""
    detail = row.detail if isinstance(row.detail, dict) else {}
    describe = _SUMMARIES.get(row.action)
    if describe is None:
        return row.action
    return describe(detail)
