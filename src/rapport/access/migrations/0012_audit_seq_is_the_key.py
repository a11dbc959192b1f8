"""S5: an audit entry's seq is its primary key; the separate ``id`` goes (decision 0026).

On SQLite the key is declared ``integer`` (``ChainSeqField``), so it is the table's rowid: an
append no longer writes a rowid-to-id mapping, a unique ``seq`` index and AUTOINCREMENT's
``sqlite_sequence`` row. On PostgreSQL the unique constraint on seq becomes the primary key and
the id column with its identity sequence goes. Existing entries keep their seq and hashes (the
hash never covered the id), so the chain verifies as before.

SQLite rebuilds the table for both operations, which drops the head trigger of 0010: it is
created again here, after the rebuilds, and before them going back.
"""

from django.db import migrations

import rapport.access.models

ENTRIES, HEAD = "access_auditentry", "access_auditchainhead"
TRIGGER = "access_auditentry_moves_head"
# 0010's trigger, as it was created there
SQLITE_TRIGGER = (f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON {ENTRIES} "  # noqa: S608 - constant
                  f"BEGIN UPDATE {HEAD} SET seq = NEW.seq, hash = NEW.hash WHERE id = 1 AND seq <= NEW.seq; END")


def head_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER}")
        schema_editor.execute(SQLITE_TRIGGER)


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0011_audit_no_actor_index'),
    ]

    operations = [
        # going back, the trigger is created again after the table's rebuilds (operations run reversed)
        migrations.RunPython(migrations.RunPython.noop, head_trigger),
        migrations.RemoveField(
            model_name='auditentry',
            name='id',
        ),
        migrations.AlterField(
            model_name='auditentry',
            name='seq',
            field=rapport.access.models.ChainSeqField(primary_key=True, serialize=False),
        ),
        migrations.RunPython(head_trigger, migrations.RunPython.noop),
    ]
