"""S1–S4 — the security settings screens: only administrators, every change audited."""

from __future__ import annotations

import pytest
from django.urls import reverse

from rapport.access.models import AuditEntry, FieldRule, Role, SharingDefault, SharingRule, Team
from rapport.access.permissions import has_permission

PAGES = ["access:settings", "access:role-create", "access:team-create", "access:user-list", "access:sharing",
         "access:rule-create"]


@pytest.mark.parametrize("name", PAGES)
def test_settings_pages_for_administrators_only(client, admin_user, user_in, name):
    client.force_login(admin_user)
    assert client.get(reverse(name)).status_code == 200
    client.force_login(user_in("sales-manager", "boss"))
    assert client.get(reverse(name)).status_code == 403


def test_create_a_role_with_permissions_mfa_and_networks(client, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("access:role-create"), {
        "name": "Bookkeeper", "description": "Invoices", "requires_mfa": "on",
        "allowed_networks": "192.0.2.0/24\n2001:db8::/32",
        "perm__people.person__read": "on", "perm__people.person__export": "on",
    })
    assert response.status_code == 302
    role = Role.objects.get(name="Bookkeeper")
    assert role.permissions == {"people.person": ["read", "export"]}
    assert role.requires_mfa and role.allowed_networks == ["192.0.2.0/24", "2001:db8::/32"]
    entry = AuditEntry.objects.get(action="permission_change", object_type="access.role")
    assert entry.actor_name == "admin"


def test_role_form_shows_field_errors(client, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("access:role-create"), {"name": "X", "allowed_networks": "not-a-network"})
    assert response.status_code == 400 and "not an IPv4 or IPv6" in response.content.decode()


def test_field_security_page_saves_levels(client, admin_user, roles):
    client.force_login(admin_user)
    url = reverse("access:role-fields", kwargs={"pk": roles["marketing"].pk})
    page = client.get(url)
    assert page.status_code == 200 and "Income band" in page.content.decode()
    data = {f"people-Person-{name}": "write" for name in ("given_name", "family_name")}
    data["people-Person-income_band"] = "hidden"
    data["people-Person-notes"] = "read"
    response = client.post(url, data)
    assert response.status_code == 302
    rules = dict(FieldRule.objects.filter(role=roles["marketing"], model_label="people.Person")
                 .values_list("field", "level"))
    assert rules["income_band"] == "hidden" and rules["notes"] == "read"


def test_team_and_user_screens(client, admin_user, user_in, roles):
    rita, boss = user_in("sales-rep", "rita"), user_in("sales-manager", "boss")
    client.force_login(admin_user)
    assert client.post(reverse("access:team-create"), {"name": "North", "members": [rita.pk]}).status_code == 302
    north = Team.objects.get(name="North")
    response = client.post(reverse("access:user-edit", kwargs={"pk": rita.pk}), {
        "role": roles["service-agent"].pk, "manager": boss.pk, "teams": [north.pk],
        "allowed_networks": "10.0.0.0/8", "is_active": "on"})
    assert response.status_code == 302
    rita.refresh_from_db()
    assert rita.role == roles["service-agent"] and rita.manager == boss and rita.allowed_networks == ["10.0.0.0/8"]
    assert client.get(reverse("access:user-list")).status_code == 200


def test_sharing_defaults_and_rules_screens(client, admin_user, roles):
    client.force_login(admin_user)
    response = client.post(reverse("access:sharing"), {"people.person": "private", "people.organisation": "read"})
    assert response.status_code == 302
    assert SharingDefault.objects.get(object_type="people.person").access == "private"
    response = client.post(reverse("access:rule-create"), {
        "name": "GB to marketing", "object_type": "people.person", "criteria": "country=GB,IE",
        "target_role": roles["marketing"].pk, "access": "read", "active": "on"})
    assert response.status_code == 302
    rule = SharingRule.objects.get()
    assert rule.criteria == {"country": ["GB", "IE"]} and rule.target_role == roles["marketing"]
    bad = client.post(reverse("access:rule-create"), {
        "name": "Bad", "object_type": "people.person", "criteria": "owner__password=x",
        "target_role": roles["marketing"].pk, "access": "read"})
    assert bad.status_code == 400
    assert "GB to marketing" in client.get(reverse("access:sharing")).content.decode()


def test_last_administrator_role_and_roles_in_use_cannot_be_deleted(client, admin_user, roles, user_in):
    client.force_login(admin_user)
    user_in("marketing", "mo")
    client.post(reverse("access:role-delete", kwargs={"pk": roles["administrator"].pk}))
    client.post(reverse("access:role-delete", kwargs={"pk": roles["marketing"].pk}))
    assert Role.objects.filter(pk__in=[roles["administrator"].pk, roles["marketing"].pk]).count() == 2


def test_seed_roles_match_how_small_businesses_work(roles):
    assert set(roles) == {"administrator", "sales-manager", "sales-rep", "service-agent", "marketing",
                          "front-desk", "auditor"}
    assert roles["sales-rep"].is_default
    desk = roles["front-desk"].permissions["people.person"]
    assert "export" not in desk and "read" in desk
    assert roles["auditor"].permissions == {"access.auditentry": ["read"]}


def test_nav_shows_settings_and_audit_only_to_those_allowed(client, admin_user, user_in):
    client.force_login(admin_user)
    page = client.get("/").content.decode()
    assert reverse("access:settings") in page and reverse("access:audit-search") in page
    rep = user_in("sales-rep", "rep")
    client.force_login(rep)
    page = client.get("/").content.decode()
    assert reverse("access:settings") not in page and reverse("access:audit-search") not in page
    assert not has_permission(rep, "access.settings", "manage")
