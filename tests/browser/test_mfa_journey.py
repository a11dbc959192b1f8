"""S4 in Chromium: a sales rep whose role requires two-step sign-in signs in, is sent to
enrolment, scans (here: reads) the key, confirms with a TOTP code, keeps the recovery codes;
then signs in again with a fresh code, and once more with a recovery code. A wrong code is
refused with a message, and a right code typed straight after it is told to wait. Screenshots: mfa-setup, mfa-recovery-codes, mfa-verify-error, mfa-home.
"""

from __future__ import annotations

import re
from base64 import b32decode

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from rapport.access.models import AuditEntry, Role
from rapport.access.policy import access_changed
from rapport.core import testing

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rita(db):
    Role.objects.filter(key="sales-rep").update(requires_mfa=True)
    access_changed()
    return testing.make_user("rita", role=Role.objects.get(key="sales-rep"))


def sign_in(page, username: str) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", testing.PASSWORD)
    page.click("button[type=submit]")


def code_for(secret: str, *, drift: int = 0) -> str:
    """The code an authenticator app shows for this key (``drift`` steps of 30 s later)."""
    key = b32decode(secret.replace(" ", ""))
    return str(totp(key, step=30, t0=0, digits=6, drift=drift)).zfill(6)


def test_enrol_then_sign_in_with_a_code_and_with_a_recovery_code(page, screenshot, rita):
    # given: the role requires MFA, so signing in leads to enrolment
    sign_in(page, "rita")
    page.wait_for_url(re.compile(r"/mfa/setup/"))
    assert page.locator("img[data-mfa-qr]").evaluate("img => img.complete && img.naturalWidth > 0")
    secret = page.locator("[data-mfa-secret]").inner_text().strip()
    screenshot("mfa-setup")
    # the rest of the app stays closed until enrolment is done
    page.goto("/people/")
    page.wait_for_url(re.compile(r"/mfa/setup/"))
    secret = page.locator("[data-mfa-secret]").inner_text().strip()

    # when: a wrong code, then the one the app shows
    page.fill("input[name=token]", "000000" if code_for(secret) != "000000" else "111111")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    # straight after a wrong code even the right one is paused (django-otp throttling); the
    # page says so instead of calling it wrong
    page.fill("input[name=token]", code_for(secret))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Codes are paused after a wrong one")).to_be_visible()
    page.wait_for_timeout(1500)
    page.fill("input[name=token]", code_for(secret))
    page.get_by_role("button", name="Confirm").click()

    # then: recovery codes are shown once and the device is confirmed
    expect(page.locator("[data-recovery-codes] code").first).to_be_visible()
    codes = page.locator("[data-recovery-codes] code").all_inner_texts()
    assert len(codes) == 10
    screenshot("mfa-recovery-codes")
    assert TOTPDevice.objects.get(user=rita).confirmed
    page.get_by_role("link", name="Continue").click()
    page.wait_for_url(lambda url: "/mfa/" not in url)

    # when: signing in again asks for the second step; a wrong code is refused
    page.context.clear_cookies()
    sign_in(page, "rita")
    page.wait_for_url(re.compile(r"/mfa/verify/"))
    page.fill("input[name=token]", "123456" if code_for(secret, drift=1) != "123456" else "654321")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    screenshot("mfa-verify-error")
    # the next time step's code (the one used at enrolment cannot be replayed)
    page.wait_for_timeout(1500)
    page.fill("input[name=token]", code_for(secret, drift=1))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(lambda url: "/mfa/" not in url and "/login" not in url)
    page.goto("/people/")
    assert "/people/" in page.url
    screenshot("mfa-home")

    # and a recovery code works once
    page.context.clear_cookies()
    sign_in(page, "rita")
    page.wait_for_url(re.compile(r"/mfa/verify/"))
    page.fill("input[name=token]", codes[0])
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(lambda url: "/mfa/" not in url and "/login" not in url)
    page.context.clear_cookies()
    sign_in(page, "rita")
    page.wait_for_url(re.compile(r"/mfa/verify/"))
    page.fill("input[name=token]", codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()

    # the trail has the enrolment, the verifications and the failures
    actions = list(AuditEntry.objects.filter(actor_id=rita.pk).values_list("action", flat=True))
    assert actions.count("mfa_enrolled") == 1
    assert actions.count("mfa_verified") == 2
    assert actions.count("mfa_failed") == 2
