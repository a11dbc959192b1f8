"""S2 — restrict(): owner, defaults, sharing rules, manual shares, hierarchy, role gates."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rapport.access import services
from rapport.access.models import Access
from rapport.access.policy import forget
from rapport.access.sharing import can
from rapport.core import testing
from rapport.people.models import Organisation, Person


@pytest.fixture
def private_people(admin_user):
    services.sharing_default_set(actor=admin_user, object_type="people.person", access=Access.PRIVATE)


def names(user, action="read"):
    return sorted(p.given_name for p in Person.objects.visible_to(user, action))


def test_seeded_default_lets_everyone_read_but_only_owners_change(user_in):
    # given
    rita, sam = user_in("sales-rep", "rita"), user_in("sales-rep", "sam")
    testing.make_person(actor=rita, given_name="Ada")
    # when / then
    assert names(sam) == ["Ada"]
    assert names(sam, "change") == []
    assert names(rita, "change") == ["Ada"]


def test_private_default_shows_only_own_records(private_people, user_in):
    # given
    rita, sam = user_in("sales-rep", "rita"), user_in("sales-rep", "sam")
    testing.make_person(actor=rita, given_name="Ada")
    testing.make_person(actor=sam, given_name="Bea")
    # when / then
    assert names(rita) == ["Ada"] and names(sam) == ["Bea"]


def test_read_write_default_lets_everyone_change(admin_user, user_in):
    # given
    services.sharing_default_set(actor=admin_user, object_type="people.person", access=Access.READ_WRITE)
    rita, sam = user_in("sales-rep", "rita"), user_in("sales-rep", "sam")
    testing.make_person(actor=rita, given_name="Ada")
    # when / then
    assert names(sam, "change") == ["Ada"]


def test_team_rule_shares_records_owned_by_team_members(private_people, admin_user, user_in, roles):
    # given
    rita, sam, fran = user_in("sales-rep", "rita"), user_in("sales-rep", "sam"), user_in("service-agent", "fran")
    north = services.team_save(actor=admin_user, name="North", member_ids=[rita.pk])
    services.sharing_rule_save(actor=admin_user, name="North to service", object_type="people.person",
                               owner_team=north, criteria=None, target_role=roles["service-agent"],
                               target_team=None, access=Access.READ)
    testing.make_person(actor=rita, given_name="Ada")
    testing.make_person(actor=sam, given_name="Bea")
    # when / then: the service agent reads North's records, may not change them
    assert names(fran) == ["Ada"]
    assert names(fran, "change") == []
    assert names(sam) == ["Bea"]


def test_criteria_rule_with_read_write_to_a_team(private_people, admin_user, user_in):
    # given
    rita, sam = user_in("sales-rep", "rita"), user_in("sales-rep", "sam")
    uk = services.team_save(actor=admin_user, name="UK desk", member_ids=[sam.pk])
    services.sharing_rule_save(actor=admin_user, name="GB people", object_type="people.person",
                               owner_team=None, criteria={"country": "GB"}, target_role=None, target_team=uk,
                               access=Access.READ_WRITE)
    testing.make_person(actor=rita, given_name="Ada", country="GB")
    testing.make_person(actor=rita, given_name="Bea", country="FR")
    # when / then
    assert names(sam) == ["Ada"] and names(sam, "change") == ["Ada"]


def test_criteria_on_tags_matches_through_a_subquery(private_people, admin_user, user_in, roles):
    # given
    rita, mo = user_in("sales-rep", "rita"), user_in("marketing", "mo")
    services.sharing_rule_save(actor=admin_user, name="Newsletter", object_type="people.person",
                               owner_team=None, criteria={"tags__name": ["newsletter", "vip"]},
                               target_role=roles["marketing"], target_team=None, access=Access.READ)
    testing.make_person(actor=rita, given_name="Ada", tags=["newsletter", "vip"])
    testing.make_person(actor=rita, given_name="Bea", tags=["other"])
    # when / then: no duplicate rows although Ada matches twice
    assert names(mo) == ["Ada"]


def test_rule_on_a_field_rules_may_not_use_is_refused(admin_user, roles):
    with pytest.raises(services.DomainError) as err:
        services.sharing_rule_save(actor=admin_user, name="Bad", object_type="people.person", owner_team=None,
                                   criteria={"owner__password": "x"}, target_role=roles["marketing"],
                                   target_team=None, access=Access.READ)
    assert "criteria" in err.value.field_errors


def test_manual_share_with_user_team_and_role(private_people, admin_user, user_in, roles):
    # given
    rita, sam, fran, mo = (user_in("sales-rep", "rita"), user_in("sales-rep", "sam"),
                           user_in("service-agent", "fran"), user_in("marketing", "mo"))
    team = services.team_save(actor=admin_user, name="Helpers", member_ids=[fran.pk])
    ada = testing.make_person(actor=rita, given_name="Ada")
    # when
    services.record_share(actor=rita, record=ada, user=sam, access=Access.READ_WRITE)
    services.record_share(actor=rita, record=ada, team=team, access=Access.READ)
    services.record_share(actor=rita, record=ada, role=roles["marketing"], access=Access.READ)
    # then
    assert names(sam, "change") == ["Ada"]
    assert names(fran) == ["Ada"] and names(fran, "change") == []
    assert names(mo) == ["Ada"]


def test_only_someone_who_may_change_a_record_may_share_it(private_people, user_in):
    rita, sam = user_in("sales-rep", "rita"), user_in("sales-rep", "sam")
    ada = testing.make_person(actor=rita, given_name="Ada")
    with pytest.raises(services.NotAllowed):
        services.record_share(actor=sam, record=ada, user=sam, access=Access.READ)


def test_manager_sees_what_their_reports_see(private_people, admin_user, user_in, roles):
    # given: boss ← lead ← rita (two levels)
    boss, lead, rita = user_in("sales-manager", "boss"), user_in("sales-manager", "lead"), user_in("sales-rep", "rita")
    services.user_access_update(actor=admin_user, user=lead, role=roles["sales-manager"], manager=boss,
                                team_ids=[], allowed_networks=[])
    services.user_access_update(actor=admin_user, user=rita, role=roles["sales-rep"], manager=lead,
                                team_ids=[], allowed_networks=[])
    testing.make_person(actor=rita, given_name="Ada")
    forget(boss)
    # when / then
    assert names(boss) == ["Ada"] and names(boss, "change") == ["Ada"]
    assert names(rita) == ["Ada"]


def test_manager_cycles_are_refused(admin_user, user_in, roles):
    a, b = user_in("sales-manager", "a"), user_in("sales-rep", "b")
    services.user_access_update(actor=admin_user, user=b, role=roles["sales-rep"], manager=a, team_ids=[],
                                allowed_networks=[])
    with pytest.raises(services.DomainError) as err:
        services.user_access_update(actor=admin_user, user=a, role=roles["sales-manager"], manager=b,
                                    team_ids=[], allowed_networks=[])
    assert "manager" in err.value.field_errors


def test_role_without_the_permission_sees_nothing(user_in):
    # given: the Auditor role has no permission on people
    rita, auditor = user_in("sales-rep", "rita"), user_in("auditor", "aud")
    testing.make_person(actor=rita, given_name="Ada")
    # when / then
    assert names(auditor) == []
    assert list(Organisation.objects.visible_to(auditor)) == []


def test_front_desk_may_not_delete_and_marketing_may_not_change(user_in):
    desk, mo = user_in("front-desk", "desk"), user_in("marketing", "mo")
    testing.make_person(actor=desk, given_name="Ada")
    assert names(desk, "delete") == []
    assert names(mo, "change") == [] and names(mo) == ["Ada"]


def test_administrators_and_superusers_see_everything(private_people, admin_user, user_in):
    rita, boss = user_in("sales-rep", "rita"), user_in("administrator", "root2")
    testing.make_person(actor=rita, given_name="Ada")
    assert names(admin_user, "delete") == ["Ada"] and names(boss, "change") == ["Ada"]


def test_anonymous_and_inactive_users_see_nothing(user_in, django_user_model):
    from django.contrib.auth.models import AnonymousUser

    rita = user_in("sales-rep", "rita")
    testing.make_person(actor=rita, given_name="Ada")
    rita.is_active = False
    assert names(rita) == [] and names(AnonymousUser()) == [] and names(None) == []


def test_users_without_a_role_get_the_default_role(staff_user, user_in):
    rita = user_in("sales-rep", "rita")
    testing.make_person(actor=rita, given_name="Ada")
    assert names(staff_user) == ["Ada"] and names(staff_user, "change") == []


def test_can_answers_for_one_record(private_people, user_in):
    rita, sam = user_in("sales-rep", "rita"), user_in("sales-rep", "sam")
    ada = testing.make_person(actor=rita, given_name="Ada")
    assert can(rita, ada, "update") and not can(sam, ada, "read")


def test_visibility_is_a_constant_number_of_queries(private_people, admin_user, user_in, roles):
    # given: rules, shares and a hierarchy in play
    rita, sam = user_in("sales-rep", "rita"), user_in("sales-rep", "sam")
    team = services.team_save(actor=admin_user, name="T", member_ids=[rita.pk, sam.pk])
    services.sharing_rule_save(actor=admin_user, name="R", object_type="people.person", owner_team=team,
                               criteria={"country": "GB"}, target_role=roles["sales-rep"], target_team=None,
                               access=Access.READ)
    testing.make_person(actor=sam, given_name="P0", country="GB")

    def count() -> int:
        forget(rita)
        with CaptureQueriesContext(connection) as queries:
            list(Person.objects.visible_to(rita))
        return len(queries)

    count()  # the first request after the settings above loads the process's sharing configuration
    few = count()
    for i in range(1, 12):
        person = testing.make_person(actor=sam, given_name=f"P{i}", country="GB" if i % 2 else "FR")
        if i % 3 == 0:
            services.record_share(actor=sam, record=person, user=rita, access=Access.READ)
    # when / then
    assert count() == few
    # the GB rule shows P0 and the odd ones; the manual share adds P6 (FR)
    assert names(rita) == sorted(["P0", "P1", "P3", "P5", "P7", "P9", "P11", "P6"])
