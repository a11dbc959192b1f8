"""S2 — manual shares are cached with the access contexts, and never served stale.

On PostgreSQL the visibility condition lists the user's shared ids (read once per context
and change of shares) instead of a subquery on ``access_recordshare``; on SQLite it keeps
its correlated probe. Either way a share or unshare, made by a service, by plain ORM or raw
SQL, in another process or on another connection, is seen by the next request: a trigger on
``access_recordshare`` (migration access/0009) gives the generation row a new ``value``, while
``config_value`` — what the sharing configuration is cached under — stays, so a share does
not reload the configuration.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rapport.access import policy, services, sharing
from rapport.access.models import (
    Access,
    AccessGeneration,
    RecordShare,
    Team,
    TeamMembership,
)
from rapport.access.tests.fresh import (
    a_rep_and_a_colleagues_private_person,
    request_user,
    visible_ids,
)
from rapport.core.testing import token_client
from rapport.people.models import Person


def _person(owner, name="lee"):
    return Person.objects.create(given_name="Pat", family_name=name.title(), given_key="pat", family_key=name,
                                 owner=owner)


def _row():
    return AccessGeneration.objects.values_list("value", "config_value").get(pk=1)


def _db_value(value):
    """A uuid as this database's raw SQL stores it (SQLite: 32 hex digits)."""
    return value.hex if connection.vendor == "sqlite" else value


def _raw_share(record, user):
    """A share inserted with plain SQL: no service, no ORM, no signal."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO access_recordshare (id, created_at, updated_at, object_type, object_id, user_id, access) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [_db_value(uuid.uuid4()), now, now, "people.person", _db_value(record.pk), _db_value(user.pk),
             Access.READ])


def _raw_unshare(record):
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM access_recordshare WHERE object_id = %s", [_db_value(record.pk)])



@pytest.fixture
def private(db):
    services.sharing_default_set(actor=None, object_type="people.person", access=Access.PRIVATE)


# ------------------------------------------------------------------------ this process


def test_a_share_and_an_unshare_through_the_service_are_seen_on_the_next_request(user_in, private):
    # given: the rep's context and condition are cached, the colleague's person not visible
    rep, colleague = user_in("sales-rep", "rep"), user_in("sales-rep", "colleague")
    theirs = _person(colleague)
    assert theirs.pk not in visible_ids(rep)
    # when
    share = services.record_share(actor=colleague, record=theirs, user=request_user(rep))
    # then
    assert theirs.pk in visible_ids(rep)
    # when
    services.record_unshare(actor=colleague, share=share)
    # then
    assert theirs.pk not in visible_ids(rep)


def test_a_share_is_seen_by_the_same_user_object_at_once(user_in, private):
    # given: one user object (a request) has decided visibility once already
    rep, colleague = user_in("sales-rep", "rep"), user_in("sales-rep", "colleague")
    theirs, same = _person(colleague), request_user(rep)
    assert not Person.objects.visible_to(same).filter(pk=theirs.pk).exists()
    # when: the share is written in this process (the ORM's signal)
    RecordShare.objects.create(object_type="people.person", object_id=theirs.pk, user=rep, access=Access.READ)
    # then: the request that shared sees it, as it did when the condition read the table
    assert Person.objects.visible_to(same).filter(pk=theirs.pk).exists()


# ------------------------------------------------------------------- written elsewhere


def test_a_raw_sql_share_and_unshare_made_in_another_process_are_seen_at_once(user_in, private, another_process):
    # given
    rep, colleague = user_in("sales-rep", "rep"), user_in("sales-rep", "colleague")
    theirs, other = _person(colleague), _person(colleague, "ray")
    RecordShare.objects.create(object_type="people.person", object_id=other.pk, user=rep, access=Access.READ)
    assert visible_ids(rep) & {theirs.pk, other.pk} == {other.pk}
    # when
    another_process(lambda: _raw_share(theirs, rep))
    # then
    assert visible_ids(rep) & {theirs.pk, other.pk} == {theirs.pk, other.pk}
    # when
    another_process(lambda: _raw_unshare(theirs))
    # then
    assert visible_ids(rep) & {theirs.pk, other.pk} == {other.pk}


def test_a_share_made_elsewhere_reaches_a_token_request_at_once(user_in, private, another_process):
    # given: the token's user has fetched once (the context is cached; the token reads ``value``)
    rep, colleague = user_in("sales-rep", "rep"), user_in("sales-rep", "colleague")
    theirs = _person(colleague)
    client = token_client(rep, ["read"])
    assert client.get(f"/api/v1/people/{theirs.pk}/").status_code == 404
    # when
    another_process(lambda: _raw_share(theirs, rep))
    # then
    assert client.get(f"/api/v1/people/{theirs.pk}/").status_code == 200
    # when
    another_process(lambda: _raw_unshare(theirs))
    # then
    assert client.get(f"/api/v1/people/{theirs.pk}/").status_code == 404


def test_a_share_made_elsewhere_keeps_the_configuration(user_in, private, another_process):
    # given: a warm cache
    rep, colleague = user_in("sales-rep", "rep"), user_in("sales-rep", "colleague")
    theirs = _person(colleague)
    assert theirs.pk not in visible_ids(rep)
    config = policy._config
    value, config_value = _row()
    # when
    another_process(lambda: _raw_share(theirs, rep))
    # then: the row's value moved, its configuration value did not
    assert _row()[0] != value and _row()[1] == config_value
    # and the next request reads the row only, keeps the configuration, and sees the share
    user = request_user(rep)
    with CaptureQueriesContext(connection) as queries:
        policy.access_context(user)
    assert len(queries.captured_queries) == 1
    assert policy._config is config
    assert theirs.pk in visible_ids(rep)


def test_a_configuration_change_moves_both_values(user_in):
    # given
    rep = user_in("sales-rep", "rep")
    value, config_value = _row()
    # when: a membership written by plain SQL's path (the 0006 triggers, rewritten by 0009)
    TeamMembership.objects.create(user=rep, team=Team.objects.create(name="North"))
    # then
    assert _row()[0] != value and _row()[1] != config_value
    # and access_changed() moves both too
    value, config_value = _row()
    policy.access_changed()
    assert _row()[0] != value and _row()[1] != config_value


def test_a_rolled_back_share_is_never_served(user_in, private):
    # given
    rep, colleague = user_in("sales-rep", "rep"), user_in("sales-rep", "colleague")
    theirs = _person(colleague)
    before = _row()

    class Undo(Exception):
        pass

    # when: the share is seen (and cached) inside its transaction, then rolled back
    with pytest.raises(Undo), transaction.atomic():
        _raw_share(theirs, rep)
        assert theirs.pk in visible_ids(rep)
        raise Undo
    # then
    assert _row() == before
    assert theirs.pk not in visible_ids(rep)


@pytest.mark.django_db(transaction=True)
def test_a_share_committed_on_another_connection_is_seen_at_once(on_another_connection):
    # given: committed data and a warm cache in this thread
    rep, _colleague, theirs = a_rep_and_a_colleagues_private_person()
    kept = policy._generation, policy._config

    # when: another connection (a thread has its own) shares the person with the rep, then unshares
    def elsewhere(change):
        on_another_connection(change)
        policy._generation = kept[0]  # this thread's signal did not happen in "this process"

    elsewhere(lambda: _raw_share(theirs, rep))
    # then
    assert policy._config is kept[1]
    assert theirs.pk in visible_ids(rep)
    # when / then
    elsewhere(lambda: _raw_unshare(theirs))
    assert theirs.pk not in visible_ids(rep)


# --------------------------------------------------------------------- the condition


def _search_sql(user) -> str:
    with CaptureQueriesContext(connection) as queries:
        list(Person.objects.visible_to(request_user(user)).filter(family_key__startswith="le"))
    return queries.captured_queries[-1]["sql"]


@pytest.mark.parametrize("listed", [1000, 1])
def test_the_shared_ids_are_listed_up_to_the_threshold_and_queried_beyond(user_in, private, monkeypatch, listed):
    # given: two people shared with the rep (one with their team), one not
    monkeypatch.setattr(sharing, "LISTED_SHARES", listed)
    rep, colleague = user_in("sales-rep", "rep"), user_in("sales-rep", "colleague")
    team = Team.objects.create(name="North")
    TeamMembership.objects.create(user=rep, team=team)
    shared, by_team, unshared = _person(colleague), _person(colleague, "lewis"), _person(colleague, "leroy")
    RecordShare.objects.create(object_type="people.person", object_id=shared.pk, user=rep, access=Access.READ)
    RecordShare.objects.create(object_type="people.person", object_id=by_team.pk, team=team, access=Access.READ)
    # when
    sql = _search_sql(rep)
    # then: the same people either way; PostgreSQL lists the ids up to the threshold
    assert visible_ids(rep) & {shared.pk, by_team.pk, unshared.pk} == {shared.pk, by_team.pk}
    if connection.vendor == "postgresql":
        assert ("access_recordshare" in sql) is (listed < 2)
        assert (str(shared.pk) in sql) is (listed >= 2)
    else:
        assert "EXISTS" in sql and "access_recordshare" in sql
