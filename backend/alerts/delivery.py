"""Sending one alert to one webhook: JSON with a Slack-compatible `text`, retried with backoff,
every attempt recorded in the delivery log (WebhookDelivery).

A tenant chooses the URL: it is resolved at each attempt and refused when it points at the
platform's own side (loopback, private, link-local, ...) unless the operator allows it
(settings.webhook_allow_private: tests and single-box setups with a local receiver). Redirects
are not followed (a public URL could redirect inwards)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from backend.db.models import WebhookDelivery
from backend.settings import Settings

log = logging.getLogger("paastech.alerts")

TIMEOUT_SECONDS = 5.0
KEEP_PER_WEBHOOK = 50


class Refused(Exception):
    pass


async def _check_target(url: str, allow_private: bool) -> None:
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Refused(f"cannot resolve {host}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise Refused(f"{host} resolves to a non-public address ({address})")


async def deliver(
    delivery: WebhookDelivery, url: str, payload: dict[str, Any], settings: Settings
) -> WebhookDelivery:
    """Up to settings.webhook_attempts POSTs; a 2xx answer ends it. The row is saved after each
    attempt, so the log shows a delivery in progress."""
    # Imported here: httpx loads its CLI's rich and pygments (about 5 MB), and most API
    # processes never send a webhook (issue 17).
    import httpx

    delay = settings.webhook_retry_seconds
    async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as http:
        for attempt in range(1, settings.webhook_attempts + 1):
            delivery.attempts = attempt
            try:
                await _check_target(url, settings.webhook_allow_private)
                response = await http.post(url, json=payload)
                delivery.status_code = response.status_code
                delivery.ok = 200 <= response.status_code < 300
                delivery.error = "" if delivery.ok else f"HTTP {response.status_code}"
            except Refused as exc:
                delivery.error = str(exc)[:500]
                delivery.status_code = None
                break  # an address does not become public by retrying
            except httpx.HTTPError as exc:
                delivery.status_code = None
                delivery.error = f"{type(exc).__name__}: {exc}"[:500]
            if delivery.ok:
                break
            if attempt < settings.webhook_attempts:
                await delivery.save()
                await asyncio.sleep(delay)  # backoff between attempts, not a test wait
                delay *= 2
    delivery.finished_at = datetime.now(UTC)
    await delivery.save()
    await _trim(delivery.webhook_id)
    if not delivery.ok:
        log.warning("webhook %s: %s not delivered: %s", url, payload.get("event"), delivery.error)
    return delivery


async def _trim(webhook_id: int) -> None:
    """The delivery log stays bounded: the newest KEEP_PER_WEBHOOK rows."""
    keep = (
        await WebhookDelivery.filter(webhook_id=webhook_id)
        .order_by("-id")
        .offset(KEEP_PER_WEBHOOK)
        .first()
        .values_list("id", flat=True)
    )
    if keep is not None:
        await WebhookDelivery.filter(webhook_id=webhook_id, id__lte=keep).delete()
