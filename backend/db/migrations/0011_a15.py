from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    """Issue 15: the status history of add-ons."""

    dependencies = [("models", "0010_addons")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AddonStatusChange",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "addon",
                    fields.ForeignKeyField(
                        "models.Addon",
                        source_field="addon_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="status_changes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("status", fields.CharField(max_length=32)),
                ("message", fields.CharField(default="", max_length=512)),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "addon_status_change", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
