"""S1–S7 — token API calls reuse the access context between requests, and still see changes.

The context is kept per process for ``RAPPORT_ACCESS_CONTEXT_TTL`` seconds (policy.py): what
the token's own row and its user's and role's rows show takes effect on the next request;
a change made through a service in any process bumps the shared access generation, read with
the token, so it is seen on the next request; only rows written without a service wait for the TTL.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from rapport.access import policy
from rapport.access.models import AccessGeneration, Role, Team, TeamMembership, User
from rapport.access.services import token_revoke
from rapport.core.testing import token_client


def _as_the_token_reads(user):
    """The user row as a token lookup gives it: role joined, the shared access generation read."""
    fresh = User.objects.select_related("role").get(pk=user.pk)
    fresh.access_generation = AccessGeneration.objects.filter(pk=1).values_list("value", flat=True).first()
    return fresh


def test_a_second_token_request_does_not_rebuild_the_context(user_in):
    # given
    client = token_client(user_in("sales-rep", "rep"), ["read"])
    client.get("/api/v1/me/")
    # when
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/me/").status_code == 200
    # then: the token (with its user and role) is read, the reports and teams are not
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "access_teammembership" not in sql and '"manager_id" IN' not in sql


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


def test_teams_changed_elsewhere_are_seen_within_the_ttl_and_at_once_through_services(user_in, monkeypatch):
    # given
    rep = user_in("sales-rep", "rep")
    client = token_client(rep, ["read"])
    client.get("/api/v1/me/")
    team = Team.objects.create(name="North")
    # when: a membership written as another process would (no access_changed here)
    TeamMembership.objects.create(user=rep, team=team)
    fresh = _as_the_token_reads(rep)
    # then: the cached context until the TTL runs out, then a fresh one
    assert team.pk not in policy.shared_access_context(fresh).team_ids
    later = policy.time.monotonic() + 60
    monkeypatch.setattr(policy.time, "monotonic", lambda: later)
    fresh = _as_the_token_reads(rep)
    assert team.pk in policy.shared_access_context(fresh).team_ids
    # and a change made through a service in this process is seen at once
    TeamMembership.objects.filter(user=rep).delete()
    policy.access_changed()
    fresh = _as_the_token_reads(rep)
    assert team.pk not in policy.shared_access_context(fresh).team_ids


def test_ttl_zero_switches_the_cache_off(user_in, settings):
    settings.RAPPORT_ACCESS_CONTEXT_TTL = 0
    client = token_client(user_in("sales-rep", "rep"), ["read"])
    client.get("/api/v1/me/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/me/").status_code == 200
    assert "access_teammembership" in " ".join(q["sql"] for q in queries.captured_queries)


def test_a_service_change_in_another_process_is_seen_on_the_next_request(user_in, admin_user):
    # given: a rep whose context is cached by a first token call
    rep = user_in("sales-rep", "rep")
    client = token_client(rep, ["read"])
    client.get("/api/v1/me/")
    team = Team.objects.create(name="North")
    cached = policy.shared_access_context(_as_the_token_reads(rep))
    # when: another process adds the membership through a service: its access_changed() bumps
    # the shared counter, and this process's memory is untouched
    TeamMembership.objects.create(user=rep, team=team)
    AccessGeneration.objects.get_or_create(pk=1)
    AccessGeneration.objects.filter(pk=1).update(value=F("value") + 1)
    # then: the next token request rebuilds the context and sees the team
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/me/").status_code == 200
    assert "access_teammembership" in " ".join(q["sql"] for q in queries.captured_queries)
    assert team.pk not in cached.team_ids


def test_access_changed_bumps_the_shared_generation(admin_user):
    # given
    before = AccessGeneration.objects.filter(pk=1).values_list("value", flat=True).first() or 0
    # when
    policy.access_changed()
    policy.access_changed()
    # then
    assert AccessGeneration.objects.get(pk=1).value == before + 2
