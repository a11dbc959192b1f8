"""Contact points' keyed digests (decision 0018): the tables, the triggers that keep a row per
contact point on each database, and the back-fill of the points that already exist."""

from django.db import migrations, models

POINTS, DIGESTS = "people_contactpoint", "privacy_contactdigest"

# PostgreSQL: statement-level triggers with transition tables, so the import's COPY of a
# million points adds one INSERT … SELECT, not a trigger call per row.
POSTGRES_UP = f"""
CREATE FUNCTION privacy_contactdigest_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {DIGESTS} (point_id, version) SELECT id, 0 FROM added_points
    ON CONFLICT (point_id) DO UPDATE SET digest = NULL, canonical = NULL, version = {DIGESTS}.version + 1;
    RETURN NULL;
END $$;
CREATE FUNCTION privacy_contactdigest_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {DIGESTS} d SET digest = NULL, canonical = NULL, version = d.version + 1
    FROM old_points o JOIN new_points n ON n.id = o.id
    WHERE d.point_id = n.id AND (n.normalised IS DISTINCT FROM o.normalised OR n.kind IS DISTINCT FROM o.kind);
    RETURN NULL;
END $$;
CREATE FUNCTION privacy_contactdigest_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {DIGESTS} d USING removed_points r WHERE d.point_id = r.id;
    RETURN NULL;
END $$;
CREATE TRIGGER privacy_contactdigest_added AFTER INSERT ON {POINTS}
    REFERENCING NEW TABLE AS added_points FOR EACH STATEMENT EXECUTE FUNCTION privacy_contactdigest_added();
CREATE TRIGGER privacy_contactdigest_changed AFTER UPDATE ON {POINTS}
    REFERENCING OLD TABLE AS old_points NEW TABLE AS new_points
    FOR EACH STATEMENT EXECUTE FUNCTION privacy_contactdigest_changed();
CREATE TRIGGER privacy_contactdigest_removed AFTER DELETE ON {POINTS}
    REFERENCING OLD TABLE AS removed_points FOR EACH STATEMENT EXECUTE FUNCTION privacy_contactdigest_removed();
"""
POSTGRES_DOWN = f"""
DROP TRIGGER IF EXISTS privacy_contactdigest_added ON {POINTS};
DROP TRIGGER IF EXISTS privacy_contactdigest_changed ON {POINTS};
DROP TRIGGER IF EXISTS privacy_contactdigest_removed ON {POINTS};
DROP FUNCTION IF EXISTS privacy_contactdigest_added();
DROP FUNCTION IF EXISTS privacy_contactdigest_changed();
DROP FUNCTION IF EXISTS privacy_contactdigest_removed();
"""
# SQLite (and any other database): row-level triggers, one statement each.
SQLITE_UP = [
    f"""CREATE TRIGGER privacy_contactdigest_added AFTER INSERT ON {POINTS} BEGIN
        INSERT INTO {DIGESTS} (point_id, version) VALUES (NEW.id, 0)
        ON CONFLICT (point_id) DO UPDATE SET digest = NULL, canonical = NULL, version = version + 1;
    END""",
    f"""CREATE TRIGGER privacy_contactdigest_changed AFTER UPDATE OF normalised, kind ON {POINTS}
        WHEN NEW.normalised IS NOT OLD.normalised OR NEW.kind IS NOT OLD.kind BEGIN
        UPDATE {DIGESTS} SET digest = NULL, canonical = NULL, version = version + 1 WHERE point_id = NEW.id;
    END""",
    f"""CREATE TRIGGER privacy_contactdigest_removed AFTER DELETE ON {POINTS} BEGIN
        DELETE FROM {DIGESTS} WHERE point_id = OLD.id;
    END""",
]
SQLITE_DOWN = [f"DROP TRIGGER IF EXISTS privacy_contactdigest_{name}" for name in ("added", "changed", "removed")]
CHUNK = 50_000


def create_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(POSTGRES_UP)
        else:
            for statement in SQLITE_UP:
                cursor.execute(statement)


def drop_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(POSTGRES_DOWN)
        else:
            for statement in SQLITE_DOWN:
                cursor.execute(statement)


def back_fill(apps, schema_editor):  # type: ignore[no-untyped-def]
    """A digest row for every existing contact point, digests made now (the triggers, created
    first, hold the table for the rest of this migration's transaction on PostgreSQL)."""
    # The current digest code, not a frozen copy: digests are derived data that
    # ``digests.refresh`` remakes whenever they are cleared, and its fingerprint names the scheme.
    from rapport.privacy import digests

    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {POINTS}")  # noqa: S608
        if not cursor.fetchone()[0]:
            return
        cursor.execute(f"SELECT id, kind, normalised FROM {POINTS}")  # noqa: S608
        points = cursor.fetchall()
    with connection.cursor() as cursor:
        for start in range(0, len(points), CHUNK):
            chunk = points[start:start + CHUNK]
            made = digests.digests_of([(kind, value) for _, kind, value in chunk])
            rows = [(pk, 0, digest, canonical) for (pk, _, _), (digest, canonical) in zip(chunk, made, strict=True)]
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {DIGESTS} (point_id, version, digest, canonical) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(f"INSERT INTO {DIGESTS} (point_id, version, digest, canonical) "  # noqa: S608
                                   "VALUES (%s, %s, %s, %s)", rows)
    apps.get_model("privacy", "ContactDigestKey").objects.create(fingerprint=digests.key_fingerprint())


class Migration(migrations.Migration):

    dependencies = [
        ('people', '0001_initial'),
        ('privacy', '0005_gate_covering_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='ContactDigestKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('fingerprint', models.CharField(max_length=64)),
            ],
        ),
        migrations.CreateModel(
            name='ContactDigest',
            fields=[
                ('point_id', models.UUIDField(primary_key=True, serialize=False)),
                ('version', models.IntegerField(default=0)),
                ('digest', models.CharField(max_length=64, null=True)),
                ('canonical', models.CharField(max_length=64, null=True)),
            ],
            options={
                'indexes': [
                    models.Index(condition=models.Q(('digest__isnull', True)), fields=['point_id'],
                                 name='privacy_digest_missing'),
                    models.Index(condition=models.Q(('digest__isnull', False)), fields=['digest'],
                                 name='privacy_digest_value'),
                    models.Index(condition=models.Q(('canonical__isnull', False)), fields=['canonical'],
                                 name='privacy_digest_canonical'),
                ],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
        migrations.RunPython(back_fill, migrations.RunPython.noop),
    ]
