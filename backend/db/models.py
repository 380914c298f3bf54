"""The data model (see docs/architecture.md, Database).

Each foreign key's column is declared beside it (`owner_id: int`): Tortoise adds the attribute at
run time, the annotation lets the type checker see it. JSON fields name their shape the same way.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model


class ApplicationStatus(StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    DEPLOYING = "deploying"
    RUNNING = "running"
    SUPERSEDED = "superseded"
    FAILED = "failed"
    CRASHED = "crashed"
    STOPPED = "stopped"


class Client(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)
    username = fields.CharField(max_length=32, unique=True)
    password_hash = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "client"


class ApiToken(Model):
    """A bearer token: a login session or a named token for the CLI. Only its SHA-256 is kept."""

    id = fields.IntField(primary_key=True)
    client: fields.ForeignKeyRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name="tokens", on_delete=fields.CASCADE
    )
    client_id: int
    name = fields.CharField(max_length=64)
    kind = fields.CharField(max_length=16, default="api")  # "session" (login) or "api"
    token_sha256 = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    # The device a login session came from (issue 18): its user agent, shortened.
    device = fields.CharField(max_length=120, default="")

    class Meta:
        table = "api_token"


class SSHKey(Model):
    id = fields.IntField(primary_key=True)
    client: fields.ForeignKeyRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name="ssh_keys", on_delete=fields.CASCADE
    )
    client_id: int
    title = fields.CharField(max_length=100)
    public_key = fields.TextField()
    fingerprint = fields.CharField(max_length=100, unique=True)  # "SHA256:..."
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "ssh_key"


class Project(Model):
    id = fields.IntField(primary_key=True)
    owner: fields.ForeignKeyRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name="projects", on_delete=fields.CASCADE
    )
    owner_id: int
    name = fields.CharField(max_length=40, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Settings: replicas per process type, limits, health check, deploy branch.
    replicas = fields.JSONField[dict[str, int]](default=dict)
    memory_mb = fields.IntField(null=True)  # null: the platform default
    cpu = fields.FloatField(null=True)
    port = fields.IntField(null=True)
    health_check_path = fields.CharField(max_length=200, default="/")
    deploy_branch = fields.CharField(max_length=100, default="main")
    hsts = fields.BooleanField(default=False)  # Strict-Transport-Security on HTTPS (issue 21)

    class Meta:
        table = "project"


class Application(Model):
    """One immutable release: image + env + scale + domains of a Project."""

    id = fields.IntField(primary_key=True)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="applications", on_delete=fields.CASCADE
    )
    project_id: int
    number = fields.IntField()
    cause = fields.CharField(max_length=200, default="")  # "push abc1234", "env: set FOO", ...
    commit_sha = fields.CharField(max_length=40, null=True)
    image = fields.CharField(max_length=255, null=True)
    # The image's manifest digest in the platform registry (sha256:...): what runs, exactly.
    image_digest = fields.CharField(max_length=71, null=True)
    status = fields.CharEnumField(ApplicationStatus, default=ApplicationStatus.QUEUED)
    env_snapshot = fields.TextField(default="")  # encrypted JSON of the env vars it runs with
    replicas = fields.JSONField[dict[str, int]](default=dict)
    domains = fields.JSONField[list[str]](default=list)
    # What the build found: process type -> command ("" = the image's CMD), and the app's PORT.
    processes = fields.JSONField[dict[str, str]](default=dict)
    # The project's volumes it mounts (issue 15): [{name, key, mountPath, processTypes}].
    volumes = fields.JSONField[list[dict[str, Any]]](default=list)
    port = fields.IntField(null=True)
    memory_mb = fields.IntField(null=True)
    cpu = fields.FloatField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    finished_at = fields.DatetimeField(null=True)
    failure_reason = fields.TextField(null=True)

    class Meta:
        table = "application"
        unique_together = (("project", "number"),)


class StatusChange(Model):
    """The history of an Application's status, kept as it happens."""

    id = fields.BigIntField(primary_key=True)
    application: fields.ForeignKeyRelation[Application] = fields.ForeignKeyField(
        "models.Application", related_name="status_changes", on_delete=fields.CASCADE
    )
    application_id: int
    status = fields.CharEnumField(ApplicationStatus)
    message = fields.TextField(null=True)
    at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "status_change"


class BuildLog(Model):
    id = fields.BigIntField(primary_key=True)
    application: fields.ForeignKeyRelation[Application] = fields.ForeignKeyField(
        "models.Application", related_name="build_logs", on_delete=fields.CASCADE
    )
    application_id: int
    seq = fields.IntField()
    line = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "build_log"
        unique_together = (("application", "seq"),)


class EnvVar(Model):
    id = fields.IntField(primary_key=True)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="env_vars", on_delete=fields.CASCADE
    )
    project_id: int
    key = fields.CharField(max_length=128)
    value_encrypted = fields.TextField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "env_var"
        unique_together = (("project", "key"),)


class Domain(Model):
    id = fields.IntField(primary_key=True)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="domains", on_delete=fields.CASCADE
    )
    project_id: int
    hostname = fields.CharField(max_length=253, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Proof of control (issue 12): a TXT record _paastech-challenge.<hostname> = this token.
    # Only verified domains are routed or get a certificate.
    verification_token = fields.CharField(max_length=64, default="")
    verified_at = fields.DatetimeField(null=True)

    class Meta:
        table = "domain"


# An administrator's override of one quota for one Client (issue 11). Without a row the limit is
# the platform default from Settings (backend/services/quotas.py). A comment, not a docstring:
# Tortoise would copy a docstring into the migration as the table's description.
class ClientQuota(Model):
    id = fields.IntField(primary_key=True)
    client: fields.ForeignKeyRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name="quotas", on_delete=fields.CASCADE
    )
    client_id: int
    name = fields.CharField(max_length=40)
    limit = fields.FloatField()

    class Meta:
        table = "client_quota"
        unique_together = (("client", "name"),)


# A persistent volume of a project (issue 15): a named Docker volume mounted at ``mount_path`` in
# every replica of ``process_types``. ``key`` (random) is part of the Docker volume's name, so the
# same name added again later is a new, empty volume. A comment, not a docstring (see above).
class Volume(Model):
    id = fields.IntField(primary_key=True)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="volumes", on_delete=fields.CASCADE
    )
    project_id: int
    name = fields.CharField(max_length=30)
    key = fields.CharField(max_length=16)
    mount_path = fields.CharField(max_length=200)
    process_types = fields.JSONField[list[str]](default=list)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "volume"
        unique_together = (("project", "name"), ("project", "mount_path"))


class AddonKind(StrEnum):
    POSTGRES = "postgres"
    REDIS = "redis"


# A managed PostgreSQL or Redis server of a Client (issue 15), attached to one or more of its
# projects. The server's password is kept encrypted like env var values (backend/security.py).
class Addon(Model):
    id = fields.IntField(primary_key=True)
    client: fields.ForeignKeyRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name="addons", on_delete=fields.CASCADE
    )
    client_id: int
    kind = fields.CharEnumField(AddonKind, max_length=16)
    plan = fields.CharField(max_length=32)
    name = fields.CharField(max_length=64, unique=True)  # "postgresql-<word>-<n>", also its host
    status = fields.CharField(max_length=32, default="creating")
    version = fields.CharField(max_length=32, default="")
    password_encrypted = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "addon"


# An add-on attached to a project: the project's config var ``config_var`` holds its URL.
class AddonAttachment(Model):
    id = fields.IntField(primary_key=True)
    addon: fields.ForeignKeyRelation[Addon] = fields.ForeignKeyField(
        "models.Addon", related_name="attachments", on_delete=fields.CASCADE
    )
    addon_id: int
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="addon_attachments", on_delete=fields.CASCADE
    )
    project_id: int
    config_var = fields.CharField(max_length=128)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "addon_attachment"
        unique_together = (("addon", "project"), ("project", "config_var"))


# One backup file of an add-on, under data_dir/addon-backups/<client id>/. Kept when the add-on
# is removed (its final backup): ``addon`` becomes null, ``addon_name`` and ``client`` remain.
class AddonBackup(Model):
    id = fields.IntField(primary_key=True)
    client: fields.ForeignKeyRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name="addon_backups", on_delete=fields.CASCADE
    )
    client_id: int
    addon: fields.ForeignKeyNullableRelation[Addon] = fields.ForeignKeyField(
        "models.Addon", related_name="backups", on_delete=fields.SET_NULL, null=True
    )
    addon_id: int | None
    addon_name = fields.CharField(max_length=64)
    addon_kind = fields.CharEnumField(AddonKind, max_length=16)
    file_name = fields.CharField(max_length=128)
    size_bytes = fields.BigIntField(default=0)
    kind = fields.CharField(max_length=16)  # manual | scheduled | final
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "addon_backup"


# Issue 18: metrics (backend/metrics/store.py). `resolution` is the seconds a row covers: 10 for
# a day, then 300 (downsampled) for 30 days.
class ProcessMetric(Model):
    id = fields.BigIntField(primary_key=True)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="process_metrics", on_delete=fields.CASCADE
    )
    project_id: int
    process = fields.CharField(max_length=64)
    resolution = fields.IntField()
    at = fields.DatetimeField(db_index=True)
    replicas = fields.IntField(default=0)
    cpu_cores = fields.FloatField(default=0)
    memory_bytes = fields.BigIntField(default=0)
    memory_limit_bytes = fields.BigIntField(default=0)
    net_rx_bytes_per_second = fields.FloatField(default=0)
    net_tx_bytes_per_second = fields.FloatField(default=0)
    restarts = fields.IntField(default=0)

    class Meta:
        table = "process_metric"
        unique_together = (("project", "process", "resolution", "at"),)


class RequestMetric(Model):
    id = fields.BigIntField(primary_key=True)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="request_metrics", on_delete=fields.CASCADE
    )
    project_id: int
    resolution = fields.IntField()
    at = fields.DatetimeField(db_index=True)
    requests = fields.BigIntField(default=0)
    status_1xx = fields.BigIntField(default=0)
    status_2xx = fields.BigIntField(default=0)
    status_3xx = fields.BigIntField(default=0)
    status_4xx = fields.BigIntField(default=0)
    status_5xx = fields.BigIntField(default=0)
    latency_buckets = fields.JSONField[list[int]](default=list)  # backend/metrics/histogram.py

    class Meta:
        table = "request_metric"
        unique_together = (("project", "resolution", "at"),)


# Issue 18: alerts. A project's notification webhooks and what was sent to them (backend/alerts).
class Webhook(Model):
    id = fields.IntField(primary_key=True)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="webhooks", on_delete=fields.CASCADE
    )
    project_id: int
    url = fields.CharField(max_length=2000)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "webhook"
        unique_together = (("project", "url"),)


class WebhookDelivery(Model):
    id = fields.BigIntField(primary_key=True)
    webhook: fields.ForeignKeyRelation[Webhook] = fields.ForeignKeyField(
        "models.Webhook", related_name="deliveries", on_delete=fields.CASCADE
    )
    webhook_id: int
    event = fields.CharField(max_length=32)
    text = fields.CharField(max_length=1000)
    attempts = fields.IntField(default=0)
    ok = fields.BooleanField(default=False)
    status_code = fields.IntField(null=True)
    error = fields.CharField(max_length=500, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_delivery"


# One action on a Client's account or projects (issue 18): who did it (the Client, with which
# token, from where), when, on which project, and a short detail that never holds a secret
# (env var keys, never values). Written only by backend/services/activity.py. ``project`` goes
# null when the project is deleted; ``project_name`` keeps what it was called.
class Activity(Model):
    id = fields.BigIntField(primary_key=True)
    client: fields.ForeignKeyRelation[Client] = fields.ForeignKeyField(
        "models.Client", related_name="activities", on_delete=fields.CASCADE
    )
    client_id: int
    project: fields.ForeignKeyNullableRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="activities", on_delete=fields.SET_NULL, null=True
    )
    project_id: int | None
    project_name = fields.CharField(max_length=40, default="")
    action = fields.CharField(max_length=40)
    detail = fields.JSONField[dict[str, Any]](default=dict)
    source = fields.CharField(max_length=16, default="api")
    token_id = fields.IntField(null=True)  # not a foreign key: the record outlives the token
    token_name = fields.CharField(max_length=64, default="")
    at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "activity"


# One status transition of an add-on (issue 15): creating, available, down (the engine's state
# in ``message``), restoring, removing. The add-on's ``status`` is the last one's.
class AddonStatusChange(Model):
    id = fields.IntField(primary_key=True)
    addon: fields.ForeignKeyRelation[Addon] = fields.ForeignKeyField(
        "models.Addon", related_name="status_changes", on_delete=fields.CASCADE
    )
    addon_id: int
    status = fields.CharField(max_length=32)
    message = fields.CharField(max_length=512, default="")
    at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "addon_status_change"
