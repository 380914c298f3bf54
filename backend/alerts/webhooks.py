"""A project's webhooks: validated, owned, listed with their delivery log."""

from __future__ import annotations

from urllib.parse import urlsplit

from backend.db.models import Client, Webhook, WebhookDelivery
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.services import projects

MAX_PER_PROJECT = 5
MAX_URL_LENGTH = 2000
DELIVERY_LOG = 50  # the newest deliveries kept per webhook


def check_url(url: str) -> str:
    url = url.strip() if isinstance(url, str) else ""
    if not url or len(url) > MAX_URL_LENGTH:
        raise ValidationFailed(
            f"give an http(s) URL of at most {MAX_URL_LENGTH} characters", field="url"
        )
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ValidationFailed("the URL may not contain spaces or control characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationFailed("not a valid URL", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(
            "the URL must start with http:// or https:// and name a host", field="url"
        )
    if parts.username or parts.password:
        raise ValidationFailed("put no credentials in the URL's host part", field="url")
    if port == 0:
        raise ValidationFailed("not a valid port", field="url")
    return url


async def add(client: Client, project: str, url: str) -> Webhook:
    owned = await projects.get_owned(client, project)
    url = check_url(url)
    if await Webhook.filter(project=owned, url=url).exists():
        raise Conflict("this project already has that webhook", field="url")
    if await Webhook.filter(project=owned).count() >= MAX_PER_PROJECT:
        raise Conflict(f"a project has at most {MAX_PER_PROJECT} webhooks", field="url")
    return await Webhook.create(project=owned, url=url)


async def remove(client: Client, project: str, webhook_id: int) -> Webhook:
    owned = await projects.get_owned(client, project)
    hook = await Webhook.get_or_none(id=webhook_id, project=owned)
    if hook is None:
        raise NotFound(f"no webhook {webhook_id} in {owned.name}", field="id")
    await hook.delete()
    return hook


async def list_for(client: Client, project: str) -> list[Webhook]:
    owned = await projects.get_owned(client, project)
    return await Webhook.filter(project=owned).order_by("id")


async def deliveries(webhook: Webhook, first: int) -> list[WebhookDelivery]:
    if not 1 <= first <= DELIVERY_LOG:
        raise ValidationFailed(f"first must be between 1 and {DELIVERY_LOG}", field="first")
    return await WebhookDelivery.filter(webhook=webhook).order_by("-id").limit(first)
