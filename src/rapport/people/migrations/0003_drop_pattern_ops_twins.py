"""PostgreSQL: drop the ``varchar_pattern_ops`` twins Django adds to every indexed CharField (decision 0040).

For a ``CharField(db_index=True)`` Django's PostgreSQL backend creates two indexes: the plain one
and a ``…_like`` one in ``varchar_pattern_ops``, which only ``LIKE 'abc%'`` (``startswith``) under
a non-C collation can use. Rapport's prefix search is written as ranges on folded keys
(``core.search.prefix_q``, decision 0002) and its other reads of these columns are equalities,
which the plain index serves; the blind indexes are matched exactly (``blind_q``) and key
rotation's ``NOT startswith`` reads every row anyway. So the twins were only written: at every
insert of a person (7 of its 19 indexes) and of a contact point (2 of 9), a million-row import
among them. SQLite never had them. The plain indexes and the models' ``db_index`` stay (but
``search_key``'s, which people/0004 drops), so Django's later migrations of these fields drop a
twin with ``IF EXISTS`` as they always do.
"""

from django.db import migrations

TWINS = {
    "person": ("given_key", "family_key", "preferred_key", "country", "birth_date_index", "gender_index",
               "income_band_index"),
    "contactpoint": ("normalised", "search_key"),
}


def drop_twins(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, fields in TWINS.items():
        model = apps.get_model("people", model_name)
        for name in fields:
            column = model._meta.get_field(name).column
            twin = schema_editor._create_index_name(model._meta.db_table, [column], suffix="_like")
            schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(twin)}")


def create_twins(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, fields in TWINS.items():
        model = apps.get_model("people", model_name)
        for name in fields:
            schema_editor.execute(schema_editor._create_like_index_sql(model, model._meta.get_field(name)))


class Migration(migrations.Migration):

    dependencies = [
        ('people', '0002_person_demographics'),
    ]

    operations = [migrations.RunPython(drop_twins, create_twins)]
