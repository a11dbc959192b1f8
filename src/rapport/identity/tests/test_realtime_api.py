"""I2 — the real-time duplicate check through POST /api/v1/people/ (create, refuse, link)."""

from __future__ import annotations

import pytest

from rapport.people.models import Person

BODY = {"given_name": "Bob", "family_name": "Quilliam",
        "contact_points": [{"kind": "email", "value": "rob.quilliam@example.com"}]}


@pytest.fixture
def robert(make_person):
    return make_person(given_name="Robert", family_name="Quilliam", emails=["Rob.Quilliam@example.com"])


def test_default_creates_and_reports_candidates(robert, api_client):
    response = api_client.post("/api/v1/people/", BODY, format="json")
    assert response.status_code == 201, response.content
    assert response["Rapport-Duplicate-Candidates"].startswith(f"{robert.pk};score=")
    assert Person.objects.count() == 2


def test_refuse_answers_409_with_the_candidates_and_creates_nothing(robert, api_client):
    response = api_client.post("/api/v1/people/?on_duplicate=refuse", BODY, format="json")
    assert response.status_code == 409 and response["Content-Type"] == "application/problem+json"
    [candidate] = response.json()["candidates"]
    assert candidate["id"] == str(robert.pk) and candidate["score"] > 0.9
    assert {"field", "level", "weight"} <= set(candidate["evidence"][0])
    assert Person.objects.count() == 1


def test_link_returns_the_existing_person(robert, api_client):
    response = api_client.post("/api/v1/people/?on_duplicate=link", BODY, format="json")
    assert response.status_code == 200
    assert response.json()["id"] == str(robert.pk) and response["Rapport-Linked-To"] == str(robert.pk)
    assert Person.objects.count() == 1


def test_no_candidate_means_a_plain_create_and_a_bad_policy_is_a_400(robert, api_client):
    other = {"given_name": "Sarah", "family_name": "Mbeki", "contact_points": []}
    response = api_client.post("/api/v1/people/?on_duplicate=refuse", other, format="json")
    assert response.status_code == 201 and "Rapport-Duplicate-Candidates" not in response
    response = api_client.post("/api/v1/people/?on_duplicate=maybe", BODY, format="json")
    assert response.status_code == 400 and "on_duplicate" in response.json()["errors"]


def test_candidates_the_caller_may_not_see_are_not_revealed(robert, make_person):
    from rapport.access.models import Role, SharingDefault
    from rapport.access.policy import access_changed
    from rapport.core import testing

    SharingDefault.objects.update_or_create(object_type="people.person", defaults={"access": "private"})
    access_changed()
    rep = testing.make_user("rep", role=Role.objects.get(key="sales-rep"))
    response = testing.token_client(rep).post("/api/v1/people/?on_duplicate=refuse", BODY, format="json")
    assert response.status_code == 201 and "Rapport-Duplicate-Candidates" not in response
