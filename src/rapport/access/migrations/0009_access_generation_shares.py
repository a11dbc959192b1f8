"""S2: manual shares are cached per process too (decision 0010), so writes to
``access_recordshare`` must invalidate them by any path.

The generation row gets a second value: ``value`` keeps changing on every watched change and
now on every write to ``access_recordshare`` too; ``config_value`` changes only with the
sharing configuration (the tables of migration 0006). A share then costs a process one
reload of the user's shared ids, not of the whole configuration. The token lookup reads
``value`` with the token, so a request that finds it unchanged needs no query at all.
"""

from importlib import import_module

from django.db import migrations, models

BEFORE = import_module("rapport.access.migrations.0006_access_generation_triggers")
GENERATION = BEFORE.GENERATION
SHARES = "access_recordshare"

SQLITE_CONFIG_BUMP = (f"INSERT OR IGNORE INTO {GENERATION} (id, value, config_value) VALUES (1, random(), random()); "  # noqa: S608
                      f"UPDATE {GENERATION} SET value = random(), config_value = random() WHERE id = 1;")
SQLITE_SHARES_BUMP = (f"INSERT OR IGNORE INTO {GENERATION} (id, value, config_value) VALUES (1, random(), 0); "  # noqa: S608
                      f"UPDATE {GENERATION} SET value = random() WHERE id = 1;")
EVENTS = ("insert", "update", "delete")


def _sqlite_forward() -> list[str]:
    # 0006's triggers (dropped before the column was added) with the bump of both values
    statements = [s.replace(BEFORE.SQLITE_BUMP, SQLITE_CONFIG_BUMP) for s in BEFORE._sqlite_forward()]
    statements += [f"CREATE TRIGGER {SHARES}_gen_{event} AFTER {event.upper()} ON {SHARES} "
                   f"BEGIN {SQLITE_SHARES_BUMP} END" for event in EVENTS]
    return statements


def _sqlite_backward() -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {SHARES}_gen_{event}" for event in EVENTS] + BEFORE._sqlite_backward()


def _postgres_forward() -> list[str]:
    return [
        "CREATE OR REPLACE FUNCTION access_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$ "  # noqa: S608
        f"BEGIN INSERT INTO {GENERATION} (id, value, config_value) "
        "VALUES (1, floor(random() * 4e18)::bigint, floor(random() * 4e18)::bigint) "
        "ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value, config_value = EXCLUDED.config_value; "
        "RETURN NULL; END $$",
        "CREATE OR REPLACE FUNCTION access_shares_bump() RETURNS trigger LANGUAGE plpgsql AS $$ "  # noqa: S608
        f"BEGIN INSERT INTO {GENERATION} (id, value, config_value) VALUES (1, floor(random() * 4e18)::bigint, 0) "
        "ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value; RETURN NULL; END $$",
        f"CREATE TRIGGER {SHARES}_gen AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {SHARES} "
        "FOR EACH STATEMENT EXECUTE FUNCTION access_shares_bump()",
    ]


def _postgres_backward() -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {SHARES}_gen ON {SHARES}", "DROP FUNCTION IF EXISTS access_shares_bump()",
            BEFORE._postgres_forward()[0]]  # 0006's bump function (value only)


def drop_sqlite_triggers(apps, schema_editor):
    # SQLite adds the column by rebuilding the table, which triggers naming it would refuse.
    BEFORE._run(schema_editor, BEFORE._sqlite_backward, list)


def restore_sqlite_triggers(apps, schema_editor):
    BEFORE._run(schema_editor, BEFORE._sqlite_forward, list)


def forward(apps, schema_editor):
    schema_editor.execute(f"UPDATE {GENERATION} SET config_value = value")  # noqa: S608 - constant
    BEFORE._run(schema_editor, _sqlite_forward, _postgres_forward)


def backward(apps, schema_editor):
    BEFORE._run(schema_editor, _sqlite_backward, _postgres_backward)


class Migration(migrations.Migration):

    dependencies = [
        ("access", "0008_audit_actor_one_index"),
    ]

    operations = [
        migrations.RunPython(drop_sqlite_triggers, restore_sqlite_triggers),
        migrations.AddField(
            model_name="accessgeneration",
            name="config_value",
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(forward, backward),
    ]
