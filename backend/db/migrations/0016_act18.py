from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    """Issue 18: the activity feed, and the device of each login session."""

    dependencies = [("models", "0012_m18")]

    initial = False

    operations = [
        ops.AddField(
            model_name="ApiToken",
            name="device",
            field=fields.CharField(max_length=120, default=""),
        ),
        ops.CreateModel(
            name="Activity",
            fields=[
                (
                    "id",
                    fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "client",
                    fields.ForeignKeyField(
                        "models.Client",
                        source_field="client_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="activities",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "project",
                    fields.ForeignKeyField(
                        "models.Project",
                        source_field="project_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="activities",
                        on_delete=OnDelete.SET_NULL,
                        null=True,
                    ),
                ),
                ("project_name", fields.CharField(max_length=40, default="")),
                ("action", fields.CharField(max_length=40)),
                ("detail", fields.JSONField(default=dict)),
                ("source", fields.CharField(max_length=16, default="api")),
                ("token_id", fields.IntField(null=True)),
                ("token_name", fields.CharField(max_length=64, default="")),
                ("at", fields.DatetimeField(auto_now_add=True)),
            ],
            options={"table": "activity", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
