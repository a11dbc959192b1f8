"""S4 — a user's own allowed networks (no role ranges), IPv4 and IPv6, at sign-in, on every
page and on every API call with a token; and a lock-out that outlasts the right password."""

from __future__ import annotations

import pytest

from rapport.access import services
from rapport.access.models import AuditEntry
from rapport.core.testing import PASSWORD, token_client


@pytest.fixture
def wfh(admin_user, user_in, roles):
    """Sam (service agent, role without ranges) may work from one IPv4 /24 and one IPv6 /48."""
    sam = user_in("service-agent", "sam")
    services.user_access_update(actor=admin_user, user=sam, role=roles["service-agent"], manager=None,
                                team_ids=[], allowed_networks=["198.51.100.0/24", "2001:db8:abcd::/48"])
    sam.refresh_from_db()
    return sam


@pytest.mark.parametrize("inside, outside", [("198.51.100.20", "198.51.101.20"),
                                             ("2001:db8:abcd:12::1", "2001:db8:abce::1")])
def test_user_ranges_at_sign_in_on_pages_and_on_the_api(client, wfh, inside, outside):
    # sign-in from outside is refused and audited, from inside works
    client.post("/login/", {"username": "sam", "password": PASSWORD}, REMOTE_ADDR=outside)
    assert "_auth_user_id" not in client.session
    assert AuditEntry.objects.filter(action="sign_in_refused", actor_name="sam").exists()
    client.post("/login/", {"username": "sam", "password": PASSWORD}, REMOTE_ADDR=inside)
    assert client.get("/people/", REMOTE_ADDR=inside).status_code == 200
    # the same session from outside is refused on the next request
    assert client.get("/people/", REMOTE_ADDR=outside).status_code == 403
    # a token is held to the same ranges on every call
    api = token_client(wfh, ["read"])
    assert api.get("/api/v1/me/", REMOTE_ADDR=inside).status_code == 200
    refused = api.get("/api/v1/people/", REMOTE_ADDR=outside)
    assert refused.status_code == 403 and refused["Content-Type"] == "application/problem+json"


def test_lock_out_holds_even_with_the_right_password_until_cool_off(client, staff_user, settings):
    ip = "203.0.113.77"
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "staff", "password": "nope"}, REMOTE_ADDR=ip)
    for _ in range(2):
        response = client.post("/login/", {"username": "staff", "password": PASSWORD}, REMOTE_ADDR=ip)
        assert response.status_code == 429 and "_auth_user_id" not in client.session


def test_a_right_code_straight_after_a_wrong_one_is_told_to_wait(client, user_in):
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    # given: a user with a confirmed authenticator, signed in with the password
    rita = user_in("sales-rep", "rita")
    device = TOTPDevice.objects.create(user=rita, name="phone", confirmed=True)
    client.post("/login/", {"username": "rita", "password": PASSWORD})
    right = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    wrong = "000000" if right != "000000" else "111111"
    # when
    first = client.post("/mfa/verify/", {"token": wrong}).content.decode()
    second = client.post("/mfa/verify/", {"token": right}).content.decode()
    # then
    assert "That code is not right." in first
    assert "Codes are paused after a wrong one: wait" in second
