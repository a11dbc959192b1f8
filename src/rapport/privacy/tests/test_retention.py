"""C6 — retention: the dry run lists what would go and why; the job erases or deletes what expired;
legal holds (and consent, recent activity, open requests) exempt."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from rapport.people.models import Interaction, Person
from rapport.people.services import interaction_log
from rapport.privacy import gate, rights, services
from rapport.privacy.models import (
    DecisionBatch,
    DecisionOutcome,
    DecisionPack,
    PersonPrivacy,
    RetentionPolicy,
    RetentionRun,
    SuppressionEntry,
    Touch,
)
from rapport.privacy.retention import apply_retention, find_expired
from rapport.privacy.suppression import Suppressed

pytestmark = pytest.mark.django_db

YEARS_AGO_3 = timezone.now() - dt.timedelta(days=3 * 365)


def _backdate(person: Person, when: dt.datetime = YEARS_AGO_3) -> Person:
    Person.objects.filter(pk=person.pk).update(created_at=when, updated_at=when)
    person.refresh_from_db()
    return person


@pytest.fixture
def people(make_person, staff_user, grant):
    """Four people untouched for three years (24-month policy) and one active one."""
    lead = _backdate(make_person(given_name="Dormant", family_name="Lead", emails=["dormant@example.com"]))
    held = make_person(given_name="Held", family_name="Lead", emails=["held@example.com"])
    services.place_legal_hold(actor=staff_user, person=held, reason="tribunal claim")
    held = _backdate(held)
    consenting = make_person(given_name="Consenting", family_name="Lead", emails=["yes@example.com"])
    grant(consenting)
    consenting = _backdate(consenting)
    asking = make_person(given_name="Asking", family_name="Lead")
    rights.request_create(actor=staff_user, kind="access", person=asking)
    asking = _backdate(asking)
    active = make_person(given_name="Active", family_name="Customer")
    interaction_log(actor=staff_user, person=active, channel="phone", kind="call", summary="Called",
                    occurred_at=timezone.now() - dt.timedelta(days=10))
    active = _backdate(active)
    # old timeline entries (7 years) for the dormant and the held person, old logs
    seven_years = timezone.now() - dt.timedelta(days=7 * 365)
    for person in (lead, held):
        interaction_log(actor=staff_user, person=person, channel="post", kind="letter", summary="Old letter",
                        occurred_at=seven_years)
    _backdate(lead)
    _backdate(held)
    Touch.objects.create(person=active, channel="email", purpose="newsletter", marketing=True,
                         occurred_at=timezone.now() - dt.timedelta(days=400))
    Touch.objects.create(person=active, channel="email", purpose="newsletter", marketing=True,
                         occurred_at=timezone.now() - dt.timedelta(days=5))
    gate.decide(active, "email", "newsletter")  # logged: a batch, its outcome and the pack naming them
    old_batch = DecisionBatch.objects.get()
    DecisionBatch.objects.filter(pk=old_batch.pk).update(created_at=timezone.now() - dt.timedelta(days=800))
    DecisionBatch.objects.create(channel="email", purpose="newsletter", at=timezone.now(), size=0)
    return {"lead": lead, "held": held, "consenting": consenting, "asking": asking, "active": active}


def _report(key: str):
    return next(r for r in find_expired() if r.key == key)


def test_dry_run_lists_what_would_go_and_why_and_changes_nothing(people):
    # when
    out = StringIO()
    call_command("retention", "--dry-run", stdout=out)
    text = out.getvalue()
    # then: only the lead that never converted would be erased, with the reason
    dormant = _report("dormant-leads")
    assert [s["person_id"] for s in dormant.sample] == [str(people["lead"].pk)]
    assert "dormant-leads (dormant_people, 24 months, erase): 1 would go" in text
    assert "no consent: a lead that never converted" in text
    assert f"{people['lead'].pk} Dormant Lead" in text
    assert "timeline-entries (old_interactions, 72 months, delete): 1 would go" in text  # not the held one
    assert "touch-log (touch_log, 12 months, delete): 1 would go" in text
    assert "decision-log (decision_log, 24 months, delete): 1 would go" in text
    assert "Dry run: nothing was changed." in text
    assert Person.objects.get(pk=people["lead"].pk).given_name == "Dormant"
    assert Interaction.objects.count() == 3 and Touch.objects.count() == 2 and DecisionBatch.objects.count() == 2
    run = RetentionRun.objects.get()
    assert run.dry_run and "Dormant" not in str(run.summary)  # the kept report names nobody


def test_the_job_erases_and_deletes_what_expired_and_legal_hold_exempts(people):
    # when
    out = StringIO()
    call_command("retention", stdout=out)
    # then: the dormant lead is erased (anonymised, identifiers suppressed)
    lead = Person.objects.get(pk=people["lead"].pk)
    assert lead.given_name == "" and PersonPrivacy.objects.get(person=lead).erased_at is not None
    assert SuppressionEntry.objects.filter(source="erasure").exists()
    with pytest.raises(Suppressed):
        from rapport.core.testing import make_person

        make_person(actor=None, given_name="Back", emails=["dormant@example.com"])
    # the held, consenting, asking and active people are untouched
    for key in ("held", "consenting", "asking", "active"):
        assert Person.objects.get(pk=people[key].pk).given_name == people[key].given_name, key
    # old timeline entries go except the held person's; old logs go, recent ones stay
    assert not Interaction.objects.filter(person=people["lead"]).exists()
    assert Interaction.objects.filter(person=people["held"], summary="Old letter").exists()
    assert Touch.objects.count() == 1 and DecisionBatch.objects.count() == 1
    assert not DecisionOutcome.objects.exists() and not DecisionPack.objects.exists()
    assert "dormant-leads (dormant_people, 24 months, erase): 1 done" in out.getvalue()
    # running again finds nothing more
    again = apply_retention()
    assert all(p["done"] == 0 for p in again.summary["policies"])


def test_released_hold_lets_retention_proceed(people, staff_user):
    hold = people["held"].legal_holds.get()
    services.release_legal_hold(actor=staff_user, hold=hold)
    _backdate(people["held"])
    assert str(people["held"].pk) in {s["person_id"] for s in _report("dormant-leads").sample}


def test_disabled_policy_and_one_policy_only(people):
    RetentionPolicy.objects.filter(key="dormant-leads").update(enabled=False)
    run = apply_retention()
    assert "dormant-leads" not in {p["key"] for p in run.summary["policies"]}
    assert Person.objects.get(pk=people["lead"].pk).given_name == "Dormant"
    out = StringIO()
    call_command("retention", "--policy", "touch-log", stdout=out)
    assert out.getvalue().startswith("touch-log (touch_log, 12 months, delete): 0 done")
    with pytest.raises(CommandError, match="No retention policy"):
        call_command("retention", "--policy", "nope")


def test_the_daily_task_runs_the_policies(people):
    from rapport.privacy.tasks import apply_retention_task

    result = apply_retention_task.call()
    assert result["done"]["dormant-leads"] == 1
    assert Person.objects.get(pk=people["lead"].pk).given_name == ""


def test_retention_page_api_and_permissions(people, officer_client, api_client):
    from django.test import Client

    from rapport.core.testing import make_user

    page = officer_client.get("/privacy/retention/").content.decode()
    assert "Dormant Lead" in page and "tribunal claim" in page and "Run now" in page
    report = api_client.get("/api/v1/privacy/retention/").json()
    assert {p["key"]: p["count"] for p in report["policies"]}["dormant-leads"] == 1
    # only a privacy manager may run it or change a policy
    client = Client()
    client.force_login(make_user("sales"))  # the default role: reads, does not manage privacy
    assert "Run now" not in client.get("/privacy/retention/").content.decode()
    assert client.post("/privacy/retention/run/").status_code == 403
    policy = RetentionPolicy.objects.get(key="dormant-leads")
    bad = officer_client.post(f"/privacy/retention/{policy.pk}/", {"months": "0", "enabled": "on"})
    assert bad.status_code == 302
    policy.refresh_from_db()
    assert policy.months == 24
    officer_client.post(f"/privacy/retention/{policy.pk}/", {"months": "48", "enabled": "on"})
    policy.refresh_from_db()
    assert policy.months == 48 and _report("dormant-leads").count == 0
    done = officer_client.post("/privacy/retention/run/")
    assert done.status_code == 302 and RetentionRun.objects.filter(dry_run=False).exists()


def test_legal_hold_from_the_person_page(officer_client, make_person):
    person = make_person(given_name="Ivy")
    refused = officer_client.post(f"/privacy/people/{person.pk}/status/hold/", {"reason": ""})
    assert refused.status_code == 302 and not person.legal_holds.exists()
    officer_client.post(f"/privacy/people/{person.pk}/status/hold/", {"reason": "insurance claim 7"})
    hold = person.legal_holds.get()
    assert hold.active
    officer_client.post(f"/privacy/legal-holds/{hold.pk}/release/")
    hold.refresh_from_db()
    assert not hold.active


def test_delete_action_leaves_nothing_behind_and_suppresses_nothing(people, admin_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from rapport.access.models import Attachment, AuditEntry
    from rapport.access.services import attachment_add
    from rapport.people.services import person_update

    # given: the dormant lead has field history and a file, and the policy deletes
    lead = people["lead"]
    person_update(actor=admin_user, person=lead, changes={"notes": "Dormant Lead's notes"})
    attachment_add(actor=admin_user, record=lead, upload=SimpleUploadedFile("lead.pdf", b"%PDF lead"))
    _backdate(lead)
    RetentionPolicy.objects.filter(key="dormant-leads").update(action="delete")
    # when
    apply_retention()
    # then: the row is gone and so is everything no foreign key reached
    assert not Person.objects.filter(pk=lead.pk).exists()
    assert not Attachment.objects.filter(object_id=lead.pk).exists()
    assert not AuditEntry.objects.filter(person_id=lead.pk, changes__isnull=False).exists()
    assert AuditEntry.objects.filter(person_id=lead.pk, action="erase", channel="job").exists()
    assert not SuppressionEntry.objects.exists()  # they may come back: nobody asked to be forgotten
    from rapport.core.testing import make_person

    make_person(actor=admin_user, given_name="Back", emails=["dormant@example.com"])
