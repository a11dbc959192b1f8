"""Contact points' stored digests (decision 0018): the triggers keep a row per point on this
database, the batch fills and joins them, a changed point or key never matches stale digests."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from rapport.people.models import ContactPoint, Person
from rapport.privacy import digests, gate, suppression
from rapport.privacy.models import ContactDigest, ContactDigestKey

pytestmark = pytest.mark.django_db


def _at() -> dt.datetime:
    return timezone.now()


def _row(point: ContactPoint) -> ContactDigest | None:
    return ContactDigest.objects.filter(point_id=point.pk).first()


def test_a_new_contact_point_gets_an_empty_row_that_refresh_fills(make_person):
    # given
    person = make_person(emails=["ann.lee+news@gmail.com"], phones=["+12125550100"], country="US")
    email, phone = (person.contact_points.get(kind=k) for k in ("email", "phone"))
    assert _row(email).digest is None
    # when
    filled = digests.refresh()
    # then: the HMACs the suppression list compares (the canonical Gmail form too)
    assert filled == 2
    assert (_row(email).digest, _row(email).canonical) == (
        suppression.keyed_digest("ann.lee+news@gmail.com"), suppression.keyed_digest("annlee@gmail.com"))
    assert (_row(phone).digest, _row(phone).canonical) == (suppression.keyed_digest(phone.normalised), None)
    assert digests.refresh() == 0


def test_bulk_inserts_get_rows_too(make_person):
    # given: points written in bulk, as the import's set-based path does
    person = make_person(country="US")
    points = [ContactPoint(person=person, kind="email", value=f"b{i}@example.com", normalised=f"b{i}@example.com",
                           search_key=f"b{i}@example.com") for i in range(3)]
    # when
    ContactPoint.objects.bulk_create(points)
    # then
    assert ContactDigest.objects.filter(point_id__in=[p.pk for p in points], digest__isnull=True).count() == 3


def test_a_changed_value_clears_the_digest_and_bumps_the_version_other_changes_do_not(make_person):
    # given
    person = make_person(emails=["old@example.com"], country="US")
    point = person.contact_points.get()
    digests.refresh()
    version = _row(point).version
    # when: another column changes
    ContactPoint.objects.filter(pk=point.pk).update(verified=True)
    # then
    assert (_row(point).digest, _row(point).version) == (suppression.keyed_digest("old@example.com"), version)
    # when: the value changes (a save, as services do)
    point.value = point.normalised = "new@example.com"
    point.save()
    # then
    assert (_row(point).digest, _row(point).version) == (None, version + 1)
    digests.refresh()
    assert _row(point).digest == suppression.keyed_digest("new@example.com")


def test_a_deleted_point_or_person_takes_its_row_along(make_person):
    # given
    person = make_person(emails=["a@example.com", "b@example.com"], country="US")
    first, second = person.contact_points.order_by("normalised")
    # when
    first.delete()
    # then
    assert _row(first) is None and _row(second) is not None
    # when
    Person.objects.filter(pk=person.pk).delete()
    # then
    assert not ContactDigest.objects.filter(point_id=second.pk).exists()


def test_a_point_changed_while_its_digest_is_made_stays_cleared(make_person, monkeypatch):
    # given: the point's value changes between refresh reading it and writing its digest
    person = make_person(emails=["before@example.com"], country="US")
    point = person.contact_points.get()
    made = digests.digests_of

    def change_meanwhile(points):  # type: ignore[no-untyped-def]
        ContactPoint.objects.filter(pk=point.pk).update(normalised="after@example.com")
        return made(points)

    monkeypatch.setattr(digests, "digests_of", change_meanwhile)
    # when
    digests.refresh()
    # then: the digest of the old value was not written; the next refresh makes the new one
    assert _row(point).digest is None
    monkeypatch.setattr(digests, "digests_of", made)
    digests.refresh()
    assert _row(point).digest == suppression.keyed_digest("after@example.com")


def test_a_new_suppression_key_clears_digests_made_under_the_old_one(make_person, settings):
    # given: digests made under one key
    person = make_person(emails=["k@example.com"], country="US")
    point = person.contact_points.get()
    settings.RAPPORT_SUPPRESSION_KEY = "first key"
    suppression.suppression_key.cache_clear()
    try:
        digests.refresh()
        old = _row(point).digest
        # when: the key changes
        settings.RAPPORT_SUPPRESSION_KEY = "second key"
        suppression.suppression_key.cache_clear()
        digests.refresh()
        # then: remade under the new key, and the stored fingerprint names it
        assert _row(point).digest == suppression.keyed_digest("k@example.com") != old
        assert ContactDigestKey.objects.get().fingerprint == digests.key_fingerprint()
    finally:
        suppression.suppression_key.cache_clear()


@pytest.mark.parametrize("by", [None, "hashing"])
def test_the_batch_matches_through_stored_digests_as_by_hashing(make_person, monkeypatch, by):
    # given: one suppressed address, one listed, one changed after its digest was made
    monkeypatch.setattr(gate, "SUPPRESSION_BY", by)
    suppressed = make_person(emails=["s@example.com"], country="US")
    listed = make_person(emails=["l@example.com"], country="US")
    moved = make_person(emails=["clean@example.com"], country="US")
    clear = make_person(emails=["c@example.com"], country="US")
    suppression.suppress(emails=["s@example.com", "m@example.com"], reason="complaint")
    suppression.import_list(name="Email DNC", kind="email_dnc", screened_on=timezone.localdate(),
                            values=["l@example.com"])
    gate.decide_batch(Person.objects.all(), "email", "newsletter", _at(), log=False)  # digests made
    ContactPoint.objects.filter(person=moved).update(normalised="m@example.com", value="m@example.com")
    # when
    decisions = gate.decide_batch(Person.objects.all(), "email", "newsletter", _at(), log=False)
    small = gate.decide_batch([listed.pk, clear.pk], "email", "newsletter", _at(), log=False)
    # then
    assert decisions[suppressed.pk].codes == ["suppressed"]
    assert decisions[listed.pk].codes == ["dnc_list"]
    assert decisions[moved.pk].codes == ["suppressed"]
    assert decisions[clear.pk].allowed
    assert len(small) == 2 and small[listed.pk].codes == ["dnc_list"] and small[clear.pk].allowed
    for person in (suppressed, listed, moved, clear):
        assert gate.decide(person, "email", "newsletter", _at(), log=False) == decisions[person.pk]


def test_the_join_probes_the_digest_index_from_the_entries(make_person):
    # given
    make_person(emails=["x@example.com"], country="US")
    suppression.suppress(emails=["x@example.com"])
    from rapport.privacy.models import SuppressionEntry

    entries = SuppressionEntry.objects.filter(kind="email")
    # when
    found = digests.suppressed_people("email", entries)
    # then: a digest not yet made matches nothing (the batch refreshes first), a made one does
    assert found == []
    digests.refresh()
    (pid,) = digests.suppressed_people("email", entries)
    assert uuid.UUID(str(pid)) == Person.objects.get().pk
    if connection.vendor == "sqlite":
        sub, params = entries.values("digest").query.get_compiler(connection=connection).as_sql()
        with connection.cursor() as cursor:
            sql = f"EXPLAIN QUERY PLAN SELECT d.point_id FROM privacy_contactdigest d WHERE d.digest IN ({sub})"  # noqa: S608
            cursor.execute(sql, params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
        assert "privacy_digest_value" in plan


def test_no_entries_to_match_is_no_match(make_person):
    # given: a channel without external list kinds (an empty IN () cannot be compiled)
    from rapport.privacy.models import SuppressionEntry

    make_person(emails=["n@example.com"], country="US")
    # when / then
    assert digests.suppressed_people("phone", SuppressionEntry.objects.filter(list__kind__in=())) == []
