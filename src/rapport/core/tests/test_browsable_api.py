"""Every API endpoint without path parameters renders in the browsable API (HTML) for a
signed-in administrator: a list view without a queryset made DRF's filter form answer 500."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver


def _parameter_free_api_paths() -> list[str]:
    found: list[str] = []

    def walk(patterns, prefix: str) -> None:  # type: ignore[no-untyped-def]
        for entry in patterns:
            route = str(entry.pattern)
            if "<" in route or "(?P" in route:
                continue
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + route)
            elif isinstance(entry, URLPattern):
                found.append("/" + prefix + route)

    walk(get_resolver().url_patterns, "")
    return sorted(path for path in found if path.startswith("/api/v1/") and not path.endswith("$"))


API_PATHS = _parameter_free_api_paths()


def test_the_walk_finds_the_list_endpoints() -> None:
    assert {"/api/v1/people/", "/api/v1/organisations/", "/api/v1/interactions/"} <= set(API_PATHS)


@pytest.mark.django_db
@pytest.mark.parametrize("path", API_PATHS)
def test_browsable_page_renders(path: str, admin_user) -> None:  # type: ignore[no-untyped-def]
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.get(path, HTTP_ACCEPT="text/html")
    assert response.status_code < 500, (path, response.status_code)
    if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
        assert b"<html" in response.content.lower()
