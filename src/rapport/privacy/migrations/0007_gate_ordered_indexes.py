"""SQLite: the indexes the gate's ordered batch query walks (decision 0021).

The batch reads every person in id order and probes each fact table by person id; these
indexes let every step of that walk read one index, in the same order, without a row lookup
(a random read per person). PostgreSQL hash-joins the tables instead and gets nothing here,
so nothing is created there.
"""

from django.db import migrations

# (name, table, columns): names the gate's query gives as INDEXED BY (gate.ORDERED_INDEXES).
INDEXES = [
    ("privacy_gate_person", "people_person", "id, country, timezone"),
    ("privacy_gate_point", "people_contactpoint", "person_id, kind"),
    ("privacy_gate_state", "privacy_consentstate", "person_id, purpose, channel, status, lawful_basis, expires_at"),
    ("privacy_gate_touch", "privacy_touch", "person_id, marketing, occurred_at"),
]


def create_indexes(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        for name, table, columns in INDEXES:
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")


def drop_indexes(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        for name, _, _ in INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ('people', '0002_person_demographics'),
        ('privacy', '0006_contact_digests'),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes),
    ]
