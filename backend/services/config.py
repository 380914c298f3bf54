"""A project's configuration: env vars (encrypted at rest) and custom domains."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from backend import dnscheck, security, validation
from backend.db.columns import column
from backend.db.models import Client, Domain, EnvVar, Project
from backend.errors import Conflict, NotFound, NotVerified, ValidationFailed
from backend.events import EventKind, get_bus, project_topic
from backend.services import activity
from backend.services.projects import get_owned
from backend.settings import get_settings


async def env_of(project: Project) -> dict[str, str]:
    rows = await EnvVar.filter(project=project).order_by("key")
    return {row.key: security.decrypt(row.value_encrypted) for row in rows}


async def set_env_vars(
    client: Client, project_name: str, values: dict[str, str]
) -> tuple[Project, list[str]]:
    """Set ``values``; the project and the keys whose value really changed (a value set to what
    it already is changes nothing, so it makes no release: issue 19)."""
    project = await get_owned(client, project_name)
    if not values:
        raise ValidationFailed("give at least one variable", field="vars")
    if len(values) > validation.ENV_VARS_MAX:
        raise ValidationFailed(f"at most {validation.ENV_VARS_MAX} variables at once", field="vars")
    # Validate everything before writing anything.
    checked = {validation.env_key(k): validation.env_value(k, v) for k, v in values.items()}
    existing = await EnvVar.filter(project=project).count()
    new_keys = set(checked) - set(
        await EnvVar.filter(project=project).values_list("key", flat=True)
    )
    if existing + len(new_keys) > validation.ENV_VARS_MAX:
        raise ValidationFailed(
            f"a project has at most {validation.ENV_VARS_MAX} variables", field="vars"
        )
    current = await env_of(project)
    changed = {k: v for k, v in checked.items() if current.get(k) != v}
    if not changed:
        return project, []
    async with in_transaction():
        for key, value in changed.items():
            encrypted = security.encrypt(value)
            updated = await EnvVar.filter(project=project, key=key).update(
                value_encrypted=encrypted
            )
            if not updated:
                await EnvVar.create(project=project, key=key, value_encrypted=encrypted)
    await get_bus().publish(
        project_topic(project.id),
        EventKind.ENV_CHANGED,
        {"project": project.name, "message": "set " + ", ".join(sorted(changed))},
    )
    await activity.record(client, "env.set", project=project, keys=sorted(changed))
    return project, sorted(changed)


async def unset_env_vars(client: Client, project_name: str, keys: list[str]) -> Project:
    project = await get_owned(client, project_name)
    if not keys:
        raise ValidationFailed("give at least one variable name", field="keys")
    # Only names that fit the column are looked up (a longer one is simply not set).
    lookup = [k for k in keys if len(k) <= 128]
    present: set[str] = set(await column(EnvVar.filter(project=project, key__in=lookup), "key"))
    missing = sorted(set(keys) - present)
    if missing:
        raise NotFound(f"not set: {', '.join(k[:128] for k in missing)}", field="keys")
    await EnvVar.filter(project=project, key__in=keys).delete()
    await get_bus().publish(
        project_topic(project.id),
        EventKind.ENV_CHANGED,
        {"project": project.name, "message": "unset " + ", ".join(sorted(present))},
    )
    await activity.record(client, "env.unset", project=project, keys=sorted(present))
    return project


def default_hostname(project: Project) -> str:
    return get_settings().project_hostname(project.name)


async def hostnames_of(project: Project) -> list[str]:
    """The hostnames routed to the project (and given certificates): its own, and the custom
    domains whose control was proven. An unverified domain is never routed."""
    custom: list[str] = await column(
        Domain.filter(project=project, verified_at__not_isnull=True).order_by("hostname"),
        "hostname",
    )
    return [default_hostname(project), *custom]


async def domains_of(project: Project) -> list[Domain]:
    """Every custom domain, verified or not (what the owner sees)."""
    return await Domain.filter(project=project).order_by("hostname")


def _is_own(hostname: str, project: Project) -> bool:
    """Names under the project's own hostname need no proof: the platform owns that zone."""
    return hostname.endswith("." + default_hostname(project))


async def add_domain(client: Client, project_name: str, hostname: str) -> Domain:
    project = await get_owned(client, project_name)
    hostname = validation.hostname(hostname)
    base = get_settings().base_domain
    own = default_hostname(project)
    if hostname == own:
        raise Conflict(f"{hostname} is already the project's default domain", field="hostname")
    if (hostname == base or hostname.endswith("." + base)) and not hostname.endswith("." + own):
        raise ValidationFailed(
            f"names under {base} are reserved for projects; use one under {own} or your own domain",
            field="hostname",
        )
    if await Domain.filter(hostname=hostname).exists():
        raise Conflict(f"{hostname} is already in use", field="hostname")
    cap = get_settings().max_domains_per_project
    if await Domain.filter(project=project).count() >= cap:
        raise ValidationFailed(f"a project has at most {cap} custom domains", field="hostname")
    try:
        domain = await Domain.create(
            project=project,
            hostname=hostname,
            verification_token=secrets.token_urlsafe(24),
            verified_at=datetime.now(UTC) if _is_own(hostname, project) else None,
        )
    except IntegrityError as exc:
        raise Conflict(f"{hostname} is already in use", field="hostname") from exc
    await get_bus().publish(
        project_topic(project.id),
        EventKind.DOMAINS_CHANGED,
        {"project": project.name, "message": f"added {hostname}"},
    )
    await activity.record(client, "domain.add", project=project, hostname=hostname)
    return domain


async def _find_domain(project: Project, hostname: str) -> Domain | None:
    name = hostname.strip().lower().rstrip(".")
    if not name or len(name) > 253:  # longer than any stored hostname (and the column)
        return None
    return await Domain.get_or_none(project=project, hostname=name)


async def verify_domain(client: Client, project_name: str, hostname: str) -> Domain:
    """Look for the domain's TXT record; once found the domain is verified (and routed)."""
    project = await get_owned(client, project_name)
    domain = await _find_domain(project, hostname)
    if domain is None:
        raise NotFound(f"domain {hostname[:253]!r} not found on {project.name}", field="hostname")
    if domain.verified_at is not None:
        return domain
    name = dnscheck.challenge_name(domain.hostname)
    values = await dnscheck.txt_values(name)
    if domain.verification_token not in values:
        found = "no TXT record there" if not values else "a TXT record with another value"
        raise NotVerified(
            f"{domain.hostname} is not verified: found {found}; create the TXT record "
            f"{name} with the value {domain.verification_token}, then verify again",
            field="hostname",
        )
    domain.verified_at = datetime.now(UTC)
    await domain.save(update_fields=["verified_at"])
    await get_bus().publish(
        project_topic(project.id),
        EventKind.DOMAINS_CHANGED,
        {"project": project.name, "message": f"verified {domain.hostname}"},
    )
    await activity.record(client, "domain.verify", project=project, hostname=domain.hostname)
    return domain


async def remove_domain(client: Client, project_name: str, hostname: str) -> Domain:
    project = await get_owned(client, project_name)
    domain = await _find_domain(project, hostname)
    if domain is None:
        if hostname.strip().lower().rstrip(".") == default_hostname(project):
            raise ValidationFailed(
                f"{default_hostname(project)} is the project's default domain: it cannot be "
                "removed (only custom domains can)",
                field="hostname",
            )
        raise NotFound(f"domain {hostname[:253]!r} not found on {project.name}", field="hostname")
    await domain.delete()
    await get_bus().publish(
        project_topic(project.id),
        EventKind.DOMAINS_CHANGED,
        {"project": project.name, "message": f"removed {domain.hostname}"},
    )
    await activity.record(client, "domain.remove", project=project, hostname=domain.hostname)
    return domain


async def replace_env(project: Project, values: dict[str, str]) -> None:
    """Make the project's env exactly ``values`` (a rollback restores a release's config)."""
    await EnvVar.filter(project=project).delete()
    for key, value in values.items():
        await EnvVar.create(project=project, key=key, value_encrypted=security.encrypt(value))
    await get_bus().publish(
        project_topic(project.id),
        EventKind.ENV_CHANGED,
        {"project": project.name, "message": "restored " + ", ".join(sorted(values))},
    )
