from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from backend.db.models import ApplicationStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='StatusChange',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('application', fields.ForeignKeyField('models.Application', source_field='application_id', db_constraint=True, to_field='id', related_name='status_changes', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharEnumField(description='QUEUED: queued\nBUILDING: building\nDEPLOYING: deploying\nRUNNING: running\nSUPERSEDED: superseded\nFAILED: failed\nCRASHED: crashed\nSTOPPED: stopped', enum_type=ApplicationStatus, max_length=10)),
                ('message', fields.TextField(null=True, unique=False)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'status_change', 'app': 'models', 'pk_attr': 'id', 'table_description': "The history of an Application's status, kept as it happens."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Application',
            name='cpu',
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name='Application',
            name='memory_mb',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Application',
            name='port',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Application',
            name='processes',
            field=fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
