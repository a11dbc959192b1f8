"""S1 — the seed roles, their field rules and the sharing defaults (see rapport.access.seeds)."""

from django.db import migrations


def seed(apps, schema_editor):
    from rapport.access.seeds import seed_access

    seed_access(apps)


def unseed(apps, schema_editor):
    from rapport.access.seeds import ROLE_SEEDS

    Role = apps.get_model("access", "Role")
    User = apps.get_model("access", "User")
    keys = [r["key"] for r in ROLE_SEEDS]
    User.objects.filter(role__key__in=keys).update(role=None)
    Role.objects.filter(key__in=keys).delete()
    apps.get_model("access", "SharingDefault").objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ("access", "0002_roles_teams_sharing_audit"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
