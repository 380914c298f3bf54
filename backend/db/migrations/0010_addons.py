from tortoise import migrations
from tortoise.migrations import operations as ops
from backend.db.models import AddonKind
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    """Issue 15: managed PostgreSQL and Redis add-ons, their attachments and backups."""

    dependencies = [('models', '0009_volumes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Addon',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('client', fields.ForeignKeyField('models.Client', source_field='client_id', db_constraint=True, to_field='id', related_name='addons', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='POSTGRES: postgres\nREDIS: redis', enum_type=AddonKind, max_length=16)),
                ('plan', fields.CharField(max_length=32)),
                ('name', fields.CharField(unique=True, max_length=64)),
                ('status', fields.CharField(default='creating', max_length=32)),
                ('version', fields.CharField(default='', max_length=32)),
                ('password_encrypted', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'addon', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AddonAttachment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('addon', fields.ForeignKeyField('models.Addon', source_field='addon_id', db_constraint=True, to_field='id', related_name='attachments', on_delete=OnDelete.CASCADE)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='addon_attachments', on_delete=OnDelete.CASCADE)),
                ('config_var', fields.CharField(max_length=128)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'addon_attachment', 'app': 'models', 'unique_together': (('addon', 'project'), ('project', 'config_var')), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AddonBackup',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('client', fields.ForeignKeyField('models.Client', source_field='client_id', db_constraint=True, to_field='id', related_name='addon_backups', on_delete=OnDelete.CASCADE)),
                ('addon', fields.ForeignKeyField('models.Addon', source_field='addon_id', null=True, db_constraint=True, to_field='id', related_name='backups', on_delete=OnDelete.SET_NULL)),
                ('addon_name', fields.CharField(max_length=64)),
                ('addon_kind', fields.CharEnumField(description='POSTGRES: postgres\nREDIS: redis', enum_type=AddonKind, max_length=16)),
                ('file_name', fields.CharField(max_length=128)),
                ('size_bytes', fields.BigIntField(default=0)),
                ('kind', fields.CharField(max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'addon_backup', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
