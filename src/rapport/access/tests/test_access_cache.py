"""S1–S7 — the per-process access cache is used only while the shared generation row is unchanged.

Each process keeps the organisation's sharing configuration (policy.py) and the contexts
derived from it; a request reads one small row (a token request reads it with the token) to
validate them. A change made anywhere — through a service, in another process (simulated:
the change is made and this process's memory put back as it was, or made on a second
connection), by plain ORM writes or raw SQL (database triggers, migration access/0006) — is
seen on the next request, and a rolled-back change is never served.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from rapport.access import policy, services
from rapport.access.models import (
    Access,
    AccessGeneration,
    FieldRule,
    Role,
    SharingDefault,
    SharingRule,
    Team,
    TeamMembership,
    User,
)
from rapport.access.services import token_revoke
from rapport.access.tests.fresh import (
    a_rep_and_a_colleagues_private_person,
    request_user,
    visible_ids,
)
from rapport.core.testing import token_client
from rapport.people.models import Person


def _generation():
    return AccessGeneration.objects.filter(pk=1).values_list("value", flat=True).first()



def _person(owner, **extra):
    return Person.objects.create(given_name="Pat", family_name="Lee", given_key="pat", family_key="lee",
                                 owner=owner, **extra)


def _private_people(db):
    services.sharing_default_set(actor=None, object_type="people.person", access=Access.PRIVATE)


# --------------------------------------------------------------------------- reuse


def test_a_second_request_reads_one_row_and_rebuilds_nothing(user_in):
    # given: a first request has filled the process cache
    rep = user_in("sales-rep", "rep")
    _private_people(None)
    list(Person.objects.visible_to(request_user(rep)))
    user = request_user(rep)
    # when
    with CaptureQueriesContext(connection) as queries:
        ctx = policy.access_context(user)
    # then: the generation row only, not the reports, teams, rules or defaults
    assert len(queries.captured_queries) == 1
    assert "access_accessgeneration" in queries.captured_queries[0]["sql"]
    assert ctx.principal_ids == {rep.pk}


def test_a_second_token_request_does_not_rebuild_the_context(user_in):
    # given
    client = token_client(user_in("sales-rep", "rep"), ["read"])
    client.get("/api/v1/me/")
    # when
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/me/").status_code == 200
    # then: the token (with its user, role and the generation) is read, nothing else of access
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "access_teammembership" not in sql and '"manager_id" IN' not in sql
    assert "access_sharingrule" not in sql


def test_a_revoked_token_or_deactivated_user_is_refused_at_once(user_in):
    # given: a context cached by a first call
    rep = user_in("sales-rep", "rep")
    revoked, deactivated = token_client(rep, ["read"]), token_client(user_in("sales-rep", "other"), ["read"])
    assert revoked.get("/api/v1/me/").status_code == 200
    assert deactivated.get("/api/v1/me/").status_code == 200
    # when
    token_revoke(token=rep.api_tokens.get())
    User.objects.filter(username="other").update(is_active=False)  # as another process would
    # then
    assert revoked.get("/api/v1/me/").status_code == 401
    assert deactivated.get("/api/v1/me/").status_code == 401


def test_a_changed_role_takes_effect_on_the_next_request(user_in, roles):
    # given
    rep = user_in("sales-rep", "rep")
    client = token_client(rep, ["read"])
    assert client.get("/api/v1/me/").json()["role"] == roles["sales-rep"].name
    # when: another role given, without a service (no access_changed in this process)
    User.objects.filter(pk=rep.pk).update(role=roles["front-desk"])
    # then
    assert client.get("/api/v1/me/").json()["role"] == roles["front-desk"].name
    # when: the role's permissions change
    Role.objects.filter(pk=roles["front-desk"].pk).update(permissions={})
    # then
    assert client.get("/api/v1/me/").json()["permissions"] == {}


def test_ttl_zero_switches_the_cache_off(user_in, settings):
    settings.RAPPORT_ACCESS_CONTEXT_TTL = 0
    client = token_client(user_in("sales-rep", "rep"), ["read"])
    client.get("/api/v1/me/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/me/").status_code == 200
    assert "access_teammembership" in " ".join(q["sql"] for q in queries.captured_queries)


def test_access_changed_gives_the_shared_row_a_new_value_each_time(admin_user):
    # given
    seen = {_generation()}
    # when / then
    for _ in range(3):
        policy.access_changed()
        assert _generation() not in seen
        seen.add(_generation())


# ------------------------------------------------------------ changes made elsewhere


def test_a_team_change_made_in_another_process_is_seen_on_the_next_request(user_in, another_process):
    # given: the rep sees only their own people; the cache is warm
    rep, colleague = user_in("sales-rep", "rep"), user_in("sales-rep", "colleague")
    _private_people(None)
    theirs = _person(colleague)
    assert theirs.pk not in visible_ids(rep)
    team = Team.objects.create(name="North")
    rule_team = Team.objects.create(name="Owners")
    TeamMembership.objects.create(user=colleague, team=rule_team)
    services.sharing_rule_save(actor=None, name="Owners to North", object_type="people.person",
                               owner_team=rule_team, criteria=None, target_role=None, target_team=team,
                               access=Access.READ)
    assert theirs.pk not in visible_ids(rep)
    # when: another process puts the rep in the team through the service
    another_process(lambda: services.user_access_update(actor=None, user=request_user(rep), role=rep.role,
                                                        manager=None, team_ids=[team.pk], allowed_networks=[]))
    # then
    assert theirs.pk in visible_ids(rep)


@pytest.mark.parametrize("write", ["orm", "raw sql"])
def test_memberships_written_without_a_service_are_seen_at_once(user_in, another_process, write):
    # given
    rep, colleague = user_in("sales-rep", "rep"), user_in("sales-rep", "colleague")
    _private_people(None)
    theirs = _person(colleague)
    team, owners = Team.objects.create(name="North"), Team.objects.create(name="Owners")
    services.sharing_rule_save(actor=None, name="Owners to North", object_type="people.person",
                               owner_team=owners, criteria=None, target_role=None, target_team=team,
                               access=Access.READ)
    TeamMembership.objects.create(user=rep, team=team)
    assert theirs.pk not in visible_ids(rep)

    # when: the colleague joins the rule's owner team, with no service and no access_changed()
    def join():
        if write == "orm":
            TeamMembership.objects.create(user=colleague, team=owners)
        else:
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO access_teammembership (user_id, team_id) VALUES (%s, %s)",
                               [colleague.pk.hex, owners.pk.hex] if connection.vendor == "sqlite"
                               else [colleague.pk, owners.pk])

    another_process(join)
    # then
    assert theirs.pk in visible_ids(rep)
    # when: they leave it again
    another_process(lambda: TeamMembership.objects.filter(user=colleague, team=owners).delete())
    # then
    assert theirs.pk not in visible_ids(rep)


def test_a_new_report_or_manager_written_elsewhere_is_seen_at_once(user_in, another_process):
    # given
    boss, report = user_in("sales-manager", "boss"), user_in("sales-rep", "report")
    _private_people(None)
    theirs = _person(report)
    assert theirs.pk not in visible_ids(boss)
    # when
    another_process(lambda: User.objects.filter(pk=report.pk).update(manager=boss))
    # then
    assert theirs.pk in visible_ids(boss)
    # when: the report is deactivated elsewhere
    another_process(lambda: User.objects.filter(pk=report.pk).update(is_active=False))
    # then
    assert theirs.pk not in visible_ids(boss)


def test_sharing_defaults_rules_and_field_rules_written_elsewhere_are_seen_at_once(user_in, roles,
                                                                                   another_process):
    # given
    rep, colleague = user_in("sales-rep", "rep"), user_in("sales-rep", "colleague")
    _private_people(None)
    spanish = _person(colleague, country="ES")
    assert spanish.pk not in visible_ids(rep)
    # when: a criteria rule aimed at the rep's role, inserted without a service
    another_process(lambda: SharingRule.objects.create(
        name="Spain", object_type="people.person", criteria={"country": "ES"}, target_role=roles["sales-rep"],
        access=Access.READ))
    # then
    assert spanish.pk in visible_ids(rep)
    # when: the rule is switched off, then the default opened to everyone
    another_process(lambda: SharingRule.objects.update(active=False))
    assert spanish.pk not in visible_ids(rep)
    another_process(lambda: SharingDefault.objects.filter(object_type="people.person").update(access=Access.READ))
    # then
    assert spanish.pk in visible_ids(rep)
    # when: a field rule hides the notes from the rep's role
    another_process(lambda: FieldRule.objects.create(role=roles["sales-rep"], model_label="people.Person",
                                                     field="notes", level="hidden"))
    # then
    assert policy.access_context(request_user(rep)).field_levels("people.Person").get("notes") == "hidden"


def test_the_default_role_changed_elsewhere_is_seen_by_users_without_a_role(db, roles, another_process):
    # given: a user with no role gets the default role's permissions (cached with the configuration)
    nobody = User.objects.create_user("nobody", password=None)
    default = Role.objects.get(is_default=True)
    assert policy.access_context(request_user(nobody)).role_id == default.pk
    # when
    another_process(lambda: Role.objects.filter(pk=default.pk).update(permissions={}))
    # then
    assert policy.access_context(request_user(nobody)).permissions == {}


def test_a_rolled_back_change_is_never_served(user_in):
    # given
    rep, colleague = user_in("sales-rep", "rep"), user_in("sales-rep", "colleague")
    _private_people(None)
    theirs = _person(colleague)
    team = Team.objects.create(name="North")
    before = _generation()

    # when: a change is seen inside its transaction (and cached there), then rolled back
    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        User.objects.filter(pk=colleague.pk).update(manager=rep)
        TeamMembership.objects.create(user=rep, team=team)
        assert theirs.pk in visible_ids(rep)
        raise Undo
    # then
    assert _generation() == before
    assert theirs.pk not in visible_ids(rep)
    assert team.pk not in policy.access_context(request_user(rep)).team_ids


@pytest.mark.django_db(transaction=True)
def test_a_change_committed_on_another_connection_is_seen_at_once(on_another_connection):
    # given: committed data and a warm cache in this thread
    rep, colleague, theirs = a_rep_and_a_colleagues_private_person()
    kept = policy._generation, policy._config

    # when: another connection (a thread has its own) makes the colleague the rep's report
    on_another_connection(lambda: User.objects.filter(pk=colleague.pk).update(manager=rep))
    # then: this process's memory was not touched, and the next request sees the change
    assert (policy._generation, policy._config) == kept
    assert theirs.pk in visible_ids(rep)
