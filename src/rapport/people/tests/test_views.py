"""U — staff screens: every page renders, forms show field errors, missing records 404, constant queries."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from rapport.core.testing import PASSWORD
from rapport.people import services
from rapport.people.models import ContactPoint, Employment, Interaction, Person

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_in(staff_user) -> Client:
    client = Client()
    assert client.login(username=staff_user.username, password=PASSWORD)
    return client


@pytest.fixture
def ada(make_person, make_organisation, staff_user) -> Person:
    person = make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"],
                         phones=["+44 20 7946 0018"])
    org = make_organisation(name="Analytical Engines")
    services.employment_start(actor=staff_user, person=person, organisation=org, title="Analyst")
    services.interaction_log(actor=staff_user, person=person, channel="post", kind="letter",
                             summary="Wrote about the engine", sentiment="compliment")
    return person


def test_anonymous_user_is_sent_to_login(client):
    # when
    response = client.get(reverse("people:person-list"))
    # then
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_signs_in(client, staff_user):
    # when
    response = client.post(reverse("login"), {"username": "staff", "password": PASSWORD})
    # then
    assert response.status_code == 302 and response["Location"] == reverse("home")


def test_home_shows_counts_charts_and_recent_activity(client_in, ada):
    # when
    response = client_in.get(reverse("home"))
    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert "Interactions per week by channel" in body and "<svg" in body
    assert "Wrote about the engine" in body
    assert 'aria-current="page"' in body  # Home nav item is marked current
    assert "series-compliment" in body


def test_home_chart_counts_only_the_last_twelve_weeks(ada, staff_user):
    # given
    from django.utils import timezone

    from rapport.people.selectors import home_summary
    services.interaction_log(actor=staff_user, person=ada, channel="phone", kind="call", summary="old",
                             occurred_at=timezone.now() - timezone.timedelta(weeks=20))
    # when
    summary = home_summary(user=staff_user)
    # then
    totals = {s["key"]: s["total"] for s in summary["activity_chart"]["series"]}
    assert totals.get("post") == 1
    assert totals.get("phone", 0) == 0


def test_global_search_finds_phone_in_another_format(client_in, ada):
    # when
    response = client_in.get(reverse("people:search"), {"q": "020 7946 0018"}, HTTP_HX_REQUEST="true")
    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert "Ada Lovelace" in body and 'role="option"' in body and "phone" in body
    assert "<html" not in body  # a fragment for htmx


def test_global_search_full_page_without_htmx(client_in, ada):
    response = client_in.get(reverse("people:search"), {"q": "analyt"})
    assert response.status_code == 200
    assert "Analytical Engines" in response.content.decode()
    assert "<html" in response.content.decode()


def test_search_records_a_search_audit_entry(client_in, ada):
    with mock.patch("rapport.people.views.record_person_access") as record:
        client_in.get(reverse("people:search"), {"q": "lovelace"}, HTTP_HX_REQUEST="true")
    assert record.call_args.kwargs["action"] == "search"


def test_person_list_filters_by_phone_and_tag(client_in, ada, make_person):
    # given
    make_person(given_name="Charles", family_name="Babbage")
    # when
    response = client_in.get(reverse("people:person-list"), {"phone": "020 7946 0018"})
    # then
    body = response.content.decode()
    assert "Ada Lovelace" in body and "Charles Babbage" not in body
    assert "Analytical Engines" in body and "ada@example.com" in body


def test_person_list_queries_do_not_grow_with_rows(client_in, make_person, staff_user):
    # given
    make_person(emails=["one@example.com"])
    client_in.get(reverse("people:person-list"))  # the first request fills the process's access cache
    with CaptureQueriesContext(connection) as few:
        client_in.get(reverse("people:person-list"))
    for i in range(8):
        make_person(emails=[f"p{i}@example.com"], tags=[f"t{i}"])
    # when
    with CaptureQueriesContext(connection) as many:
        response = client_in.get(reverse("people:person-list"))
    # then
    assert response.status_code == 200
    assert len(many) == len(few)


def test_person_list_pages(client_in, make_person):
    for _ in range(27):
        make_person()
    response = client_in.get(reverse("people:person-list"), {"page": 2})
    assert "Page 2 of 2" in response.content.decode()


def test_person_detail_shows_360_view_and_records_the_view(client_in, ada, staff_user):
    # when
    with mock.patch("rapport.people.views.record_person_access") as record:
        response = client_in.get(reverse("people:person-detail", args=[ada.pk]))
    # then
    body = response.content.decode()
    assert response.status_code == 200
    for text in ("Ada Lovelace", "ada@example.com", "+44 20 7946 0018", "Analytical Engines", "Analyst",
                 "Wrote about the engine", "Compliment", "Primary"):
        assert text in body
    record.assert_called_once()
    assert record.call_args.kwargs["action"] == "view" and record.call_args.kwargs["people"] == [ada]
    assert record.call_args.kwargs["channel"] == "ui"


def test_person_detail_queries_do_not_grow_with_timeline(client_in, ada, staff_user):
    client_in.get(reverse("people:person-detail", args=[ada.pk]))  # fills the process's access cache
    with CaptureQueriesContext(connection) as few:
        client_in.get(reverse("people:person-detail", args=[ada.pk]))
    for i in range(10):
        services.interaction_log(actor=staff_user, person=ada, channel="phone", kind="call", summary=f"c{i}")
    with CaptureQueriesContext(connection) as many:
        client_in.get(reverse("people:person-detail", args=[ada.pk]))
    assert len(many) == len(few)


def test_person_detail_missing_is_404(client_in):
    response = client_in.get(reverse("people:person-detail", args=[uuid.uuid4()]))
    assert response.status_code == 404


def test_timeline_load_more_returns_older_entries_without_skipping_ties(client_in, ada, staff_user):
    # given: 25 calls and a letter; the 20th and 21st newest share a moment (the page boundary)
    from django.utils import timezone
    now = timezone.now()
    for i in range(25):
        day = 19 if i in (18, 19) else i
        services.interaction_log(actor=staff_user, person=ada, channel="phone", kind="call",
                                 summary=f"call {i:02d}", occurred_at=now - timezone.timedelta(days=day + 1))
    page = client_in.get(reverse("people:person-detail", args=[ada.pk]))
    shown = [e.summary for e in page.context["timeline"]]
    assert "Load older entries" in page.content.decode() and len(shown) == 20
    # when
    more = client_in.get(reverse("people:person-timeline", args=[ada.pk]) + "?" + page.context["more_after"])
    # then: every entry appears exactly once across the two pages
    rest = [e.summary for e in more.context["timeline"]]
    assert sorted(shown + rest) == sorted([f"call {i:02d}" for i in range(25)] + ["Wrote about the engine"])
    assert "Load older entries" not in more.content.decode()


def test_timeline_without_before_is_400(client_in, ada):
    response = client_in.get(reverse("people:person-timeline", args=[ada.pk]))
    assert response.status_code == 400


def test_log_a_call_with_htmx_returns_the_new_entry(client_in, ada):
    # when
    response = client_in.post(reverse("people:interaction-create", args=[ada.pk]),
                              {"kind": "call", "summary": "Asked about delivery", "sentiment": "complaint"},
                              HTTP_HX_REQUEST="true")
    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert "Asked about delivery" in body and "Complaint" in body and 'hx-swap-oob="true"' in body
    entry = Interaction.objects.get(summary="Asked about delivery")
    assert (entry.channel, entry.kind, entry.sentiment) == ("phone", "call", "complaint")


def test_log_without_summary_shows_the_field_error(client_in, ada):
    response = client_in.post(reverse("people:interaction-create", args=[ada.pk]), {"kind": "letter"},
                              HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#quick-action"
    assert "This field is required." in response.content.decode()
    assert not Interaction.objects.filter(kind="letter", summary="").exists()


def test_create_person_with_bad_email_shows_error_next_to_email(client_in):
    # when
    response = client_in.post(reverse("people:person-create"),
                              {"given_name": "Bad", "family_name": "Email", "email": "not-an-email"})
    # then
    form = response.context["form"]
    assert response.status_code == 400
    assert form.errors.get("email")
    assert not Person.objects.filter(given_name="Bad").exists()


def test_create_person_without_anything_shows_error(client_in):
    response = client_in.post(reverse("people:person-create"), {})
    assert response.status_code == 400
    assert response.context["form"].errors.get("given_name")


def test_create_person_shows_possible_duplicates_then_creates_anyway(client_in, ada):
    # given
    data = {"given_name": "Ada", "family_name": "King", "email": "ADA@example.com"}
    # when
    first = client_in.post(reverse("people:person-create"), data)
    # then
    assert first.status_code == 200
    assert "Possible duplicates" in first.content.decode()
    assert first.context["candidates"][0]["person"] == ada
    assert not Person.objects.filter(family_name="King").exists()
    # when
    second = client_in.post(reverse("people:person-create"), {**data, "create_anyway": "1"})
    # then
    created = Person.objects.get(family_name="King")
    assert second.status_code == 302 and second["Location"] == reverse("people:person-detail", args=[created.pk])


def test_create_person_with_phone_in_local_format(client_in):
    response = client_in.post(reverse("people:person-create"),
                              {"given_name": "Grace", "family_name": "Hopper", "phone": "020 7946 0999"})
    assert response.status_code == 302
    assert ContactPoint.objects.get(person__given_name="Grace").normalised == "+442079460999"


def test_edit_person_saves_and_rejects_stale_version(client_in, ada):
    # when
    url = reverse("people:person-edit", args=[ada.pk])
    ok = client_in.post(url, {"given_name": "Augusta", "family_name": "Lovelace", "version": ada.version,
                              "tags": "vip, press"})
    stale = client_in.post(url, {"given_name": "Old", "family_name": "Lovelace", "version": ada.version})
    # then
    ada.refresh_from_db()
    assert ok.status_code == 302
    assert ada.given_name == "Augusta" and sorted(t.name for t in ada.tags.all()) == ["press", "vip"]
    assert stale.status_code == 400 and "changed by someone else" in stale.content.decode()


def test_edit_form_hides_and_freezes_secured_fields(client_in, ada):
    with mock.patch("rapport.people.forms.hidden_fields", return_value=frozenset({"notes"})), \
         mock.patch("rapport.people.forms.readonly_fields", return_value=frozenset({"country"})):
        response = client_in.get(reverse("people:person-edit", args=[ada.pk]))
    form = response.context["form"]
    assert "notes" not in form.fields
    assert form.fields["country"].disabled


def test_edit_person_missing_is_404(client_in):
    assert client_in.get(reverse("people:person-edit", args=[uuid.uuid4()])).status_code == 404


def test_contact_point_add_edit_remove(client_in, ada):
    # add with an error
    bad = client_in.post(reverse("people:contact-point-add", args=[ada.pk]), {"kind": "phone", "value": "12"})
    assert bad.status_code == 400 and bad.context["form"].errors.get("value")
    # add
    client_in.post(reverse("people:contact-point-add", args=[ada.pk]),
                   {"kind": "email", "value": "countess@example.com", "source": "letter"})
    point = ContactPoint.objects.get(normalised="countess@example.com")
    assert point.source == "letter"
    # edit
    response = client_in.post(reverse("people:contact-point-edit", args=[ada.pk, point.pk]),
                              {"value": "countess@example.com", "verified": "on", "label": "home"})
    point.refresh_from_db()
    assert response.status_code == 302 and point.verified and point.label == "home"
    # remove
    client_in.post(reverse("people:contact-point-remove", args=[ada.pk, point.pk]))
    assert not ContactPoint.objects.filter(pk=point.pk).exists()


def test_contact_point_of_another_person_is_404(client_in, ada, make_person):
    other = make_person(emails=["other@example.com"])
    point = other.contact_points.get()
    response = client_in.get(reverse("people:contact-point-edit", args=[ada.pk, point.pk]))
    assert response.status_code == 404


def test_start_and_end_a_job(client_in, ada, make_organisation):
    # given
    new_org = make_organisation(name="Difference Ltd")
    # when
    picked = client_in.get(reverse("people:organisation-pick"), {"q": "diff"})
    client_in.post(reverse("people:employment-start", args=[ada.pk]),
                   {"organisation": str(new_org.pk), "title": "Director", "end_other_jobs": "on"})
    # then
    assert "Difference Ltd" in picked.content.decode()
    jobs = {j.organisation.name: j for j in Employment.objects.filter(person=ada)}
    assert jobs["Difference Ltd"].end_date is None and jobs["Analytical Engines"].end_date is not None
    # when
    client_in.post(reverse("people:employment-end", args=[ada.pk, jobs["Difference Ltd"].pk]), {})
    # then
    assert Employment.objects.get(pk=jobs["Difference Ltd"].pk).end_date is not None


def test_start_job_without_organisation_shows_error(client_in, ada):
    response = client_in.post(reverse("people:employment-start", args=[ada.pk]), {"title": "x"})
    assert response.status_code == 400
    assert "Pick an organisation" in response.content.decode()


def test_organisation_list_detail_and_queries(client_in, ada, make_organisation, staff_user):
    # given
    parent = make_organisation(name="Engines Group")
    child = ada.employments.get().organisation
    services.organisation_update(actor=staff_user, organisation=child, changes={"parent": parent})
    with CaptureQueriesContext(connection) as few:
        client_in.get(reverse("people:organisation-list"))
    for i in range(6):
        make_organisation(name=f"Org {i}", parent=parent)
    with CaptureQueriesContext(connection) as many:
        listing = client_in.get(reverse("people:organisation-list"), {"name": "eng"})
    # when
    detail = client_in.get(reverse("people:organisation-detail", args=[parent.pk]))
    child_detail = client_in.get(reverse("people:organisation-detail", args=[child.pk]))
    # then
    assert len(many) == len(few)
    assert "Engines Group" in listing.content.decode() and "Org 1" not in listing.content.decode()
    assert "Analytical Engines" in detail.content.decode() and "Org 3" in detail.content.decode()
    assert "Ada Lovelace" in child_detail.content.decode() and "Engines Group" in child_detail.content.decode()


def test_organisation_missing_is_404(client_in):
    assert client_in.get(reverse("people:organisation-detail", args=[uuid.uuid4()])).status_code == 404


def test_organisation_create_and_edit_with_errors(client_in, make_organisation):
    # error: no name
    bad = client_in.post(reverse("people:organisation-create"), {"domain": "x.com"})
    assert bad.status_code == 400 and bad.context["form"].errors.get("name")
    # create
    ok = client_in.post(reverse("people:organisation-create"), {"name": "Acme", "domain": "ACME.com"})
    assert ok.status_code == 302
    from rapport.people.models import Organisation
    acme = Organisation.objects.get(name="Acme")
    assert acme.domain == "acme.com"
    # edit: a child cannot become its own parent's parent
    child = make_organisation(name="Acme UK", parent=acme)
    cycle = client_in.post(reverse("people:organisation-edit", args=[acme.pk]),
                           {"name": "Acme", "parent": str(child.pk)})
    assert cycle.status_code == 400 and cycle.context["form"].errors.get("parent")


def test_login_with_wrong_password_shows_an_error(client, staff_user):
    response = client.post(reverse("login"), {"username": "staff", "password": "wrong-password"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_home_queries_do_not_grow_with_interactions(client_in, ada, staff_user):
    client_in.get(reverse("home"))  # fills the process's access cache
    with CaptureQueriesContext(connection) as few:
        client_in.get(reverse("home"))
    for i in range(6):
        services.interaction_log(actor=staff_user, person=ada, channel="web", kind="web_form", summary=f"w{i}")
    with CaptureQueriesContext(connection) as many:
        client_in.get(reverse("home"))
    assert len(many) == len(few)


def test_a_restricted_or_erased_person_offers_no_edits_that_would_be_refused(client_in, ada, admin_user):
    from rapport.privacy import services as privacy
    from rapport.privacy.erasure import erase_person

    # given: an ordinary person shows the edit forms
    url = reverse("people:person-detail", args=[ada.pk])
    page = client_in.get(url).content.decode()
    assert 'id="log-h"' in page and "Add a contact point" in page and "frozen-notice" not in page
    # when: processing is restricted
    privacy.restrict_processing(actor=admin_user, person=ada, reason="accuracy contested")
    page = client_in.get(url).content.decode()
    # then: the page says why and offers no edit, new contact point, job change or log form
    assert "frozen-notice" in page and "restricted" in page
    for form in ('id="log-h"', "Add a contact point", "Start a new job", "End job",
                 reverse("people:person-edit", args=[ada.pk])):
        assert form not in page
    # when: lifted, then erased
    privacy.lift_restriction(actor=admin_user, person=ada)
    assert "frozen-notice" not in client_in.get(url).content.decode()
    erase_person(actor=admin_user, person=ada)
    page = client_in.get(url).content.decode()
    assert "frozen-notice" in page and "erased" in page and 'id="log-h"' not in page
