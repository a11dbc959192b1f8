"""The gate's decision log packed (docs/decisions/0005-packed-decision-log.md), and the US and
Canadian national telephone lists as list kinds of their own.

Existing ``ContactDecision`` rows (one per person) are converted into one ``DecisionOutcome``
per distinct answer of each batch and ``DecisionPack`` rows of person ids, and back again.
"""

import sys
import uuid
from array import array
from collections import defaultdict

import django.db.models.deletion
from django.db import migrations, models


def pack_rows(apps, schema_editor):
    Batch = apps.get_model("privacy", "DecisionBatch")
    Decision = apps.get_model("privacy", "ContactDecision")
    Outcome = apps.get_model("privacy", "DecisionOutcome")
    Pack = apps.get_model("privacy", "DecisionPack")
    for batch in Batch.objects.iterator():
        outcomes: dict[tuple, int] = {}
        people: dict[str, list[tuple[bytes, int]]] = defaultdict(list)
        for person_id, allowed, reasons in Decision.objects.filter(batch=batch).values_list(
                "person_id", "allowed", "reasons").iterator():
            index = outcomes.setdefault((allowed, reasons), len(outcomes))
            pid = uuid.UUID(str(person_id))
            people[pid.hex[:2]].append((pid.bytes, index))
        counts: dict[int, int] = defaultdict(int)
        for members in people.values():
            for _, index in members:
                counts[index] += 1
        Outcome.objects.bulk_create([Outcome(batch=batch, index=i, allowed=allowed, reasons=reasons,
                                             messages=[], count=counts[i])
                                     for (allowed, reasons), i in outcomes.items()])
        packs = []
        for prefix, members in people.items():
            members.sort()
            indexes = array("H", [i for _, i in members])
            if sys.byteorder == "big":  # stored little-endian
                indexes.byteswap()
            packs.append(Pack(batch=batch, prefix=prefix, size=len(members),
                              member_ids=b"".join(m for m, _ in members), outcome_indexes=indexes.tobytes()))
        Pack.objects.bulk_create(packs, batch_size=500)


def unpack_rows(apps, schema_editor):
    Decision = apps.get_model("privacy", "ContactDecision")
    Outcome = apps.get_model("privacy", "DecisionOutcome")
    Pack = apps.get_model("privacy", "DecisionPack")
    for pack in Pack.objects.iterator():
        outcomes = {o.index: o for o in Outcome.objects.filter(batch_id=pack.batch_id)}
        members, indexes = bytes(pack.member_ids), array("H", bytes(pack.outcome_indexes))
        if sys.byteorder == "big":
            indexes.byteswap()
        Decision.objects.bulk_create([
            Decision(batch_id=pack.batch_id, person_id=uuid.UUID(bytes=members[k * 16:k * 16 + 16]),
                     allowed=outcomes[i].allowed, reasons=outcomes[i].reasons)
            for k, i in enumerate(indexes)], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('privacy', '0003_contactdecision_one_person_index'),
    ]

    operations = [
        migrations.AlterField(
            model_name='suppressionlist',
            name='kind',
            field=models.CharField(choices=[('tps', 'Telephone Preference Service'), ('ctps', 'Corporate Telephone Preference Service'), ('mps', 'Mail Preference Service'), ('us_dnc', 'US National Do Not Call Registry'), ('ca_dncl', 'Canada National Do Not Call List'), ('phone_dnc', 'Other telephone do-not-call list'), ('email_dnc', 'Email do-not-contact list')], max_length=16),
        ),
        migrations.CreateModel(
            name='DecisionOutcome',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('index', models.PositiveIntegerField()),
                ('allowed', models.BooleanField()),
                ('reasons', models.CharField(blank=True, help_text='Reason codes, comma-separated', max_length=200)),
                ('messages', models.JSONField(blank=True, default=list, help_text="Each reason's message, in order")),
                ('count', models.PositiveIntegerField(default=0)),
                ('batch', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='outcomes', to='privacy.decisionbatch')),
            ],
            options={
                'ordering': ['batch', 'index'],
            },
        ),
        migrations.CreateModel(
            name='DecisionPack',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('prefix', models.CharField(blank=True, max_length=4)),
                ('size', models.PositiveIntegerField()),
                ('member_ids', models.BinaryField()),
                ('outcome_indexes', models.BinaryField()),
                ('batch', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='packs', to='privacy.decisionbatch')),
            ],
            options={
                'ordering': ['batch', 'prefix'],
            },
        ),
        migrations.AddConstraint(
            model_name='decisionoutcome',
            constraint=models.UniqueConstraint(fields=('batch', 'index'), name='privacy_outcome_once'),
        ),
        migrations.AddIndex(
            model_name='decisionpack',
            index=models.Index(fields=['prefix'], name='privacy_pack_prefix'),
        ),
        migrations.RunPython(pack_rows, unpack_rows),
        migrations.DeleteModel(
            name='ContactDecision',
        ),
    ]
