"""Contact points lose three indexes nothing reads through (decision 0040).

- ``created_at``, ``updated_at`` (every ``RapportModel`` has them indexed): contact points are
  read per person (the ``person_id`` index) and sorted within a person; no query selects or
  orders points by date across people.
- ``search_key``: every read of it also names the kind (the search's email and phone prefixes,
  identity's email blocking), which the ``(kind, search_key)`` index serves.

A million-row import writes about two million points, each into every index of the table. The
state change is done by ``SeparateDatabaseAndState`` with explicit ``DROP INDEX``: Django's
``AlterField`` would rebuild the whole table on SQLite, and with it drop the table's triggers.
"""

from django.db import migrations, models

COLUMNS = ("created_at", "updated_at", "search_key")
TABLE = "people_contactpoint"


def drop_indexes(apps, schema_editor):  # type: ignore[no-untyped-def]
    for column in COLUMNS:
        name = schema_editor._create_index_name(TABLE, [column], suffix="")
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def create_indexes(apps, schema_editor):  # type: ignore[no-untyped-def]
    for column in COLUMNS:
        name = schema_editor._create_index_name(TABLE, [column], suffix="")
        schema_editor.execute(f"CREATE INDEX {schema_editor.quote_name(name)} ON {TABLE} "
                              f"({schema_editor.quote_name(column)})")


class Migration(migrations.Migration):

    dependencies = [
        ('people', '0003_drop_pattern_ops_twins'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name='contactpoint', name='created_at',
                                      field=models.DateTimeField(auto_now_add=True)),
                migrations.AlterField(model_name='contactpoint', name='updated_at',
                                      field=models.DateTimeField(auto_now=True)),
                migrations.AlterField(model_name='contactpoint', name='search_key',
                                      field=models.CharField(editable=False, max_length=200)),
            ],
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
        ),
    ]
