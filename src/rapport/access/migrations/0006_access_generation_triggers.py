"""S1–S7: database triggers give the shared access-generation row a new value on every write
to the tables a process caches its sharing configuration from (see ``access/policy.py``), so
raw SQL, bulk writes and writes that bypass the services invalidate the caches too.

Values are random (as ``policy.access_changed`` writes them): a rolled-back change cannot
leave a cache labelled with a value that a later committed change would give the row again.
"""

from django.db import migrations

# table -> what to watch (users: only the columns the hierarchy depends on)
WATCHED = ("access_role", "access_teammembership", "access_sharingdefault", "access_sharingrule",
           "access_fieldrule")
USER_COLUMNS = ("manager_id", "role_id", "is_active")
GENERATION = "access_accessgeneration"

SQLITE_BUMP = (f"INSERT OR IGNORE INTO {GENERATION} (id, value) VALUES (1, random()); "  # noqa: S608
               f"UPDATE {GENERATION} SET value = random() WHERE id = 1;")


def _sqlite_forward() -> list[str]:
    statements = []
    for table in WATCHED:
        for event in ("INSERT", "UPDATE", "DELETE"):
            statements.append(f"CREATE TRIGGER {table}_gen_{event.lower()} AFTER {event} ON {table} "
                              f"BEGIN {SQLITE_BUMP} END")
    for event in ("INSERT", "DELETE"):
        statements.append(f"CREATE TRIGGER access_user_gen_{event.lower()} AFTER {event} ON access_user "
                          f"BEGIN {SQLITE_BUMP} END")
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in USER_COLUMNS)
    statements.append(f"CREATE TRIGGER access_user_gen_update AFTER UPDATE OF {', '.join(USER_COLUMNS)} "
                      f"ON access_user WHEN {changed} BEGIN {SQLITE_BUMP} END")
    return statements


def _sqlite_backward() -> list[str]:
    names = [f"{t}_gen_{e}" for t in WATCHED for e in ("insert", "update", "delete")]
    names += [f"access_user_gen_{e}" for e in ("insert", "update", "delete")]
    return [f"DROP TRIGGER IF EXISTS {name}" for name in names]


def _postgres_forward() -> list[str]:
    statements = [
        "CREATE OR REPLACE FUNCTION access_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$ "  # noqa: S608
        f"BEGIN INSERT INTO {GENERATION} (id, value) VALUES (1, floor(random() * 4e18)::bigint) "
        "ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value; RETURN NULL; END $$",
    ]
    for table in WATCHED:
        statements.append(f"CREATE TRIGGER {table}_gen AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                          "FOR EACH STATEMENT EXECUTE FUNCTION access_generation_bump()")
    statements.append("CREATE TRIGGER access_user_gen AFTER INSERT OR DELETE OR TRUNCATE ON access_user "
                      "FOR EACH STATEMENT EXECUTE FUNCTION access_generation_bump()")
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in USER_COLUMNS)
    statements.append(f"CREATE TRIGGER access_user_gen_update AFTER UPDATE OF {', '.join(USER_COLUMNS)} "
                      f"ON access_user FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION access_generation_bump()")
    return statements


def _postgres_backward() -> list[str]:
    statements = [f"DROP TRIGGER IF EXISTS {t}_gen ON {t}" for t in WATCHED]
    statements += ["DROP TRIGGER IF EXISTS access_user_gen ON access_user",
                   "DROP TRIGGER IF EXISTS access_user_gen_update ON access_user",
                   "DROP FUNCTION IF EXISTS access_generation_bump()"]
    return statements


def _run(schema_editor, sqlite, postgres) -> None:
    vendor = schema_editor.connection.vendor
    statements = sqlite() if vendor == "sqlite" else postgres() if vendor == "postgresql" else []
    for statement in statements:
        schema_editor.execute(statement)


def forward(apps, schema_editor):
    _run(schema_editor, _sqlite_forward, _postgres_forward)


def backward(apps, schema_editor):
    _run(schema_editor, _sqlite_backward, _postgres_backward)


class Migration(migrations.Migration):

    dependencies = [
        ("access", "0005_access_generation"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
