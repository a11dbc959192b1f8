"""ImportedPerson: no index of its own on import_run_id — the unique (import_run_id, person_id) one leads
with it, and the ledger's reads (this import's rows for a chunk's matched people, the undo's delete,
the cascade from an import) all filter on import_run_id first. One index fewer to write per person
an import creates or changes."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('imports', '0005_bulk_point_writes'),
    ]

    operations = [
        migrations.AlterField(
            model_name='importedperson',
            name='import_run',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='people', to='imports.import'),
        ),
    ]
