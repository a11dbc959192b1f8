"""S5: the entries' ``action`` index leaves out views (decision 0037).

Views are most of the trail (every API and UI read of a person writes one) and the audit
search finds them without this index: the newest views are the newest entries. Every other
action filter still reads the index: ``selectors.audit_search`` adds ``NOT action = 'view'``
to them, which both planners match against the index's condition.

The field's own index (``db_index``; on PostgreSQL also its ``varchar_pattern_ops`` twin) is
dropped by name, found by introspection: ``AlterField`` would rebuild the table on SQLite,
which drops the head trigger of 0010/0012. Going back creates Django's own index(es) again.
"""

from django.db import migrations, models

TABLE = "access_auditentry"
NEW = "access_audit_action_not_view"


def drop_field_index(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    for name, info in constraints.items():
        if info["index"] and not info["primary_key"] and info["columns"] == ["action"] and name != NEW:
            schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def create_field_index(apps, schema_editor):
    model = apps.get_model("access", "AuditEntry")
    field = model._meta.get_field("action")  # the state after going back: db_index=True
    schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))
    if schema_editor.connection.vendor == "postgresql":
        like = schema_editor._create_like_index_sql(model, field)
        if like is not None:
            schema_editor.execute(like)


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0013_audit_object_index_changes_only'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='auditentry',
                    name='action',
                    field=models.CharField(max_length=32),
                ),
            ],
            database_operations=[migrations.RunPython(drop_field_index, create_field_index)],
        ),
        migrations.AddIndex(
            model_name='auditentry',
            index=models.Index(condition=models.Q(('action', 'view'), _negated=True), fields=['action'], name=NEW),
        ),
    ]
