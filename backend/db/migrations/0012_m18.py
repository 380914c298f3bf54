from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    """Issue 18: metrics rows (10 s for a day, 5 min for 30 days), alert webhooks and their deliveries."""

    dependencies = [("models", "0011_a15")]

    initial = False

    operations = [
        ops.CreateModel(
            name='ProcessMetric',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='process_metrics', on_delete=OnDelete.CASCADE)),
                ('process', fields.CharField(max_length=64)),
                ('resolution', fields.IntField()),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('replicas', fields.IntField(default=0)),
                ('cpu_cores', fields.FloatField(default=0)),
                ('memory_bytes', fields.BigIntField(default=0)),
                ('memory_limit_bytes', fields.BigIntField(default=0)),
                ('net_rx_bytes_per_second', fields.FloatField(default=0)),
                ('net_tx_bytes_per_second', fields.FloatField(default=0)),
                ('restarts', fields.IntField(default=0)),
            ],
            options={'table': 'process_metric', 'app': 'models', 'unique_together': (('project', 'process', 'resolution', 'at'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RequestMetric',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='request_metrics', on_delete=OnDelete.CASCADE)),
                ('resolution', fields.IntField()),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('requests', fields.BigIntField(default=0)),
                ('status_1xx', fields.BigIntField(default=0)),
                ('status_2xx', fields.BigIntField(default=0)),
                ('status_3xx', fields.BigIntField(default=0)),
                ('status_4xx', fields.BigIntField(default=0)),
                ('status_5xx', fields.BigIntField(default=0)),
                ('latency_buckets', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'request_metric', 'app': 'models', 'unique_together': (('project', 'resolution', 'at'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Webhook',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='webhooks', on_delete=OnDelete.CASCADE)),
                ('url', fields.CharField(max_length=2000)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'webhook', 'app': 'models', 'unique_together': (('project', 'url'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('webhook', fields.ForeignKeyField('models.Webhook', source_field='webhook_id', db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('event', fields.CharField(max_length=32)),
                ('text', fields.CharField(max_length=1000)),
                ('attempts', fields.IntField(default=0)),
                ('ok', fields.BooleanField(default=False)),
                ('status_code', fields.IntField(null=True)),
                ('error', fields.CharField(default='', max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'webhook_delivery', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
