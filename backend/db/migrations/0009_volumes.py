from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    """Issue 15: persistent volumes of a project, and the volumes each release mounts."""

    dependencies = [("models", "0008_project_hsts")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Volume",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "project",
                    fields.ForeignKeyField(
                        "models.Project",
                        source_field="project_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="volumes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=30)),
                ("key", fields.CharField(max_length=16)),
                ("mount_path", fields.CharField(max_length=200)),
                ("process_types", fields.JSONField(default=list)),
                ("created_at", fields.DatetimeField(auto_now_add=True)),
            ],
            options={
                "table": "volume",
                "app": "models",
                "pk_attr": "id",
                "unique_together": (("project", "name"), ("project", "mount_path")),
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Application",
            name="volumes",
            field=fields.JSONField(default=list),
        ),
    ]
