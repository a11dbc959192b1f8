"""The staff UI's own assets are found by the static files finders (so `make run` and
collectstatic serve them), not only by the browser tests."""

import pytest
from django.contrib.staticfiles import finders


@pytest.mark.parametrize("asset", ["rapport/app.css", "rapport/app.js", "vendor/htmx.min.js"])
def test_shell_assets_are_found(asset: str) -> None:
    assert finders.find(asset), f"{asset} is not found by STATICFILES_FINDERS"


def test_shell_stylesheet_is_served(client) -> None:
    from django.templatetags.static import static

    response = client.get(static("rapport/app.css"))
    assert response.status_code == 200
    assert b".field" in b"".join(response.streaming_content if response.streaming else [response.content])
