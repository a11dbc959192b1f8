"""S5: the entries' (object_type, object_id, -seq) index holds only entries with field history
(decision 0026).

Its one query (``selectors.field_history``) asks for entries whose ``changes`` are not null; the
read entries (views, searches: most of the trail) have none and no longer write a page of this
index. ``DROP INDEX`` / ``CREATE INDEX``: the table is not rebuilt, so SQLite keeps the head
trigger of 0010/0012.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0012_audit_seq_is_the_key'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='auditentry',
            name='access_audit_object',
        ),
        migrations.AddIndex(
            model_name='auditentry',
            index=models.Index(condition=models.Q(('changes__isnull', False)), fields=['object_type', 'object_id', '-seq'], name='access_audit_object_changes'),
        ),
    ]
