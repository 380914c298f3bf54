from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_client_quotas')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Domain',
            name='verification_token',
            field=fields.CharField(default='', max_length=64),
        ),
        ops.AddField(
            model_name='Domain',
            name='verified_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        # Domains added before verification existed keep routing (their owners set them up).
        ops.RunSQL("UPDATE domain SET verified_at = created_at WHERE verified_at IS NULL"),
    ]
