"""S2 — ``restrict_first``: the first visible records of an ordered query, found through a window
of candidates, are exactly ``restrict``'s first records (decision 0019)."""

from __future__ import annotations

import random

import pytest
from django.db import connection
from django.db.models import Prefetch
from django.test.utils import CaptureQueriesContext

from rapport.access import services
from rapport.access.models import Access, RecordShare
from rapport.access.policy import forget
from rapport.access.sharing import FIRST_WINDOW, WINDOWED_VENDORS, restrict, restrict_first
from rapport.core.search import fold
from rapport.people.models import ContactPoint, Person
from rapport.people.selectors import _name_q, global_search

GIVEN = ["Ada", "Alan", "Alma", "Ann", "Anna", "Bea", "Ben", "Mia", "Milo", "Mina"]
FAMILY = ["Abbott", "Adams", "Allen", "Baker", "Miller", "Mills", "Milton", "Moss"]
PREFIXES = ["a", "al", "ann", "b", "mi", "mil", "zz", "m"]


@pytest.fixture
def crowd(admin_user, user_in, roles):
    """300 people owned by four users; the rep sees about half through owners, a team rule,
    a criteria rule and manual shares; the loner (a service agent) sees only their own handful."""
    services.sharing_default_set(actor=admin_user, object_type="people.person", access=Access.PRIVATE)
    rep, peer, other, loner = (user_in("sales-rep", "rep"), user_in("sales-rep", "peer"),
                               user_in("sales-rep", "other"), user_in("service-agent", "loner"))
    team = services.team_save(actor=admin_user, name="Peers", member_ids=[peer.pk])
    target = services.team_save(actor=admin_user, name="Reps", member_ids=[rep.pk])
    services.sharing_rule_save(actor=admin_user, name="Peers to reps", object_type="people.person",
                               owner_team=team, criteria=None, target_role=None, target_team=target,
                               access=Access.READ)
    services.sharing_rule_save(actor=admin_user, name="Spain to reps", object_type="people.person",
                               owner_team=None, criteria={"country": "ES"}, target_role=roles["sales-rep"],
                               target_team=None, access=Access.READ_WRITE)
    rng = random.Random(19)
    owners = [rep, peer, other, other, other, loner]
    people = []
    for _ in range(300):
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        people.append(Person(given_name=given, family_name=family, given_key=fold(given), family_key=fold(family),
                             country=rng.choice(["GB", "GB", "FR", "ES"]), owner=rng.choice(owners[:5])))
    people += [Person(given_name="Mia", family_name="Moss", given_key="mia", family_key="moss", country="GB",
                      owner=loner) for _ in range(3)]
    Person.objects.bulk_create(people)
    others = list(Person.objects.filter(owner=other).exclude(country="ES").order_by("pk"))
    RecordShare.objects.bulk_create(
        [RecordShare(object_type="people.person", object_id=p.pk, access=Access.READ, user=rep) for p in others[:25]]
        + [RecordShare(object_type="people.person", object_id=p.pk, access=Access.READ, team=target)
           for p in others[25:40]])
    ContactPoint.objects.bulk_create([ContactPoint(person=p, kind=ContactPoint.Kind.EMAIL, value=f"{n}@example.org",
                                                   normalised=f"{n}@example.org", search_key=f"{n}exampleorg",
                                                   primary=True)
                                      for n, p in enumerate(Person.objects.order_by("pk")[:50])])
    for user in (rep, loner):
        forget(user)
    return {"rep": rep, "loner": loner, "admin": admin_user}


def _by_name(prefix: str):
    return Person.objects.filter(_name_q(prefix)).order_by("family_key", "given_key", "pk")


@pytest.mark.parametrize("who", ["rep", "loner", "admin"])
@pytest.mark.parametrize("action", ["read", "change"])
def test_the_first_visible_records_are_restricts_first_records(crowd, who, action):
    # given
    user = crowd[who]
    for prefix in PREFIXES:
        expected = [p.pk for p in restrict(_by_name(prefix), user, action)[:25]]
        for limit in (1, 8, 25):
            for window in (None, 1, 3, limit, 1000):
                # when
                found = restrict_first(_by_name(prefix), user, limit, action, window=window)
                # then: the same records in the same order, however small the window
                assert [p.pk for p in found] == expected[:limit], (prefix, limit, window)


def test_a_window_without_a_full_page_falls_back_to_every_candidate(crowd):
    # given: the loner owns 3 of the ~100 "m" matches, all late in name order (Moss)
    loner = crowd["loner"]
    visible = [p.pk for p in restrict(_by_name("m"), loner)]
    assert 3 <= len(visible) < 8
    # when
    with CaptureQueriesContext(connection) as queries:
        found = restrict_first(_by_name("m"), loner, 8)
    # then: every visible match, though none is among the first candidates
    assert [p.pk for p in found] == visible
    people_queries = [q["sql"] for q in queries.captured_queries if "people_person" in q["sql"]]
    assert len(people_queries) == (2 if connection.vendor in WINDOWED_VENDORS else 1)


def test_a_full_page_in_the_window_is_one_query(crowd):
    # given
    rep = crowd["rep"]
    restrict_first(_by_name("a"), rep, 8)  # the access context, loaded once per request
    # when
    with CaptureQueriesContext(connection) as queries:
        found = restrict_first(_by_name("a"), rep, 8)
    # then
    assert len(found) == 8
    people_queries = [q["sql"] for q in queries.captured_queries if "people_person" in q["sql"]]
    assert len(people_queries) == 1
    if connection.vendor in WINDOWED_VENDORS:
        assert f"LIMIT {FIRST_WINDOW * 8})" in people_queries[0]


def test_records_come_whole_with_their_prefetches(crowd):
    # given
    rep = crowd["rep"]
    primary = Prefetch("contact_points", queryset=ContactPoint.objects.filter(primary=True))
    queryset = _by_name("a").prefetch_related(primary)
    # when
    found = restrict_first(queryset, rep, 8)
    # then: the same field values as the ORM gives, contact points already fetched
    expected = {p.pk: p for p in restrict(queryset, rep)[:8]}
    assert [p.pk for p in found] == list(expected)
    for person in found:
        same = expected[person.pk]
        assert (person.given_name, person.family_key, person.owner_id, person.country, person.created_at) == (
            same.given_name, same.family_key, same.owner_id, same.country, same.created_at)
    with CaptureQueriesContext(connection) as queries:
        points = [list(p.contact_points.all()) for p in found]
    assert len(queries) == 0
    assert points == [list(expected[p.pk].contact_points.all()) for p in found]


def test_a_new_manual_share_shows_at_once(crowd, admin_user):
    # given: a "zz" person the rep does not see
    rep = crowd["rep"]
    hidden = Person.objects.create(given_name="Zz", family_name="Top", given_key="zz", family_key="top",
                                   country="GB", owner=crowd["loner"])
    assert restrict_first(_by_name("zz"), rep, 8) == []
    # when
    services.record_share(actor=admin_user, record=hidden, user=rep, access=Access.READ)
    forget(rep)
    # then
    assert [p.pk for p in restrict_first(_by_name("zz"), rep, 8)] == [hidden.pk]


def test_anonymous_and_no_permission_see_nothing(crowd, user_in):
    from django.contrib.auth.models import AnonymousUser

    assert restrict_first(_by_name("a"), AnonymousUser(), 8) == []
    auditor = user_in("auditor", "audrey")
    assert restrict_first(_by_name("a"), auditor, 8, "delete") == []


def test_global_search_shows_every_visible_match_up_to_the_page(crowd):
    # given
    for who in ("rep", "loner", "admin"):
        user = crowd[who]
        for prefix in PREFIXES:
            if len(prefix) < 2:
                continue
            expected = [p.pk for p in restrict(_by_name(prefix), user)[:8]]
            # when
            hits = global_search(user=user, query=prefix)
            # then
            assert [h.id for h in hits if h.kind == "person"] == expected, (who, prefix)
