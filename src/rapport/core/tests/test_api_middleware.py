"""A1/S7 — token-signed API calls skip the browser-only middleware (decision 0017): they keep the
security headers, a session cookie sent along gives them no authority, and a cookie-signed
API write still needs its CSRF token."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from rapport.core import testing
from rapport.core.api.middleware import JSON_POLICY, signs_in_by_token

pytestmark = pytest.mark.django_db

BODY = {"given_name": "Ada", "family_name": "Lovelace",
        "contact_points": [{"kind": "email", "value": "ada.mw@example.com"}]}


def _security_headers(response) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Permissions-Policy"].startswith("camera=()")
    assert response["X-Request-Id"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_token_call_keeps_the_security_headers_and_gets_a_strict_policy(api_client, method):
    # when
    if method == "get":
        response = api_client.get("/api/v1/people/", HTTP_ACCEPT="application/json")
    else:
        response = api_client.post("/api/v1/people/", BODY, format="json")
    # then
    assert response.status_code == (200 if method == "get" else 201)
    _security_headers(response)
    assert response["Content-Security-Policy"] == JSON_POLICY
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies
    # a problem answer (here a 400) is JSON too
    bad = api_client.post("/api/v1/people/", {"nickname": "x"}, format="json")
    assert bad.status_code == 400 and bad["Content-Type"].startswith("application/problem+json")
    _security_headers(bad)
    assert bad["Content-Security-Policy"] == JSON_POLICY


def test_the_browsable_api_and_browser_pages_keep_the_site_policy(api_client, staff_user):
    html = api_client.get("/api/v1/me/", HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    assert html["Content-Security-Policy"] != JSON_POLICY and "script-src 'self'" in html["Content-Security-Policy"]
    browser = Client()
    browser.force_login(staff_user)
    page = browser.get("/people/")
    assert page.status_code == 200
    assert "script-src 'self'" in page["Content-Security-Policy"]
    _security_headers(page)


def test_a_session_cookie_gives_a_token_call_no_authority(staff_user, admin_user):
    # given: a browser signed in as the administrator, and the staff user's token
    browser = Client()
    browser.force_login(admin_user)
    staff = testing.token_client(staff_user)
    key = staff._credentials["HTTP_AUTHORIZATION"]
    # when: both go along on one request
    me = browser.get("/api/v1/me/", HTTP_AUTHORIZATION=key)
    # then: the token decides who this is
    assert me.status_code == 200 and me.json()["username"] == "staff"
    # a bad token is refused, never replaced by the cookie's user
    refused = browser.get("/api/v1/me/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert refused.status_code == 401
    # and without a token the cookie signs in as before
    assert browser.get("/api/v1/me/").json()["username"] == "admin"


def test_a_cookie_signed_api_write_still_needs_its_csrf_token(admin_user):
    # given: a signed-in browser that enforces CSRF as a real one would be held to
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    # when: a write without the token
    refused = browser.post("/api/v1/people/", BODY, content_type="application/json")
    # then
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    # with the token (from the cookie a page view sets) the same write is accepted
    browser.get("/people/new/")
    secret = browser.cookies[settings.CSRF_COOKIE_NAME].value
    accepted = browser.post("/api/v1/people/", BODY, content_type="application/json", HTTP_X_CSRFTOKEN=secret)
    assert accepted.status_code == 201
    # a cookie-signed answer is a browser's: the site policy
    assert "script-src 'self'" in accepted["Content-Security-Policy"]


@pytest.mark.parametrize(("path", "header", "expected"), [
    ("/api/v1/people/", "Token abc", True),
    ("/api/v1/people/", "bearer abc", True),
    ("/api/v1/people/", "Basic abc", False),
    ("/api/v1/people/", "", False),
    ("/api/docs/", "Token abc", False),
    ("/people/", "Token abc", False),
])
def test_which_requests_sign_in_by_token(rf, path, header, expected):
    request = rf.get(path, HTTP_AUTHORIZATION=header) if header else rf.get(path)
    assert signs_in_by_token(request) is expected
