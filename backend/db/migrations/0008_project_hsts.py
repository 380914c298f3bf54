from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    """Issue 21: a project can ask for Strict-Transport-Security on its HTTPS answers."""

    dependencies = [('models', '0005_domain_verification')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Project',
            name='hsts',
            field=fields.BooleanField(default=False),
        ),
    ]
