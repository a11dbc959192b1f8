"""P1/I2/I5 — ``person_create_checked``: the duplicate check's statement also looks the new
person's contact points up on the suppression list (one round trip for both)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rapport.identity.realtime import DuplicateFound
from rapport.identity.services import find_candidates, find_candidates_and_suppressed
from rapport.people import services
from rapport.people.models import Person
from rapport.privacy.models import SuppressionEntry
from rapport.privacy.suppression import Suppressed, digests_to_check, suppress

EMAIL = services.ContactPointInput(kind="email", value="rob.quilliam@example.com")
PHONE = services.ContactPointInput(kind="phone", value="+44 7911 123456")


@pytest.fixture
def robert(make_person):
    return make_person(given_name="Robert", family_name="Quilliam", emails=["Rob.Quilliam@example.com"])


def _suppression_statements(ctx):
    table = SuppressionEntry._meta.db_table
    return [q["sql"] for q in ctx.captured_queries if table in q["sql"]]


def test_one_statement_for_the_duplicate_check_and_the_suppression_lookup(robert, staff_user):
    with CaptureQueriesContext(connection) as ctx:
        done = services.person_create_checked(actor=staff_user, given_name="Bob", family_name="Quilliam",
                                              contact_points=[EMAIL, PHONE])
    [statement] = _suppression_statements(ctx)
    assert "people_contactpoint" in statement and "UNION ALL" in statement
    assert not done.linked and done.person.pk != robert.pk and len(done.written) == 2
    assert [c["id"] for c in done.candidates] == [str(robert.pk)]
    assert Person.objects.count() == 2


@pytest.mark.parametrize("policy", ["create", "refuse", "link"])
def test_a_suppressed_point_is_refused_whatever_the_policy_and_the_candidates(robert, staff_user, policy):
    suppress(phones=["+447911123456"])
    with pytest.raises(Suppressed) as raised:
        services.person_create_checked(actor=staff_user, on_duplicate=policy, given_name="Bob",
                                       family_name="Quilliam", contact_points=[EMAIL, PHONE])
    assert "phones" in raised.value.field_errors
    assert Person.objects.count() == 1


def test_policies_and_invalid_input(robert, staff_user):
    with pytest.raises(ValidationError):
        services.person_create_checked(actor=staff_user, on_duplicate="maybe", given_name="Bob")
    with pytest.raises(ValidationError):
        services.person_create_checked(actor=staff_user, on_duplicate="refuse", given_name="Bob",
                                       contact_points=[services.ContactPointInput(kind="email", value="no")])
    with pytest.raises(DuplicateFound):
        services.person_create_checked(actor=staff_user, on_duplicate="refuse", given_name="Bob",
                                       family_name="Quilliam", contact_points=[EMAIL])
    linked = services.person_create_checked(actor=staff_user, on_duplicate="link", given_name="Bob",
                                            family_name="Quilliam", contact_points=[EMAIL])
    assert linked.linked and linked.person.pk == robert.pk and linked.written is None
    assert Person.objects.count() == 1


def test_api_create_of_a_suppressed_phone_is_a_409_even_with_refuse(robert, api_client):
    suppress(phones=["+447911123456"])
    body = {"given_name": "Bob", "family_name": "Quilliam",
            "contact_points": [{"kind": "email", "value": EMAIL.value}, {"kind": "phone", "value": PHONE.value}]}
    response = api_client.post("/api/v1/people/?on_duplicate=refuse", body, format="json")
    assert response.status_code == 409, response.content
    body = response.json()
    assert "suppression list" in body["detail"] and "candidates" not in body
    assert Person.objects.count() == 1


@pytest.mark.parametrize("among", ["everyone", "restricted", "nobody"])
def test_find_candidates_and_suppressed_reads_the_hits_on_every_path(robert, staff_user, among):
    suppress(emails=["gone@example.com"])
    by_digest = digests_to_check(emails=["gone@example.com", EMAIL.value], normalised=True)
    people = {"everyone": None, "restricted": Person.objects.visible_to(staff_user),
              "nobody": Person.objects.none()}[among]
    found, hits = find_candidates_and_suppressed(
        given_name="Bob", family_name="Quilliam", emails=["gone@example.com", EMAIL.value], among=people,
        suppression_digests=list(by_digest))
    assert hits and {by_digest[d] for d in hits} == {("email address", "gone@example.com")}
    expected = [] if among == "nobody" else [robert.pk]
    assert [c.person_id for c in found] == expected
    assert found == find_candidates(given_name="Bob", family_name="Quilliam",
                                    emails=["gone@example.com", EMAIL.value], among=people)
    # Without identifiers to block on, the digests are still looked up (their own statement).
    assert find_candidates_and_suppressed(among=people, suppression_digests=list(by_digest))[1] == hits
