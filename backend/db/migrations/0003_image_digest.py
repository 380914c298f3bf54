from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_release_details')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Application',
            name='image_digest',
            field=fields.CharField(null=True, max_length=71),
        ),
    ]
