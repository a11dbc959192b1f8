"""The contact digest trigger on inserts (0006) is skipped for a bulk writer's own statements
(decision 0028): the import's ``imports.bulk.insert_contact_points`` writes the same digest rows
(a row per new point, ``version`` 0, no digest yet) set-based in the same transaction. Every other
insert of a contact point still fires it; updates and deletes are unchanged.

The mark is the imports app's (imports/0005): on PostgreSQL the transaction-local setting
``rapport.bulk_points`` = ``on``, on SQLite a row in ``imports_bulkpoints`` that only the writer's
own uncommitted transaction can see.
"""

from django.db import migrations

POINTS, DIGESTS = "people_contactpoint", "privacy_contactdigest"

POSTGRES_ADDED = """
CREATE OR REPLACE FUNCTION privacy_contactdigest_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {skip}INSERT INTO {digests} (point_id, version) SELECT id, 0 FROM added_points
    ON CONFLICT (point_id) DO UPDATE SET digest = NULL, canonical = NULL, version = {digests}.version + 1;
    RETURN NULL;
END $$;
"""
POSTGRES_SKIP = "IF current_setting('rapport.bulk_points', true) = 'on' THEN RETURN NULL; END IF;\n    "
SQLITE_ADDED = """CREATE TRIGGER privacy_contactdigest_added AFTER INSERT ON {points} {when}BEGIN
        INSERT INTO {digests} (point_id, version) VALUES (NEW.id, 0)
        ON CONFLICT (point_id) DO UPDATE SET digest = NULL, canonical = NULL, version = version + 1;
    END"""
SQLITE_WHEN = "WHEN NOT EXISTS (SELECT 1 FROM imports_bulkpoints) "


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    _install(schema_editor, skip=True)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    _install(schema_editor, skip=False)


def _install(schema_editor, *, skip: bool) -> None:  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(POSTGRES_ADDED.format(digests=DIGESTS, skip=POSTGRES_SKIP if skip else ""))
            return
        cursor.execute("DROP TRIGGER IF EXISTS privacy_contactdigest_added")
        cursor.execute(SQLITE_ADDED.format(digests=DIGESTS, points=POINTS, when=SQLITE_WHEN if skip else ""))


class Migration(migrations.Migration):

    dependencies = [
        ('imports', '0005_bulk_point_writes'),
        ('privacy', '0007_gate_ordered_indexes'),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
