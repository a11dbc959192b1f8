"""U — global search by name, email, phone in any format, or organisation."""

from __future__ import annotations

import pytest

from rapport.core.search import _successor, prefix_q  # noqa: F401
from rapport.people.selectors import global_search, person_list

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_person, make_organisation):
    ada = make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"],
                      phones=["+44 20 7946 0018"])
    bob = make_person(given_name="Robert", family_name="Smith", preferred_name="Bob",
                      emails=["bob.smith@example.org"], phones=["07911 123456"])
    make_organisation(name="Analytical Engines Ltd")
    return ada, bob


@pytest.mark.parametrize("query", ["+44 20 7946 0018", "020 7946 0018", "02079460018", "0044 20 7946",
                                   "+442079"])
def test_phone_in_any_format_finds_the_person(people, staff_user, query):
    hits = global_search(user=staff_user, query=query)
    assert [h.title for h in hits] == ["Ada Lovelace"]
    assert hits[0].matched == "phone"


@pytest.mark.parametrize("query,expected", [
    ("lov", "Ada Lovelace"), ("ada lo", "Ada Lovelace"), ("bob", "Bob Smith"), ("smi rob", "Bob Smith"),
    ("bob.smith@", "Bob Smith"),
])
def test_name_and_email_prefixes(people, staff_user, query, expected):
    assert [h.title for h in global_search(user=staff_user, query=query)][:1] == [expected]


def test_organisation_is_found(people, staff_user):
    hits = global_search(user=staff_user, query="analyt")
    assert [(h.kind, h.title) for h in hits] == [("organisation", "Analytical Engines Ltd")]


def test_anonymous_user_finds_nothing(people):
    from django.contrib.auth.models import AnonymousUser

    assert global_search(user=AnonymousUser(), query="ada") == []


def test_prefix_upper_bound_is_collation_safe():
    assert _successor("smi") == "smj"
    assert _successor("az") == "b"
    assert _successor("a9") == "aa"
    assert _successor("zz") is None


def test_person_list_filters_by_phone_typed_differently(people, staff_user):
    assert person_list(user=staff_user, phone="020 7946 0018").count() == 1
    assert person_list(user=staff_user, email="ADA@example.com").count() == 1
