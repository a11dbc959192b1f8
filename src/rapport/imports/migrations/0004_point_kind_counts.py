"""How many contact points of each kind each person has (decision 0025), kept by triggers on
``people_contactpoint`` on each database and back-filled here, so a CSV export's column count
(the most points of a kind anyone has) is an index look-up, not a grouped scan of every point.

A table of this migration only (no model): only ``exports._kind_maxima`` reads it.
"""

from django.db import migrations

POINTS, COUNTS = "people_contactpoint", "imports_pointkindcount"

# PostgreSQL: statement-level triggers with transition tables (an import's multi-row INSERT or
# COPY adds one grouped upsert, not a trigger call per row); TRUNCATE empties the counts too.
POSTGRES_UP = f"""
LOCK TABLE {POINTS} IN SHARE MODE;
CREATE TABLE {COUNTS} (person_id uuid NOT NULL, kind varchar(16) NOT NULL, n integer NOT NULL,
                       PRIMARY KEY (person_id, kind));
CREATE INDEX {COUNTS}_kind_n ON {COUNTS} (kind, n);
INSERT INTO {COUNTS} (person_id, kind, n) SELECT person_id, kind, COUNT(*) FROM {POINTS} GROUP BY person_id, kind;
CREATE FUNCTION {COUNTS}_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {COUNTS} (person_id, kind, n)
    SELECT person_id, kind, COUNT(*) FROM added_points GROUP BY person_id, kind ORDER BY person_id, kind
    ON CONFLICT (person_id, kind) DO UPDATE SET n = {COUNTS}.n + EXCLUDED.n;
    RETURN NULL;
END $$;
CREATE FUNCTION {COUNTS}_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {COUNTS} c SET n = c.n - r.n
    FROM (SELECT person_id, kind, COUNT(*) AS n FROM removed_points GROUP BY person_id, kind) r
    WHERE c.person_id = r.person_id AND c.kind = r.kind;
    DELETE FROM {COUNTS} c USING (SELECT DISTINCT person_id, kind FROM removed_points) r
    WHERE c.person_id = r.person_id AND c.kind = r.kind AND c.n <= 0;
    RETURN NULL;
END $$;
CREATE FUNCTION {COUNTS}_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {COUNTS} c SET n = c.n - m.n
    FROM (SELECT o.person_id, o.kind, COUNT(*) AS n FROM old_points o JOIN new_points p ON p.id = o.id
          WHERE p.person_id IS DISTINCT FROM o.person_id OR p.kind IS DISTINCT FROM o.kind
          GROUP BY o.person_id, o.kind) m
    WHERE c.person_id = m.person_id AND c.kind = m.kind;
    INSERT INTO {COUNTS} (person_id, kind, n)
    SELECT p.person_id, p.kind, COUNT(*) FROM old_points o JOIN new_points p ON p.id = o.id
    WHERE p.person_id IS DISTINCT FROM o.person_id OR p.kind IS DISTINCT FROM o.kind
    GROUP BY p.person_id, p.kind ORDER BY p.person_id, p.kind
    ON CONFLICT (person_id, kind) DO UPDATE SET n = {COUNTS}.n + EXCLUDED.n;
    DELETE FROM {COUNTS} c USING (SELECT DISTINCT o.person_id, o.kind FROM old_points o
                                  JOIN new_points p ON p.id = o.id
                                  WHERE p.person_id IS DISTINCT FROM o.person_id OR p.kind IS DISTINCT FROM o.kind) m
    WHERE c.person_id = m.person_id AND c.kind = m.kind AND c.n <= 0;
    RETURN NULL;
END $$;
CREATE FUNCTION {COUNTS}_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {COUNTS};
    RETURN NULL;
END $$;
CREATE TRIGGER {COUNTS}_added AFTER INSERT ON {POINTS}
    REFERENCING NEW TABLE AS added_points FOR EACH STATEMENT EXECUTE FUNCTION {COUNTS}_added();
CREATE TRIGGER {COUNTS}_changed AFTER UPDATE ON {POINTS}
    REFERENCING OLD TABLE AS old_points NEW TABLE AS new_points
    FOR EACH STATEMENT EXECUTE FUNCTION {COUNTS}_changed();
CREATE TRIGGER {COUNTS}_removed AFTER DELETE ON {POINTS}
    REFERENCING OLD TABLE AS removed_points FOR EACH STATEMENT EXECUTE FUNCTION {COUNTS}_removed();
CREATE TRIGGER {COUNTS}_emptied AFTER TRUNCATE ON {POINTS} FOR EACH STATEMENT EXECUTE FUNCTION {COUNTS}_emptied();
"""
POSTGRES_DOWN = f"""
DROP TRIGGER IF EXISTS {COUNTS}_added ON {POINTS};
DROP TRIGGER IF EXISTS {COUNTS}_changed ON {POINTS};
DROP TRIGGER IF EXISTS {COUNTS}_removed ON {POINTS};
DROP TRIGGER IF EXISTS {COUNTS}_emptied ON {POINTS};
DROP FUNCTION IF EXISTS {COUNTS}_added();
DROP FUNCTION IF EXISTS {COUNTS}_changed();
DROP FUNCTION IF EXISTS {COUNTS}_removed();
DROP FUNCTION IF EXISTS {COUNTS}_emptied();
DROP TABLE IF EXISTS {COUNTS};
"""
# SQLite: row-level triggers (the migration holds the write lock, so nothing slips between the
# back-fill and the triggers).
SQLITE_UP = [
    f"""CREATE TABLE {COUNTS} (person_id char(32) NOT NULL, kind varchar(16) NOT NULL, n integer NOT NULL,
        PRIMARY KEY (person_id, kind)) WITHOUT ROWID""",
    f"CREATE INDEX {COUNTS}_kind_n ON {COUNTS} (kind, n)",
    f"INSERT INTO {COUNTS} (person_id, kind, n) SELECT person_id, kind, COUNT(*) FROM {POINTS} "
    "GROUP BY person_id, kind",
    f"""CREATE TRIGGER {COUNTS}_added AFTER INSERT ON {POINTS} BEGIN
        INSERT INTO {COUNTS} (person_id, kind, n) VALUES (NEW.person_id, NEW.kind, 1)
        ON CONFLICT (person_id, kind) DO UPDATE SET n = n + 1;
    END""",
    f"""CREATE TRIGGER {COUNTS}_changed AFTER UPDATE OF person_id, kind ON {POINTS}
        WHEN NEW.person_id IS NOT OLD.person_id OR NEW.kind IS NOT OLD.kind BEGIN
        UPDATE {COUNTS} SET n = n - 1 WHERE person_id = OLD.person_id AND kind = OLD.kind;
        DELETE FROM {COUNTS} WHERE person_id = OLD.person_id AND kind = OLD.kind AND n <= 0;
        INSERT INTO {COUNTS} (person_id, kind, n) VALUES (NEW.person_id, NEW.kind, 1)
        ON CONFLICT (person_id, kind) DO UPDATE SET n = n + 1;
    END""",
    f"""CREATE TRIGGER {COUNTS}_removed AFTER DELETE ON {POINTS} BEGIN
        UPDATE {COUNTS} SET n = n - 1 WHERE person_id = OLD.person_id AND kind = OLD.kind;
        DELETE FROM {COUNTS} WHERE person_id = OLD.person_id AND kind = OLD.kind AND n <= 0;
    END""",
]
SQLITE_DOWN = [*(f"DROP TRIGGER IF EXISTS {COUNTS}_{name}" for name in ("added", "changed", "removed")),
               f"DROP TABLE IF EXISTS {COUNTS}"]


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(POSTGRES_UP)
        else:
            for statement in SQLITE_UP:
                cursor.execute(statement)


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(POSTGRES_DOWN)
        else:
            for statement in SQLITE_DOWN:
                cursor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('people', '0002_person_demographics'),
        ('imports', '0003_json_format'),
    ]

    operations = [migrations.RunPython(create, drop)]
