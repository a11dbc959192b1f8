"""SQLite: the contact point insert triggers lose their ``WHEN`` and ``imports_bulkpoints`` goes (decision 0040).

imports/0005 and privacy/0008 made the two insert triggers skip a bulk writer's statements while
a row sat in ``imports_bulkpoints``. Since decision 0033 the import drops those triggers inside
its chunk's transaction instead and never writes that row, so on SQLite the table was always
empty and the ``WHEN NOT EXISTS`` a subquery run for every other insert. The triggers are
written again as they were before 0005 and 0008 (the same bodies, no condition). PostgreSQL
keeps its transaction-local mark, which the import still sets: nothing changes there.
Backwards restores the table and the conditions.
"""

from django.db import migrations

POINTS, FLAG = "people_contactpoint", "imports_bulkpoints"
TRIGGERS = {
    "imports_pointkindcount_added": """CREATE TRIGGER imports_pointkindcount_added AFTER INSERT ON {points} {when}BEGIN
        INSERT INTO imports_pointkindcount (person_id, kind, n) VALUES (NEW.person_id, NEW.kind, 1)
        ON CONFLICT (person_id, kind) DO UPDATE SET n = n + 1;
    END""",
    "privacy_contactdigest_added": """CREATE TRIGGER privacy_contactdigest_added AFTER INSERT ON {points} {when}BEGIN
        INSERT INTO privacy_contactdigest (point_id, version) VALUES (NEW.id, 0)
        ON CONFLICT (point_id) DO UPDATE SET digest = NULL, canonical = NULL, version = version + 1;
    END""",
}
WHEN = f"WHEN NOT EXISTS (SELECT 1 FROM {FLAG}) "


def drop_mark(apps, schema_editor):  # type: ignore[no-untyped-def]
    _install(schema_editor, mark=False)


def restore_mark(apps, schema_editor):  # type: ignore[no-untyped-def]
    _install(schema_editor, mark=True)


def _install(schema_editor, *, mark: bool) -> None:  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        if mark:
            cursor.execute(f"CREATE TABLE {FLAG} (flag integer NOT NULL PRIMARY KEY CHECK (flag = 1))")
        for name, sql in TRIGGERS.items():  # in the order 0005 and 0008 created them
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
            cursor.execute(sql.format(points=POINTS, when=WHEN if mark else ""))
        if not mark:
            cursor.execute(f"DROP TABLE IF EXISTS {FLAG}")


class Migration(migrations.Migration):

    dependencies = [
        ('imports', '0006_importedperson_run_index_in_unique'),
        ('privacy', '0008_digests_skip_bulk_point_writes'),
    ]

    operations = [migrations.RunPython(drop_mark, restore_mark)]
