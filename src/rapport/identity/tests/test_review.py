"""I3 — batch de-duplication, the review queue (UI and API), decisions and their permissions."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from rapport.access.models import Role
from rapport.core import testing
from rapport.identity.dedupe import run_dedupe
from rapport.identity.models import DuplicateSuggestion, MergeRecord, NotDuplicate
from rapport.people.models import Interaction, Person
from rapport.people.services import interaction_log


@pytest.fixture
def twins(make_person):
    """Two records of one customer and one unrelated person."""
    a = make_person(given_name="Robert", family_name="Quilliam", emails=["rob.quilliam@example.com"],
                    phones=["+44 20 7946 0123"])
    b = make_person(given_name="Bob", family_name="Quilliam", emails=["Rob.Quilliam@example.com"],
                    phones=["020 7946 0123"])
    other = make_person(given_name="Sarah", family_name="Mbeki", emails=["sarah@example.org"])
    return a, b, other


def _user_with_role(key: str, name: str):
    return testing.make_user(name, role=Role.objects.get(key=key))


# ------------------------------------------------------------------------ the batch run


def test_dedupe_suggests_the_pair_with_evidence_and_a_dry_run_writes_nothing(twins):
    a, b, _other = twins
    # when: dry run
    report = run_dedupe(dry_run=True)
    # then
    assert report.people == 3 and len(report.pairs) == 1 and not DuplicateSuggestion.objects.exists()
    # when: for real, twice (the second run updates, does not duplicate)
    run_dedupe()
    second = run_dedupe()
    # then
    suggestion = DuplicateSuggestion.objects.get()
    assert {suggestion.left_id, suggestion.right_id} == {a.pk, b.pk}
    assert suggestion.probability > 0.9 and suggestion.status == "open"
    fields = {e["field"]: e["level"] for e in suggestion.evidence}
    assert fields["email"] == "exact" and fields["phone"] == "exact" and fields["family"] == "exact"
    assert second.suggested_new == 0 and second.suggested_updated == 1
    # when: the data changes so that the pair no longer matches
    from rapport.people.models import ContactPoint

    ContactPoint.objects.filter(person=b).delete()
    Person.objects.filter(pk=b.pk).update(given_name="Zebedee", given_key="zebedee", family_key="other")
    third = run_dedupe()
    # then: the open suggestion is withdrawn
    assert third.withdrawn == 1 and not DuplicateSuggestion.objects.exists()


def test_not_the_same_person_is_remembered_and_never_suggested_again(twins, staff_user):
    from rapport.identity.review import reject_pair

    a, b, _ = twins
    run_dedupe()
    reject_pair(actor=staff_user, left_id=b.pk, right_id=a.pk, reason="father and son")
    assert DuplicateSuggestion.objects.get().status == "rejected"
    report = run_dedupe()
    assert report.remembered_different == 1 and report.pairs == []
    assert NotDuplicate.objects.count() == 1
    assert DuplicateSuggestion.objects.get().status == "rejected"


def test_auto_merge_is_off_by_default_and_merges_above_the_setting(twins, settings):
    a, b, _ = twins
    run_dedupe()
    assert Person.objects.count() == 3
    settings.RAPPORT_AUTO_MERGE_ABOVE = "0.95"
    call_command("dedupe")
    assert Person.objects.count() == 2
    record = MergeRecord.objects.get()
    assert record.survivor_id == a.pk and record.merged_person_id == b.pk  # the older record survives


def test_dedupe_command_reports_and_refuses_bad_input(twins, capsys):
    call_command("dedupe", "--dry-run", "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["people"] == 3 and len(out["pairs"]) == 1 and out["dry_run"] is True
    with pytest.raises(CommandError, match="Not a probability"):
        call_command("dedupe", "--threshold", "high")
    with pytest.raises(CommandError, match="threshold"):
        call_command("dedupe", "--threshold", "1.5")
    with pytest.raises(CommandError, match="auto_merge_above"):
        call_command("dedupe", "--threshold", "0.9", "--auto-merge-above", "0.5")
    assert not DuplicateSuggestion.objects.exists()


def test_the_periodic_job_is_registered_and_runs_the_whole_database(twins):
    from rapport.core.jobs import PERIODIC
    from rapport.identity.tasks import dedupe_task

    assert any(p.name == "identity.dedupe" and p.task_path == "rapport.identity.tasks.dedupe_task"
               for p in PERIODIC)
    result = dedupe_task.call()
    assert result["suggested_new"] == 1 and result["auto_merged"] == 0


# ------------------------------------------------------------------------------ the API


def test_api_lists_merges_and_unmerges(twins, api_client):
    a, b, _ = twins
    run_dedupe()
    # when
    listed = api_client.get("/api/v1/identity/suggestions/")
    # then
    assert listed.status_code == 200
    [row] = listed.json()["results"]
    assert {row["left"]["id"], row["right"]["id"]} == {str(a.pk), str(b.pk)}
    assert {"field", "level", "weight"} <= set(row["evidence"][0])
    # when
    merged = api_client.post("/api/v1/identity/merges/", {
        "survivor": str(a.pk), "merged": str(b.pk), "field_choices": {"given_name": "merged"}}, format="json")
    # then
    assert merged.status_code == 201, merged.content
    assert Person.objects.get(pk=a.pk).given_name == "Bob"
    assert api_client.get("/api/v1/identity/suggestions/").json()["results"] == []
    history = api_client.get(f"/api/v1/identity/merges/?person={a.pk}").json()["results"]
    assert [h["id"] for h in history] == [merged.json()["id"]]
    # when
    undone = api_client.post(f"/api/v1/identity/merges/{merged.json()['id']}/unmerge/", {}, format="json")
    # then
    assert undone.status_code == 200 and undone.json()["restored"] == str(b.pk)
    assert Person.objects.get(pk=a.pk).given_name == "Robert"
    again = api_client.post(f"/api/v1/identity/merges/{merged.json()['id']}/unmerge/", {}, format="json")
    assert again.status_code == 409 and again["Content-Type"] == "application/problem+json"


def test_api_bad_input_is_a_problem_with_field_errors(twins, api_client):
    a, b, _ = twins
    response = api_client.post("/api/v1/identity/merges/", {
        "survivor": str(a.pk), "merged": "nope", "field_choices": {"shoe_size": "merged", "notes": "mine"},
        "colour": "red"}, format="json")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert "colour" in response.json()["errors"]
    response = api_client.post("/api/v1/identity/merges/", {
        "survivor": str(a.pk), "merged": str(b.pk), "field_choices": {"shoe_size": "merged"}}, format="json")
    assert response.status_code == 400 and "field_choices.shoe_size" in response.json()["errors"]
    response = api_client.post("/api/v1/identity/merges/", {"survivor": str(a.pk), "merged": str(a.pk)},
                               format="json")
    assert response.status_code == 409 and "merged" in response.json()["errors"]
    assert api_client.get("/api/v1/identity/suggestions/?limit=0").status_code == 400
    assert Person.objects.count() == 3


def test_api_reject_and_not_duplicate(twins, api_client):
    a, _b, other = twins
    run_dedupe()
    suggestion = DuplicateSuggestion.objects.get()
    response = api_client.post(f"/api/v1/identity/suggestions/{suggestion.pk}/reject/", {"reason": "twins"},
                               format="json")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    response = api_client.post("/api/v1/identity/not-duplicates/", {"left": str(a.pk), "right": str(other.pk)},
                               format="json")
    assert response.status_code == 201 and NotDuplicate.objects.count() == 2


def test_api_candidates_real_time_check(twins, api_client):
    a, b, _ = twins
    response = api_client.post("/api/v1/identity/candidates/", {
        "given_name": "Rob", "family_name": "Quilliam", "emails": ["rob.quilliam@example.com"]}, format="json")
    assert response.status_code == 200
    ids = [c["id"] for c in response.json()["candidates"]]
    assert set(ids) == {str(a.pk), str(b.pk)}
    assert response.json()["candidates"][0]["evidence"]
    assert api_client.post("/api/v1/identity/candidates/", {}, format="json").status_code == 400


def test_only_roles_that_may_merge_can_merge_and_only_people_they_can_change(twins, make_person):
    a, b, _ = twins
    agent = _user_with_role("service-agent", "agent")          # no merge permission
    rep = _user_with_role("sales-rep", "rep")                   # merge, but only own/shared records
    for user, expected in ((agent, 403), (rep, 404)):
        client = testing.token_client(user)
        response = client.post("/api/v1/identity/merges/", {"survivor": str(a.pk), "merged": str(b.pk)},
                               format="json")
        assert response.status_code == expected, (user, response.content)
    assert Person.objects.count() == 3
    assert testing.token_client(agent).get("/api/v1/identity/suggestions/").status_code == 200


def test_suggestions_are_listed_only_when_both_people_are_visible(twins):
    from rapport.access.models import SharingDefault
    from rapport.access.policy import access_changed

    run_dedupe()
    rep = _user_with_role("sales-rep", "rep")
    assert len(testing.token_client(rep).get("/api/v1/identity/suggestions/").json()["results"]) == 1
    SharingDefault.objects.update_or_create(object_type="people.person", defaults={"access": "private"})
    access_changed()
    assert testing.token_client(rep).get("/api/v1/identity/suggestions/").json()["results"] == []


# ------------------------------------------------------------------------- the staff UI


def test_queue_pair_merge_and_unmerge_pages(twins, client, staff_user):
    _a, b, _ = twins
    interaction_log(actor=staff_user, person=b, channel="phone", kind="call", summary="Asked for a brochure")
    run_dedupe()
    suggestion = DuplicateSuggestion.objects.get()
    client.force_login(staff_user)
    # when: the queue
    page = client.get(reverse("identity:queue"))
    # then
    assert page.status_code == 200 and "Quilliam" in page.content.decode()
    assert reverse("identity:pair", args=[suggestion.pk]) in page.content.decode()
    # when: the pair
    page = client.get(reverse("identity:pair", args=[suggestion.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-field="given_name" data-differs' in html and 'data-evidence="email"' in html
    # when: merged keeping the left record and the right given name
    right_given = suggestion.right.given_name
    response = client.post(reverse("identity:merge", args=[suggestion.pk]),
                           {"survivor": "left", "pick_given_name": "right"})
    # then
    assert response.status_code == 302
    survivor = Person.objects.get(pk=suggestion.left_id)
    assert survivor.given_name == right_given
    assert Interaction.objects.filter(person=survivor, summary="Asked for a brochure").exists()
    detail = client.get(reverse("people:person-detail", args=[survivor.pk])).content.decode()
    assert "Duplicates and merges" in detail and "data-unmerge" in detail
    # when: unmerged from the panel
    record = MergeRecord.objects.get()
    response = client.post(reverse("identity:unmerge", args=[record.pk]))
    # then
    assert response.status_code == 302
    assert Person.objects.filter(pk=suggestion.right_id).exists()


def test_ui_reject_with_htmx_and_permission(twins, client, staff_user):
    run_dedupe()
    suggestion = DuplicateSuggestion.objects.get()
    agent = _user_with_role("service-agent", "agent")
    client.force_login(agent)
    assert client.post(reverse("identity:reject", args=[suggestion.pk])).status_code == 403
    page = client.get(reverse("identity:pair", args=[suggestion.pk])).content.decode()
    assert "data-merge" not in page
    client.force_login(staff_user)
    response = client.post(reverse("identity:reject", args=[suggestion.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "not the same person" in response.content.decode()
    assert NotDuplicate.objects.count() == 1


def test_ui_merge_errors_are_shown_not_raised(twins, client, staff_user):
    run_dedupe()
    suggestion = DuplicateSuggestion.objects.get()
    client.force_login(staff_user)
    response = client.post(reverse("identity:merge", args=[suggestion.pk]), {"survivor": "middle"})
    assert response.status_code == 400 and "Choose which record to keep" in response.content.decode()
    assert Person.objects.count() == 3


def test_erased_people_are_left_out_of_dedupe(twins, staff_user):
    from rapport.privacy.erasure import erase_person

    _a, b, _ = twins
    erase_person(actor=staff_user, person=b, reason="request")
    report = run_dedupe()
    assert report.people == 2 and report.pairs == []


def test_the_suggestion_list_is_a_constant_number_of_queries(make_person, api_client,
                                                             django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def add_pairs(n):
        for i in range(n):
            left = make_person(given_name=f"Ann{i}", family_name="Zed", emails=[f"ann{i}@example.com"])
            right = make_person(given_name=f"Anne{i}", family_name="Zed", emails=[f"ann{i}@example.com"])
            DuplicateSuggestion.objects.create(left=left, right=right, probability=0.9, evidence=[])

    add_pairs(2)
    api_client.get("/api/v1/identity/suggestions/")  # warm: rate-limit counters, role cache
    with CaptureQueriesContext(connection) as few:
        api_client.get("/api/v1/identity/suggestions/")
    add_pairs(8)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = api_client.get("/api/v1/identity/suggestions/")
    assert len(response.json()["results"]) == 10
