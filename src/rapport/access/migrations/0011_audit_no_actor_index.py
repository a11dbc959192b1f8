"""S5: entries lose the (actor_id, -seq) index (decision 0022).

No query looks entries up by actor id alone: the audit search matches the actor's name, and the
break-glass check filters on the person too (the person index). Each index is one more page in
every audited read's commit. ``DROP INDEX``: the table is not rebuilt, so SQLite keeps the
head trigger of 0010.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0010_audit_head_trigger'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='auditentry',
            name='access_audit_actor',
        ),
    ]
