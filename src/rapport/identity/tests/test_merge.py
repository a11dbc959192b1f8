"""I4 — merge and unmerge: survivorship, every related record moved, exact undo."""

from __future__ import annotations

import datetime as dt

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rapport.access.models import AuditEntry
from rapport.identity.merge import (
    MergeRefused,
    UnmergeRefused,
    merge_people,
    person_relations,
    unmerge,
)
from rapport.identity.models import DuplicateSuggestion, MergeRecord
from rapport.people.models import ContactPoint, Interaction, Organisation, Person
from rapport.people.services import (
    employment_start,
    interaction_log,
    organisation_create,
    person_update,
)
from rapport.privacy.models import ConsentEvent, ConsentSource, ConsentState, ContactPreference
from rapport.privacy.services import preferences_update, record_consent, record_touch


def dump_person(person_id, *, survivor: bool = False) -> dict:
    """Every row of the person and of every model pointing at them (updated_at left out)."""
    person = Person.objects.filter(pk=person_id).values().first()
    if person is not None:
        person.pop("updated_at")
        if survivor:
            person.pop("version")  # the survivor's version moves on: stale ETags must fail
        person["tags"] = sorted(Person.objects.get(pk=person_id).tags.values_list("name", flat=True))
    related = {}
    for fk in person_relations():
        if fk.model is MergeRecord:
            continue  # the merge history itself is meant to remain
        rows = list(fk.model._default_manager.filter(**{fk.attname: person_id}).order_by("pk").values())
        for row in rows:
            row.pop("updated_at", None)
        related[f"{fk.model._meta.label}.{fk.name}"] = rows
    return {"person": person, "related": related}


def _consent(person, actor, granted, days_ago=0, purpose="newsletter"):
    return record_consent(person=person, purpose=purpose, channel="email", granted=granted,
                          lawful_basis="consent", source=ConsentSource.STAFF, captured_by=actor,
                          double_opt_in=False, occurred_at=timezone.now() - dt.timedelta(days=days_ago))


def test_merge_moves_everything_keeps_contact_points_and_is_audited(make_person, staff_user):
    # given
    survivor = make_person(given_name="Robert", family_name="Smith", emails=["bob@example.com"])
    merged = make_person(given_name="Bob", family_name="Smith", emails=["robert@work.example", "bob@example.com"],
                         phones=["+44 20 7946 0001"])
    interaction_log(actor=staff_user, person=merged, channel="phone", kind="call", summary="Called about order")
    # when
    record = merge_people(survivor=survivor, merged=merged, actor=staff_user, reason="same customer")
    # then: the merged row is gone; every contact point (even the identical one) is kept
    assert not Person.objects.filter(pk=merged.pk).exists()
    values = sorted(ContactPoint.objects.filter(person=survivor).values_list("normalised", flat=True))
    assert values == ["+442079460001", "bob@example.com", "bob@example.com", "robert@work.example"]
    assert ContactPoint.objects.filter(person=survivor, kind="email", primary=True).count() == 1
    summaries = set(Interaction.objects.filter(person=survivor).values_list("summary", flat=True))
    assert {"Called about order", "Merged with Bob Smith"} <= summaries
    assert record.status == "merged" and record.merged_person_id == merged.pk
    merge_audit = AuditEntry.objects.filter(action="merge")
    assert {str(e.person_id) for e in merge_audit} == {str(survivor.pk), str(merged.pk)}


def test_survivorship_most_recent_fills_gaps_and_reviewer_pick_wins(make_person, staff_user):
    # given: the merged record was edited more recently and has a language the survivor lacks
    survivor = make_person(given_name="Liz", family_name="Taylor", country="GB", notes="VIP")
    merged = make_person(given_name="Elizabeth", family_name="Taylor", language="en-GB", notes="Prefers calls")
    Person.objects.filter(pk=survivor.pk).update(updated_at=timezone.now() - dt.timedelta(days=30))
    survivor.refresh_from_db()
    # when: the reviewer keeps the survivor's given name
    merge_people(survivor=survivor, merged=merged, actor=staff_user, field_choices={"given_name": "survivor"})
    # then
    survivor.refresh_from_db()
    assert survivor.given_name == "Liz"                # reviewer's pick
    assert survivor.language == "en-GB"                # gap filled from the merged side
    assert survivor.country == "GB"                    # the merged side had nothing
    assert survivor.notes == "VIP\n\nPrefers calls"    # both notes kept
    assert survivor.given_key == "liz"


def test_bad_choices_and_self_merge_are_refused(make_person, staff_user):
    a, b = make_person(), make_person()
    with pytest.raises(ValidationError) as err:
        merge_people(survivor=a, merged=b, actor=staff_user, field_choices={"shoe_size": "merged",
                                                                            "given_name": "both"})
    assert set(err.value.message_dict) == {"field_choices.shoe_size", "field_choices.given_name"}
    with pytest.raises(MergeRefused):
        merge_people(survivor=a, merged=a, actor=staff_user)
    assert Person.objects.filter(pk=b.pk).exists()


def test_consent_is_merged_conservatively_and_restored_by_unmerge(make_person, staff_user):
    # given: the merged side withdrew a year ago, the survivor granted last week
    survivor, merged = make_person(emails=["a@example.com"]), make_person(emails=["b@example.com"])
    _consent(merged, staff_user, False, days_ago=365)
    _consent(survivor, staff_user, True, days_ago=7)
    preferences_update(actor=staff_user, person=survivor, changes={"sms_allowed": True})
    preferences_update(actor=staff_user, person=merged, changes={"sms_allowed": False}, topics={"offers": False})
    # when
    record = merge_people(survivor=survivor, merged=merged, actor=staff_user)
    # then: the withdrawal and the opt-out win
    assert ConsentState.objects.get(person=survivor, purpose="newsletter").status == "withdrawn"
    assert ContactPreference.objects.get(person=survivor).sms_allowed is False
    # when: unmerged
    unmerge(merge_record=record, actor=staff_user)
    # then: each side has its own history back
    assert ConsentState.objects.get(person=survivor, purpose="newsletter").status == "granted"
    assert ConsentState.objects.get(person_id=merged.pk, purpose="newsletter").status == "withdrawn"
    assert ContactPreference.objects.get(person=survivor).sms_allowed is True
    assert ContactPreference.objects.get(person_id=merged.pk).sms_allowed is False
    assert not ConsentEvent.objects.filter(source="merge").exists()


def test_unmerge_keeps_what_happened_to_the_survivor_after_the_merge(make_person, staff_user):
    # given
    survivor = make_person(given_name="Ann", family_name="Lee", emails=["ann@example.com"])
    merged = make_person(given_name="Anne", family_name="Lee", language="fr", emails=["anne@example.com"])
    interaction_log(actor=staff_user, person=merged, channel="email", kind="email", summary="Old email")
    Person.objects.filter(pk=survivor.pk).update(updated_at=timezone.now() - dt.timedelta(days=1))
    survivor.refresh_from_db()
    record = merge_people(survivor=survivor, merged=merged, actor=staff_user)
    survivor.refresh_from_db()
    assert survivor.given_name == "Anne" and survivor.language == "fr"
    # when: the survivor is edited and gets a new timeline entry, then the merge is undone
    person_update(actor=staff_user, person=survivor, changes={"given_name": "Annie"})
    later, _ = interaction_log(actor=staff_user, person=survivor, channel="phone", kind="call", summary="New call")
    unmerge(merge_record=record, actor=staff_user)
    # then
    survivor.refresh_from_db()
    restored = Person.objects.get(pk=merged.pk)
    assert survivor.given_name == "Annie"              # edited after the merge: stays
    assert survivor.language == ""                     # taken from the merged side: given back
    assert restored.given_name == "Anne" and restored.language == "fr"
    assert Interaction.objects.get(pk=later.pk).person_id == survivor.pk
    assert list(Interaction.objects.filter(person=restored).values_list("summary", flat=True)) == ["Old email"]
    assert ContactPoint.objects.get(person=restored).normalised == "anne@example.com"
    record.refresh_from_db()
    assert record.status == "unmerged" and "merged_person" not in record.snapshot
    with pytest.raises(UnmergeRefused):
        unmerge(merge_record=record, actor=staff_user)


def test_suggestions_of_the_merged_person_come_back_with_unmerge(make_person, staff_user):
    a, b, c = make_person(), make_person(), make_person()
    DuplicateSuggestion.objects.create(left=b, right=c, probability=0.7, evidence=[])
    record = merge_people(survivor=a, merged=b, actor=staff_user)
    assert not DuplicateSuggestion.objects.exists()
    unmerge(merge_record=record, actor=staff_user)
    assert DuplicateSuggestion.objects.get().left_id in (b.pk, c.pk)


def test_chained_merges_unmerge_in_any_order(make_person, staff_user):
    # given: B ~ C suggested; B merged into A, then C merged into D
    a, b, c, d = make_person(), make_person(), make_person(), make_person()
    interaction_log(actor=staff_user, person=b, channel="phone", kind="call", summary="b's call")
    DuplicateSuggestion.objects.create(left=b, right=c, probability=0.7, evidence=[])
    first = merge_people(survivor=a, merged=b, actor=staff_user)
    second = merge_people(survivor=d, merged=c, actor=staff_user)
    third = merge_people(survivor=d, merged=a, actor=staff_user)    # A (holding B) into D
    # when: the first merge is undone while its survivor is itself merged away
    unmerge(merge_record=first, actor=staff_user)
    # then: B is back with its call; the suggestion with C (gone) is not resurrected
    assert Interaction.objects.get(summary="b's call").person_id == b.pk
    assert not DuplicateSuggestion.objects.exists()
    unmerge(merge_record=third, actor=staff_user)
    unmerge(merge_record=second, actor=staff_user)
    assert set(Person.objects.values_list("pk", flat=True)) == {a.pk, b.pk, c.pk, d.pk}


# ------------------------------------------- a model the merge code has never heard of


@pytest.fixture
def late_models(transactional_db):
    """Two models defined only here: a plain foreign key and a unique one-to-one-per-scheme."""
    meta = type("Meta", (), {"app_label": "identity"})
    card = type("TestLoyaltyCard", (models.Model,), {
        "__module__": __name__, "Meta": meta, "number": models.CharField(max_length=20),
        "person": models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+")})
    meta2 = type("Meta", (), {"app_label": "identity", "constraints": [
        models.UniqueConstraint(fields=["person", "scheme"], name="identity_test_membership_once")]})
    membership = type("TestMembership", (models.Model,), {
        "__module__": __name__, "Meta": meta2, "scheme": models.CharField(max_length=20),
        "person": models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="test_memberships")})
    apps.clear_cache()
    with connection.schema_editor() as editor:
        editor.create_model(card)
        editor.create_model(membership)
    yield card, membership
    with connection.schema_editor() as editor:
        editor.delete_model(card)
        editor.delete_model(membership)
    for name in ("testloyaltycard", "testmembership"):
        apps.all_models["identity"].pop(name, None)
    apps.clear_cache()


def test_a_model_added_later_is_moved_and_restored(late_models, staff_user):
    # given
    from rapport.core.testing import make_person

    card, membership = late_models
    survivor, merged = make_person(actor=staff_user), make_person(actor=staff_user)
    card.objects.create(person=merged, number="C-1")
    membership.objects.create(person=survivor, scheme="gold")
    membership.objects.create(person=merged, scheme="gold")     # collides on (person, scheme)
    membership.objects.create(person=merged, scheme="silver")
    before = dump_person(merged.pk)
    assert any(fk.model is card for fk in person_relations())
    # when
    record = merge_people(survivor=survivor, merged=merged, actor=staff_user)
    # then: moved; the colliding row kept in the record, not duplicated on the survivor
    assert card.objects.get().person_id == survivor.pk
    assert sorted(membership.objects.filter(person=survivor).values_list("scheme", flat=True)) == ["gold", "silver"]
    # when
    unmerge(merge_record=record, actor=staff_user)
    # then
    assert dump_person(merged.pk) == before
    assert list(membership.objects.filter(person=survivor).values_list("scheme", flat=True)) == ["gold"]


# -------------------------------------------------------- hypothesis: exact round trip


side = st.fixed_dictionaries({
    "given": st.sampled_from(["Ann", "Bob", "", "Zoë"]),
    "language": st.sampled_from(["", "en", "fr"]),
    "notes": st.sampled_from(["", "note A", "note B"]),
    "emails": st.lists(st.sampled_from(["a@x.example", "b@x.example", "c@y.example"]), max_size=3, unique=True),
    "calls": st.integers(min_value=0, max_value=3),
    "consents": st.lists(st.tuples(st.booleans(), st.integers(0, 400), st.sampled_from(["newsletter", "offers"])),
                         max_size=3),
    "tags": st.lists(st.sampled_from(["vip", "press", "b2b"]), max_size=2, unique=True),
    "prefs": st.none() | st.fixed_dictionaries({"sms_allowed": st.booleans(), "post_allowed": st.booleans()}),
    "topics": st.dictionaries(st.sampled_from(["offers", "events"]), st.booleans(), max_size=2),
    "newer": st.booleans(),
    "jobs": st.lists(st.sampled_from(["Acme", "Globex"]), max_size=2),
    "touches": st.integers(min_value=0, max_value=2),
    "birth": st.none() | st.dates(min_value=dt.date(1930, 1, 1), max_value=dt.date(2005, 12, 31)),
})


def _build(data, actor):
    from rapport.core.testing import make_person

    person = make_person(actor=actor, given_name=data["given"], family_name="Round", emails=data["emails"],
                         language=data["language"], notes=data["notes"], tags=data["tags"])
    for n in range(data["calls"]):
        interaction_log(actor=actor, person=person, channel="phone", kind="call", summary=f"call {n}")
    for granted, days, purpose in data["consents"]:
        _consent(person, actor, granted, days_ago=days, purpose=purpose)
    if data["prefs"] is not None or data["topics"]:
        preferences_update(actor=actor, person=person, changes=data["prefs"] or {}, topics=data["topics"] or None)
    for name in data["jobs"]:
        organisation = Organisation.objects.filter(name=name).first() or organisation_create(actor=actor, name=name)
        employment_start(actor=actor, person=person, organisation=organisation, title="Buyer",
                         end_other_jobs=False)
    for _ in range(data["touches"]):
        record_touch(person=person, channel="email", purpose="newsletter", sent_by=actor)
    if data["birth"] is not None:
        person.birth_date = data["birth"]
        person.save()
    if not data["newer"]:
        Person.objects.filter(pk=person.pk).update(updated_at=timezone.now() - dt.timedelta(days=3))
    return Person.objects.get(pk=person.pk)


# No shrinking phase: each example writes dozens of rows, and a failure prints its full input anyway.
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(left=side, right=side, choices=st.dictionaries(
    st.sampled_from(["given_name", "language", "notes", "birth_date"]), st.sampled_from(["survivor", "merged"]),
    max_size=3))
def test_merge_then_unmerge_restores_the_exact_prior_state(staff_user, left, right, choices):
    with transaction.atomic():
        # given
        survivor, merged = _build(left, staff_user), _build(right, staff_user)
        before = (dump_person(survivor.pk, survivor=True), dump_person(merged.pk))
        # when
        record = merge_people(survivor=survivor, merged=merged, actor=staff_user, field_choices=choices)
        unmerge(merge_record=record, actor=staff_user)
        # then
        after = (dump_person(survivor.pk, survivor=True), dump_person(merged.pk))
        assert after == before
        transaction.set_rollback(True)


def test_merge_record_is_erased_with_the_survivor(make_person, staff_user):
    from rapport.privacy.erasure import erase_person

    survivor, merged = make_person(given_name="Eve"), make_person(given_name="Eva")
    merge_people(survivor=survivor, merged=merged, actor=staff_user)
    erase_person(actor=staff_user, person=survivor, reason="request")
    assert not MergeRecord.objects.exists()


def test_most_trusted_strategy_prefers_the_better_source(make_person, staff_user, settings):
    from rapport.people.services import ContactPointInput, contact_point_add

    settings.RAPPORT_IDENTITY_SOURCE_TRUST = ["crm", "web-form"]
    survivor = make_person(given_name="Jon", family_name="Doe", language="de")
    merged = make_person(given_name="John", family_name="Doe", language="en")
    contact_point_add(actor=staff_user, person=survivor, data=ContactPointInput("email", "j@web.example",
                                                                                source="web-form"))
    contact_point_add(actor=staff_user, person=merged, data=ContactPointInput("email", "j@crm.example",
                                                                              source="crm"))
    Person.objects.filter(pk=merged.pk).update(updated_at=timezone.now() - dt.timedelta(days=9))
    merged.refresh_from_db()
    survivor.refresh_from_db()
    merge_people(survivor=survivor, merged=merged, actor=staff_user, strategy="most_trusted")
    survivor.refresh_from_db()
    assert (survivor.given_name, survivor.language) == ("John", "en")


def test_restricted_or_erased_people_are_not_merged(make_person, staff_user):
    from rapport.privacy.erasure import erase_person
    from rapport.privacy.errors import PersonErased, ProcessingRestricted
    from rapport.privacy.services import restrict_processing

    a, b, c = make_person(), make_person(), make_person()
    restrict_processing(actor=staff_user, person=b, reason="disputed accuracy")
    with pytest.raises(ProcessingRestricted):
        merge_people(survivor=a, merged=b, actor=staff_user)
    erase_person(actor=staff_user, person=c, reason="request")
    with pytest.raises(PersonErased):
        merge_people(survivor=c, merged=a, actor=staff_user)
    assert Person.objects.count() == 3 and not MergeRecord.objects.exists()


def test_erasure_reaches_merge_records_and_suggestions_on_either_side(make_person, staff_user):
    from rapport.identity.models import NotDuplicate
    from rapport.privacy.erasure import erase_person

    # given: B merged into A and split out again; C ~ A suggested (A on either side); A ≠ D
    a, b, c, d = make_person(), make_person(), make_person(), make_person()
    unmerge(merge_record=merge_people(survivor=a, merged=b, actor=staff_user), actor=staff_user)
    DuplicateSuggestion.objects.create(left=c, right=a, probability=0.8, evidence=[])
    NotDuplicate.objects.create(left=d, right=a)
    # when: B (the person split out again) is erased, then A
    erase_person(actor=staff_user, person=Person.objects.get(pk=b.pk), reason="request")
    # then
    assert not MergeRecord.objects.exists()
    erase_person(actor=staff_user, person=a, reason="request")
    assert not DuplicateSuggestion.objects.exists() and not NotDuplicate.objects.exists()


def test_an_old_link_to_a_merged_person_leads_to_the_survivor(make_person, staff_user, client):
    # given: C merged into B, then B into A (a chain), and a link to C kept from before
    a, b, c = (make_person(given_name=n, family_name="Chain") for n in ("Ann", "Anne", "Annie"))
    merge_people(survivor=b, merged=c, actor=staff_user)
    merge_people(survivor=a, merged=b, actor=staff_user)
    client.force_login(staff_user)
    # when / then: both old ids lead to the survivor's 360° view
    for old in (b, c):
        response = client.get(f"/people/{old.pk}/")
        assert response.status_code == 302 and response["Location"] == f"/people/{a.pk}/"
    # when: the second merge is undone
    unmerge(merge_record=MergeRecord.objects.get(merged_person_id=b.pk), actor=staff_user)
    # then: C's link leads to B again, B's own page is B; an unknown id is still a 404
    assert client.get(f"/people/{c.pk}/")["Location"] == f"/people/{b.pk}/"
    assert client.get(f"/people/{b.pk}/").status_code == 200
    assert client.get("/people/00000000-0000-0000-0000-000000000000/").status_code == 404
