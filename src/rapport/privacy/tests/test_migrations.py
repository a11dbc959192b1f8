"""Migration 0004 packs the old one-row-per-person decision log, and unpacks it going back."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from rapport.people.models import Person
from rapport.privacy import gate

BEFORE = [("privacy", "0003_contactdecision_one_person_index")]
AFTER = [("privacy", "0004_packed_decision_log")]


def _migrate(targets: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_old_log_is_packed_and_unpacked():
    # given: the old log (person ids need no row: the log has no constraint on them)
    old = _migrate(BEFORE)
    batch = old.get_model("privacy", "DecisionBatch").objects.create(
        channel="email", purpose="newsletter", at=timezone.now(), size=3, allowed_count=1)
    ids = [uuid.uuid4() for _ in range(3)]
    rows = [(ids[0], True, ""), (ids[1], False, "no_consent"), (ids[2], False, "no_consent,preference")]
    decision = old.get_model("privacy", "ContactDecision")
    for pk, allowed, reasons in rows:
        decision.objects.create(batch=batch, person_id=pk, allowed=allowed, reasons=reasons)
    try:
        # when
        _migrate(AFTER)
        # then: each person's decision reads back from the packs
        for pk, allowed, reasons in rows:
            (entry,) = gate.decisions_about(Person(pk=pk))
            assert (entry["allowed"], ",".join(entry["reasons"])) == (allowed, reasons)
        # and back: one row per person again
        back = _migrate(BEFORE)
        assert sorted((r.person_id, r.allowed, r.reasons) for r in back.get_model(
            "privacy", "ContactDecision").objects.all()) == sorted(rows)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
