"""I2 — a (family_key, given_key) index on people_person for the real-time check's name block.

The people app indexes each key alone; with a million people the planners drive a name
lookup through one of them and read every "Lyon" (16,000 rows, 120–160 ms on SQLite) to find
a rare given name. This index answers ``family_key = ? AND given_key IN (…)`` (and a surname
alone) directly. It belongs to identity's query, so identity's migration creates it with
portable SQL; Django's model state does not know it (docs/decisions/0011).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0001_review_queue_and_merge_records"),
        ("people", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            sql="CREATE INDEX identity_person_name_block ON people_person (family_key, given_key)",
            reverse_sql="DROP INDEX identity_person_name_block",
        ),
    ]
