"""C2/C7 — the consent ledger: append-only events, derived state, double opt-in, merges, receipts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail, signing
from django.core.exceptions import ValidationError
from django.utils import timezone

from rapport.privacy import services
from rapport.privacy.errors import InvalidConfirmation, PersonErased, ProcessingRestricted
from rapport.privacy.models import (
    ConsentBasis,
    ConsentEvent,
    ConsentSource,
    ConsentState,
    PersonPrivacy,
)
from rapport.privacy.outbound import send_consent_confirmation
from rapport.privacy.selectors import consent_receipt

pytestmark = pytest.mark.django_db


def _state(person, purpose="newsletter", channel="email"):
    return ConsentState.objects.filter(person=person, purpose=purpose, channel=channel).first()


def test_grant_then_withdraw_appends_events_and_derives_state(make_person, grant, withdraw):
    # given
    person = make_person(emails=["ann@example.com"])
    # when
    first = grant(person)
    # then
    assert _state(person).status == "granted" and _state(person).event_id == first.pk
    # when
    withdraw(person)
    # then: two events kept, state follows the latest
    assert ConsentEvent.objects.filter(person=person).count() == 2
    assert _state(person).status == "withdrawn"
    first.refresh_from_db()
    assert first.granted is True  # the first event was never changed


def test_latest_event_by_occurrence_wins_even_when_recorded_late(make_person, grant, withdraw):
    # given: a withdrawal recorded, then a paper form from last month arrives
    person = make_person(emails=["ann@example.com"])
    withdraw(person)
    # when
    grant(person, occurred_at=timezone.now() - dt.timedelta(days=30))
    # then: the earlier grant does not override the later withdrawal
    assert _state(person).status == "withdrawn"


def test_email_consent_waits_for_double_opt_in_and_confirm_grants(make_person, staff_user,
                                                                   django_capture_on_commit_callbacks):
    # given
    person = make_person(emails=["ann@example.com"], country="GB")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        pending = services.record_consent(person=person, purpose="newsletter", channel="email", granted=True,
                                          lawful_basis=ConsentBasis.CONSENT, source=ConsentSource.FORM,
                                          ip="203.0.113.9", user_agent="Firefox")
    # then: pending, and the confirmation job was queued
    assert pending.pending and _state(person).status == "pending"
    from django_tasks_db.models import DBTaskResult

    assert DBTaskResult.objects.filter(task_path__endswith="send_consent_confirmation_task").exists()
    # when: the job runs (a service message: allowed without marketing consent)
    result = send_consent_confirmation(pending.pk)
    # then
    assert result.sent and len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/privacy/confirm/" in line)
    token = link.rstrip("/").rsplit("/", 1)[-1]
    # when: the person follows the link
    confirmed = services.confirm_consent(token=token, ip="203.0.113.9")
    # then
    assert confirmed.source == "double_opt_in" and confirmed.confirms_id == pending.pk
    assert _state(person).status == "granted"
    # when: clicked twice
    again = services.confirm_consent(token=token)
    # then: idempotent
    assert again.pk == confirmed.pk and ConsentEvent.objects.filter(person=person).count() == 2


def test_confirmation_link_expires_and_forgeries_are_refused(make_person, settings):
    # given
    person = make_person(emails=["ann@example.com"])
    pending = services.record_consent(person=person, purpose="newsletter", channel="email", granted=True,
                                      lawful_basis="consent", source="form")
    token = services.confirmation_token(pending)
    # then: a forged token is refused
    with pytest.raises(InvalidConfirmation):
        services.confirm_consent(token=token[:-2] + "xx")
    # when: the link is older than allowed
    settings.RAPPORT_DOUBLE_OPT_IN_MAX_AGE = dt.timedelta(seconds=-1)
    # then
    with pytest.raises(InvalidConfirmation, match="expired"):
        services.confirm_consent(token=token)
    assert _state(person).status == "pending"


def test_confirmation_after_withdrawal_is_refused(make_person, withdraw):
    # given
    person = make_person(emails=["ann@example.com"])
    pending = services.record_consent(person=person, purpose="newsletter", channel="email", granted=True,
                                      lawful_basis="consent", source="form")
    withdraw(person)
    # when / then
    with pytest.raises(InvalidConfirmation, match="withdrawn"):
        services.confirm_consent(token=services.confirmation_token(pending))
    assert _state(person).status == "withdrawn"


def test_pending_regrant_does_not_downgrade_a_granted_state(make_person, grant):
    # given
    person = make_person(emails=["ann@example.com"])
    grant(person)
    # when
    services.record_consent(person=person, purpose="newsletter", channel="email", granted=True,
                            lawful_basis="consent", source="form")
    # then
    assert _state(person).status == "granted"


@pytest.mark.parametrize("kwargs, field", [
    ({"purpose": "nope"}, "purpose"),
    ({"purpose": "security_notice"}, "purpose"),
    ({"channel": "pigeon"}, "channel"),
    ({"lawful_basis": "vibes"}, "lawful_basis"),
    ({"source": "rumour"}, "source"),
    ({"lawful_basis": "soft_opt_in"}, "proof"),
    ({"lawful_basis": "soft_opt_in", "purpose": "events", "proof": {"refusal_offered": True}}, "lawful_basis"),
    ({"occurred_at": timezone.now() + dt.timedelta(days=2)}, "occurred_at"),
    ({"ip": "999.1.1.1"}, "ip"),
])
def test_bad_consent_input_is_refused_with_the_field_named(make_person, kwargs, field):
    # given
    person = make_person(emails=["ann@example.com"])
    args = {"person": person, "purpose": "newsletter", "channel": "email", "granted": True,
            "lawful_basis": "consent", "source": "staff", "double_opt_in": False, **kwargs}
    # when / then
    with pytest.raises(ValidationError) as err:
        services.record_consent(**args)
    assert field in err.value.message_dict
    assert not ConsentEvent.objects.filter(person=person).exists()


def test_restriction_refuses_grants_but_accepts_withdrawals(make_person, staff_user, grant, withdraw):
    # given
    person = make_person(emails=["ann@example.com"])
    grant(person)
    services.restrict_processing(actor=staff_user, person=person, reason="accuracy contested")
    # when / then
    with pytest.raises(ProcessingRestricted, match="restricted"):
        grant(person, channel="sms")
    withdraw(person)
    assert _state(person).status == "withdrawn"


def test_objection_withdraws_every_marketing_consent_at_once(make_person, staff_user, grant):
    # given
    person = make_person(emails=["ann@example.com"], phones=["+447911123456"])
    grant(person, "newsletter", "email")
    grant(person, "offers", "sms")
    grant(person, "events", "phone")
    # when
    services.record_objection(actor=staff_user, person=person)
    # then
    assert set(ConsentState.objects.filter(person=person).values_list("status", flat=True)) == {"withdrawn"}
    assert PersonPrivacy.objects.get(person=person).objected_at is not None
    assert ConsentEvent.objects.filter(person=person, source="objection").count() == 3


def _move(events_of, to):
    """What the identity engineer's merge does: move the events, then recompute."""
    ConsentEvent.objects.filter(person=events_of).update(person=to)
    services.recompute_consent_state(person=to)
    services.recompute_consent_state(person=events_of)


def test_merge_keeps_a_withdrawal_from_either_side_even_if_older(make_person, grant, withdraw):
    # given: A withdrew a year ago; B (same human) granted last week
    a = make_person(emails=["a@example.com"])
    b = make_person(emails=["b@example.com"])
    withdraw(a, occurred_at=timezone.now() - dt.timedelta(days=365))
    grant(b, occurred_at=timezone.now() - dt.timedelta(days=7))
    # when: A is merged into B
    _move(a, b)
    # then: the withdrawal wins, carried over as an explicit ledger entry
    assert _state(b).status == "withdrawn"
    carried = ConsentEvent.objects.get(person=b, source="merge")
    assert carried.carried_from == a.pk and not carried.granted
    assert _state(a) is None
    # when: recomputed again
    services.recompute_consent_state(person=b)
    # then: idempotent
    assert ConsentEvent.objects.filter(person=b, source="merge").count() == 1
    # when: the person consents again after the merge
    grant(b)
    # then: a fresh consent counts
    assert _state(b).status == "granted"
    services.recompute_consent_state(person=b)
    assert _state(b).status == "granted"


def test_merge_where_survivor_withdrew_and_merged_side_granted_later(make_person, grant, withdraw):
    # given
    a = make_person(emails=["a@example.com"])
    b = make_person(emails=["b@example.com"])
    withdraw(b, occurred_at=timezone.now() - dt.timedelta(days=100))
    grant(a, occurred_at=timezone.now() - dt.timedelta(days=1))
    # when
    _move(a, b)
    # then
    assert _state(b).status == "withdrawn"


def test_unmerge_drops_the_carried_withdrawal(make_person, grant, withdraw):
    # given: merged as above
    a = make_person(emails=["a@example.com"])
    b = make_person(emails=["b@example.com"])
    withdraw(a, occurred_at=timezone.now() - dt.timedelta(days=365))
    grant(b, occurred_at=timezone.now() - dt.timedelta(days=7))
    _move(a, b)
    # when: unmerged (A's own events moved back)
    ConsentEvent.objects.filter(person=b, origin_person_id=a.pk).update(person=a)
    services.recompute_consent_state(person=a)
    services.recompute_consent_state(person=b)
    # then: each side is back to its own history
    assert _state(a).status == "withdrawn"
    assert _state(b).status == "granted"


def test_casl_implied_consent_has_an_expiry(make_person, grant):
    # given
    person = make_person(emails=["ann@example.ca"], country="CA")
    bought = timezone.now() - dt.timedelta(days=10)
    # when
    grant(person, basis=ConsentBasis.IMPLIED_PURCHASE, occurred_at=bought)
    enquiry = grant(person, "events", basis=ConsentBasis.IMPLIED_ENQUIRY, occurred_at=bought)
    # then
    assert _state(person).expires_at.date() == (bought + dt.timedelta(days=0)).replace(
        year=bought.year + 2).date()
    assert _state(person, "events").expires_at > enquiry.occurred_at + dt.timedelta(days=180)
    assert _state(person, "events").expires_at < enquiry.occurred_at + dt.timedelta(days=185)


def test_consent_receipt_has_the_kantara_1_1_fields(make_person, grant, settings):
    # given
    settings.RAPPORT_CONTROLLER = {"name": "Acme Ltd", "email": "dpo@acme.example"}
    person = make_person(emails=["ann@example.com"], country="GB")
    event = grant(person, ip="198.51.100.7", user_agent="Safari")
    # when
    receipt = consent_receipt(ConsentEvent.objects.select_related("person").get(pk=event.pk))
    # then
    for key in ("version", "jurisdiction", "consentTimestamp", "collectionMethod", "consentReceiptID",
                "publicKey", "language", "piiPrincipalId", "piiControllers", "policyUrl", "services",
                "sensitive", "spiCat"):
        assert key in receipt
    assert receipt["version"] == "KI-CR-v1.1.0"
    assert receipt["consentReceiptID"] == str(event.receipt_id)
    assert receipt["piiControllers"][0]["piiController"] == "Acme Ltd"
    purpose = receipt["services"][0]["purposes"][0]
    assert {"purpose", "purposeCategory", "consentType", "piiCategory", "primaryPurpose", "termination",
            "thirdPartyDisclosure"} <= set(purpose)
    assert purpose["consentType"] == "EXPLICIT"
    assert receipt["jurisdiction"] == "UK GDPR + PECR"


def test_notice_versions_are_published_never_edited(staff_user, make_person, grant):
    # given
    v1 = services.notice_publish(actor=staff_user, key="newsletter-form", title="Newsletter sign-up",
                                 text="We will email you our newsletter.", purposes=["newsletter"])
    # when
    v2 = services.notice_publish(actor=staff_user, key="newsletter-form", title="Newsletter sign-up",
                                 text="We will email you our newsletter monthly.")
    # then
    assert (v1.version, v2.version) == (1, 2)
    v1.refresh_from_db()
    assert v1.text == "We will email you our newsletter."
    # and: a consent can cite the version shown, but only for a purpose the notice covers
    person = make_person(emails=["ann@example.com"])
    assert grant(person, notice_version=v2).notice_version_id == v2.pk
    with pytest.raises(ValidationError, match="does not cover"):
        grant(person, "events", notice_version=v2)


def test_erased_person_takes_no_consent(make_person, grant, staff_user):
    # given
    from rapport.privacy.erasure import erase_person

    person = make_person(emails=["ann@example.com"])
    erase_person(actor=staff_user, person=person)
    # when / then
    with pytest.raises(PersonErased):
        grant(person)


def test_doi_token_is_signed_with_its_own_salt(make_person):
    # given
    person = make_person(emails=["ann@example.com"])
    pending = services.record_consent(person=person, purpose="newsletter", channel="email", granted=True,
                                      lawful_basis="consent", source="form")
    # when: a value signed for another purpose with the same key
    other = signing.dumps({"e": str(pending.pk)})
    # then
    with pytest.raises(InvalidConfirmation):
        services.confirm_consent(token=other)


@pytest.mark.parametrize("basis", [ConsentBasis.SOFT_OPT_IN, ConsentBasis.IMPLIED_PURCHASE])
def test_only_express_email_consent_waits_for_double_opt_in(make_person, basis):
    # given: an existing customer (found by hypothesis: a soft opt-in asked for double opt-in)
    person = make_person(emails=["ann@example.com"], country="GB")
    # when
    event = services.record_consent(person=person, purpose="newsletter", channel="email", granted=True,
                                    lawful_basis=basis, source=ConsentSource.STAFF, double_opt_in=True,
                                    proof={"refusal_offered": True})
    # then: no confirmation link is owed; the state is granted at once
    assert not event.pending and _state(person).status == "granted"
