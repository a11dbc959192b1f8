"""S5: on SQLite the chain head follows the entries by trigger (decision 0022).

Inserting an entry whose seq is at or past the head's moves the head to it (seq and hash), in
the inserting statement. That lets a single entry be appended in one statement
(``audit._append_here``: ``INSERT … SELECT`` after the head row, which a writing statement has
locked before it reads), and the reserving path no longer moves the head's hash itself.
PostgreSQL keeps its statements (a data-modifying ``WITH``) and gets no trigger.

SQLite drops a table's triggers when a migration rebuilds the table; a later migration that
alters ``access_auditentry`` must create this trigger again (``test_audit_here`` checks it
exists after every migration).
"""

from django.db import migrations

ENTRIES, HEAD = "access_auditentry", "access_auditchainhead"
TRIGGER = "access_auditentry_moves_head"
SQLITE_FORWARD = (f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON {ENTRIES} "  # noqa: S608 - constant
                  f"BEGIN UPDATE {HEAD} SET seq = NEW.seq, hash = NEW.hash WHERE id = 1 AND seq <= NEW.seq; END")
SQLITE_BACKWARD = f"DROP TRIGGER IF EXISTS {TRIGGER}"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_BACKWARD)


class Migration(migrations.Migration):

    dependencies = [
        ("access", "0009_access_generation_shares"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
