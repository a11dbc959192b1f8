"""C6 — the retention policies a new installation starts with (editable on the retention page)."""

from django.db import migrations

DEFAULTS = [
    ("dormant-leads", "dormant_people", "customer_relationship", 24, "erase",
     "Leads that never converted: erased 24 months after their last activity when they gave no consent."),
    ("timeline-entries", "old_interactions", "customer_relationship", 72, "delete",
     "Timeline entries are deleted six years after they happened (limitation period)."),
    ("touch-log", "touch_log", "marketing", 12, "delete",
     "The outbound contact log is only needed for frequency caps and complaints: 12 months."),
    ("decision-log", "decision_log", "consent_records", 24, "delete",
     "Contact gate decisions are kept 24 months as proof that contacts were checked."),
]


def create(apps, schema_editor):
    RetentionPolicy = apps.get_model("privacy", "RetentionPolicy")
    for key, rule, purpose, months, action, description in DEFAULTS:
        RetentionPolicy.objects.get_or_create(key=key, defaults={
            "rule": rule, "purpose": purpose, "months": months, "action": action,
            "description": description, "enabled": True})


def remove(apps, schema_editor):
    RetentionPolicy = apps.get_model("privacy", "RetentionPolicy")
    RetentionPolicy.objects.filter(key__in=[d[0] for d in DEFAULTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("privacy", "0001_initial")]
    operations = [migrations.RunPython(create, remove)]
