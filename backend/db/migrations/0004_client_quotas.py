from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0003_image_digest")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ClientQuota",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "client",
                    fields.ForeignKeyField(
                        "models.Client",
                        source_field="client_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="quotas",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=40)),
                ("limit", fields.FloatField()),
            ],
            options={
                "table": "client_quota",
                "app": "models",
                "pk_attr": "id",
                "unique_together": (("client", "name"),),
            },
            bases=["Model"],
        ),
    ]
