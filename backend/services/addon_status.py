"""Status history of add-ons (issue 15): every transition is a row and an event.

The add-on's ``status`` column is the latest transition; ``AddonStatusChange`` rows keep them all
with their time (capped per add-on), and each is published on the add-on's topic for the
``addonStatus`` subscription.
"""

from __future__ import annotations

from backend.db.models import Addon, AddonStatusChange
from backend.events import EventKind, addon_topic, get_bus

# Transitions kept per add-on: the oldest go once there are more.
KEEP = 200
MESSAGE_MAX = 512
# The add-on was removed: the last event of its subscription (never stored: the rows go with it).
REMOVED = "removed"


async def record(addon: Addon, status: str, message: str = "") -> AddonStatusChange | None:
    """Set the add-on's status; a transition (a status other than the current one, or the
    first) is stored and published. Returns the stored row, None when nothing changed."""
    message = message[:MESSAGE_MAX]
    last = await AddonStatusChange.filter(addon=addon).order_by("-id").first()
    if last is not None and last.status == status:
        return None
    change = await AddonStatusChange.create(addon=addon, status=status, message=message)
    if addon.status != status:
        addon.status = status
        await addon.save(update_fields=["status"])
    stale = (
        await AddonStatusChange.filter(addon=addon)
        .order_by("-id")
        .offset(KEEP)
        .values_list("id", flat=True)
    )
    if stale:
        await AddonStatusChange.filter(id__in=list(stale)).delete()
    await publish(addon, status, message, change)
    return change


async def publish(
    addon: Addon, status: str, message: str = "", change: AddonStatusChange | None = None
) -> None:
    payload = {"name": addon.name, "status": status, "message": message}
    if change is not None:
        payload["at"] = change.at.isoformat()
    await get_bus().publish(addon_topic(addon.id), EventKind.ADDON_STATUS, payload)


async def removed(addon: Addon) -> None:
    """The add-on is gone: its subscriptions get a last event and end."""
    await publish(addon, REMOVED)


async def history(addon: Addon, last: int) -> list[AddonStatusChange]:
    """The add-on's last ``last`` transitions, oldest first."""
    rows = await AddonStatusChange.filter(addon=addon).order_by("-id").limit(last)
    return rows[::-1]
