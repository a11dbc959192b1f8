"""The import's bulk inserts of contact points keep their per-kind counts themselves (decision 0028).

The count trigger of 0004 on inserts is skipped for statements a bulk writer marks as its own
(``imports.bulk.insert_contact_points``), which writes the same counts set-based in the same
transaction; every other insert still fires it. The mark:

- PostgreSQL: the transaction-local setting ``rapport.bulk_points`` = ``on``
  (``set_config(…, true)``), checked at the top of the statement-level trigger function;
- SQLite: a row in the one-row table ``imports_bulkpoints``, inserted and deleted by the writer
  inside its own write transaction, so no other connection ever sees it committed (SQLite has
  one writer at a time and readers see committed data only). A regular table because a
  non-TEMP trigger cannot read a temp table, and a connection function would make the trigger
  fail on every other connection (the sqlite3 shell, a backup tool).

The privacy app's digest trigger checks the same mark (privacy/0008).
"""

from django.db import migrations

POINTS, COUNTS, FLAG = "people_contactpoint", "imports_pointkindcount", "imports_bulkpoints"

POSTGRES_ADDED = """
CREATE OR REPLACE FUNCTION {counts}_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {skip}INSERT INTO {counts} (person_id, kind, n)
    SELECT person_id, kind, COUNT(*) FROM added_points GROUP BY person_id, kind ORDER BY person_id, kind
    ON CONFLICT (person_id, kind) DO UPDATE SET n = {counts}.n + EXCLUDED.n;
    RETURN NULL;
END $$;
"""
POSTGRES_SKIP = "IF current_setting('rapport.bulk_points', true) = 'on' THEN RETURN NULL; END IF;\n    "
SQLITE_ADDED = """CREATE TRIGGER {counts}_added AFTER INSERT ON {points} {when}BEGIN
        INSERT INTO {counts} (person_id, kind, n) VALUES (NEW.person_id, NEW.kind, 1)
        ON CONFLICT (person_id, kind) DO UPDATE SET n = n + 1;
    END"""
SQLITE_WHEN = f"WHEN NOT EXISTS (SELECT 1 FROM {FLAG}) "


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    _install(schema_editor, skip=True)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    _install(schema_editor, skip=False)


def _install(schema_editor, *, skip: bool) -> None:  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(POSTGRES_ADDED.format(counts=COUNTS, skip=POSTGRES_SKIP if skip else ""))
            return
        if skip:
            cursor.execute(f"CREATE TABLE {FLAG} (flag integer NOT NULL PRIMARY KEY CHECK (flag = 1))")
        cursor.execute(f"DROP TRIGGER IF EXISTS {COUNTS}_added")
        cursor.execute(SQLITE_ADDED.format(counts=COUNTS, points=POINTS, when=SQLITE_WHEN if skip else ""))
        if not skip:
            cursor.execute(f"DROP TABLE IF EXISTS {FLAG}")


class Migration(migrations.Migration):

    dependencies = [
        ('imports', '0004_point_kind_counts'),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
