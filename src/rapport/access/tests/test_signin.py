"""S4 — sign-in restrictions: lock-out, allowed networks (IPv4/IPv6), MFA, idle sessions,
security headers."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from rapport.access import services
from rapport.access.middleware import IDLE_KEY
from rapport.access.models import AuditEntry
from rapport.core.testing import PASSWORD, token_client

LOGIN = "/login/"


def sign_in(client, username, password=PASSWORD, ip="127.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


# ---------------------------------------------------------------------------- lock-out


def test_lockout_after_repeated_failures_per_user_and_address(client, staff_user, settings):
    # given: five wrong passwords from one address
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "staff", "wrong-password", ip="198.51.100.7").status_code == 200
    locked = sign_in(client, "staff", "wrong-password", ip="198.51.100.7")
    # when: the right password from the same address
    still_locked = sign_in(client, "staff", ip="198.51.100.7")
    # then
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.content.decode()
    assert still_locked.status_code == 429 and not signed_in(client)
    # another address is not locked out (no denial of service by a stranger)
    assert sign_in(client, "staff", ip="198.51.100.8").status_code == 302 and signed_in(client)


# ------------------------------------------------------------------------ IP restriction


@pytest.fixture
def office_only(admin_user, roles):
    services.role_save(actor=admin_user, role=roles["sales-rep"], name="Sales rep",
                       permissions=roles["sales-rep"].permissions, requires_reason=True,
                       allowed_networks=["10.0.0.0/8", "2001:db8::/32"])
    return roles["sales-rep"]


@pytest.mark.parametrize("ip, allowed", [
    ("10.1.2.3", True), ("192.0.2.1", False), ("2001:db8::5", True), ("2001:db9::1", False),
    ("::ffff:10.9.9.9", True),
])
def test_sign_in_only_from_allowed_networks(client, user_in, office_only, ip, allowed):
    rita = user_in("sales-rep", "rita")
    response = sign_in(client, rita.username, ip=ip)
    assert signed_in(client) is allowed
    if not allowed:
        assert response.status_code == 200  # the sign-in form again
        assert AuditEntry.objects.filter(action="sign_in_refused", actor_name="rita").exists()


def test_every_request_checks_the_address(client, user_in, office_only):
    rita = user_in("sales-rep", "rita")
    sign_in(client, rita.username, ip="10.1.2.3")
    assert client.get("/people/", REMOTE_ADDR="10.1.2.3").status_code == 200
    # when: the same session from elsewhere
    refused = client.get("/people/", REMOTE_ADDR="203.0.113.5")
    # then: refused and signed out
    assert refused.status_code == 403 and not signed_in(client)
    api = client.get("/api/v1/me/", REMOTE_ADDR="2001:db9::1")
    assert api.status_code in (401, 403)


def test_session_api_calls_are_checked_too(client, user_in, office_only):
    rita = user_in("sales-rep", "rita")
    sign_in(client, rita.username, ip="2001:db8::1")
    assert client.get("/api/v1/me/", REMOTE_ADDR="2001:db8::1").status_code == 200
    refused = client.get("/api/v1/me/", REMOTE_ADDR="192.0.2.1")
    assert refused.status_code == 403 and refused["Content-Type"] == "application/problem+json"


def test_token_calls_check_the_address(user_in, office_only):
    api = token_client(user_in("sales-rep", "rita"), ["read"])
    assert api.get("/api/v1/me/", REMOTE_ADDR="10.0.0.1").status_code == 200
    assert api.get("/api/v1/me/", REMOTE_ADDR="192.0.2.1").status_code == 403
    assert api.get("/api/v1/me/", REMOTE_ADDR="2001:db9::1").status_code == 403


def test_user_ranges_apply_on_top_of_the_role(client, admin_user, user_in, office_only, roles):
    rita = user_in("sales-rep", "rita")
    services.user_access_update(actor=admin_user, user=rita, role=roles["sales-rep"], manager=None, team_ids=[],
                                allowed_networks=["10.5.0.0/16"])
    sign_in(client, "rita", ip="10.1.2.3")
    assert not signed_in(client)
    sign_in(client, "rita", ip="10.5.1.1")
    assert signed_in(client)


def test_bad_ranges_are_refused_with_a_field_error(admin_user, roles):
    with pytest.raises(services.DomainError) as err:
        services.role_save(actor=admin_user, role=roles["marketing"], name="Marketing", permissions={},
                           allowed_networks=["10.0.0.0/33"])
    assert "allowed_networks" in err.value.field_errors


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(client, user_in, office_only, settings):
    rita = user_in("sales-rep", "rita")
    sign_in(client, rita.username, ip="10.1.2.3")
    # an outsider claiming an office address in a header gets nowhere
    assert client.get("/people/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 403
    settings.RAPPORT_TRUSTED_PROXIES = ["192.0.2.0/24"]
    sign_in(client, rita.username, ip="10.1.2.3")
    assert client.get("/people/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 200


# ---------------------------------------------------------------------------------- MFA


@pytest.fixture
def mfa_role(admin_user, roles):
    role = roles["sales-manager"]
    services.role_save(actor=admin_user, role=role, name=role.name, permissions=role.permissions, requires_mfa=True)
    return role


def code_for(device: TOTPDevice, offset: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset):06d}"


def test_role_requiring_mfa_must_enrol_then_verify_each_sign_in(client, user_in, mfa_role):
    # given
    boss = user_in("sales-manager", "boss")
    sign_in(client, "boss")
    # when: any page
    first = client.get("/people/")
    # then: sent to enrolment, the API says so too
    assert first.status_code == 302 and first["Location"].startswith(reverse("access:mfa-setup"))
    assert client.get("/api/v1/me/").status_code == 403
    # when: enrolling with the app's code
    page = client.get(reverse("access:mfa-setup"))
    assert page.status_code == 200 and client.get(reverse("access:mfa-qr"))["Content-Type"] == "image/svg+xml"
    device = TOTPDevice.objects.get(user=boss, confirmed=False)
    done = client.post(reverse("access:mfa-setup"), {"token": code_for(device)})
    # then: recovery codes shown once, session verified
    assert done.status_code == 200 and StaticToken.objects.filter(device__user=boss).count() == 10
    assert client.get("/people/").status_code == 200
    # when: next sign-in
    client.logout()
    sign_in(client, "boss")
    assert client.get("/people/")["Location"].startswith(reverse("access:mfa-verify"))
    # the second step is not signed in yet: a page like the sign-in page, no navigation or search
    step = client.get(reverse("access:mfa-verify")).content.decode()
    assert "Two-step sign-in" in step and 'action="/logout/"' in step
    assert 'id="sidenav"' not in step and 'role="search"' not in step and "Sign out</button>" in step
    assert client.post(reverse("access:mfa-verify"), {"token": "12345"}).status_code == 400
    # (a failure throttles the device for a moment, as django-otp does; let that pass)
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0,
                                                   throttling_failure_timestamp=None)
    device.refresh_from_db()
    ok = client.post(reverse("access:mfa-verify") + "?next=/people/", {"token": code_for(device, offset=1)})
    # then
    assert ok.status_code == 302 and ok["Location"] == "/people/"
    assert client.get("/people/").status_code == 200
    assert AuditEntry.objects.filter(action="mfa_verified", actor_name="boss").exists()


def test_recovery_code_works_once(client, user_in):
    from rapport.access import mfa

    rep = user_in("sales-rep", "rep")
    device = TOTPDevice.objects.create(user=rep, name="app", confirmed=True)
    codes = mfa.regenerate_recovery_codes(user=rep)
    assert device.confirmed
    sign_in(client, "rep")
    assert client.get("/people/").status_code == 302  # enrolled voluntarily: verification due
    assert client.post(reverse("access:mfa-verify"), {"token": codes[0]}).status_code == 302
    assert client.get("/people/").status_code == 200
    client.logout()
    sign_in(client, "rep")
    assert client.post(reverse("access:mfa-verify"), {"token": codes[0]}).status_code == 400


def test_a_recovery_code_does_not_pause_the_authenticator(client, user_in):
    from rapport.access import mfa

    # given: found by the MFA browser journey on an idle machine — a used-up recovery code was
    # tried against the authenticator too, which paused it, so the page said "wait" instead
    rep = user_in("sales-rep", "rep")
    device = TOTPDevice.objects.create(user=rep, name="app", confirmed=True)
    codes = mfa.regenerate_recovery_codes(user=rep)
    sign_in(client, "rep")
    # when: a recovery code is used, then used again
    assert client.post(reverse("access:mfa-verify"), {"token": codes[0]}).status_code == 302
    client.logout()
    sign_in(client, "rep")
    again = client.post(reverse("access:mfa-verify"), {"token": codes[0]})
    # then: refused as not right, and the authenticator was never counted as failing
    assert again.status_code == 400 and "That code is not right" in again.content.decode()
    device.refresh_from_db()
    assert device.throttling_failure_count == 0 and mfa.wait_seconds(rep) == 0
    # and a right authenticator code still signs in at once
    assert client.post(reverse("access:mfa-verify"), {"token": code_for(device)}).status_code == 302


def test_tokens_are_not_asked_for_a_second_factor(user_in, mfa_role):
    boss = user_in("sales-manager", "boss")
    assert token_client(boss, ["read"]).get("/api/v1/me/").status_code == 200


def test_admin_can_reset_a_lost_device(client, admin_user, user_in, mfa_role):
    boss = user_in("sales-manager", "boss")
    TOTPDevice.objects.create(user=boss, name="app", confirmed=True)
    client.force_login(admin_user)
    client.post(reverse("access:user-edit", kwargs={"pk": boss.pk}), {"reset_mfa": "1"})
    assert not TOTPDevice.objects.filter(user=boss).exists()
    assert AuditEntry.objects.filter(action="mfa_reset").exists()


# ---------------------------------------------------------------- sessions and headers


def test_idle_sessions_expire(client, staff_user, settings):
    settings.RAPPORT_SESSION_IDLE = 60
    sign_in(client, "staff")
    assert client.get("/people/").status_code == 200
    session = client.session
    session[IDLE_KEY] = int(time.time()) - 61
    session.save()
    response = client.get("/people/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not signed_in(client)


def test_session_and_cookie_settings(settings):
    assert settings.SESSION_COOKIE_HTTPONLY and settings.CSRF_COOKIE_HTTPONLY
    assert settings.SESSION_COOKIE_SAMESITE == "Lax" and settings.SESSION_COOKIE_AGE <= 12 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE


def test_security_headers_and_strict_csp(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/people/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def test_pages_have_no_inline_script_or_style(client, staff_user, admin_user):
    """The strict CSP would block them: every page we render keeps to external files."""
    import re

    client.force_login(admin_user)
    for path in ("/", "/people/", reverse("access:settings"), reverse("access:sharing"),
                 reverse("access:audit-search"), reverse("access:account-security")):
        body = client.get(path).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), path
        assert "<style" not in body and " style=" not in body, path
        assert not re.search(r"\son[a-z]+=", body), path
