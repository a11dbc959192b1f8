"""WSGI applications for ``bench/api.py --floor``: what a request costs before Rapport's own work.

- ``constant``: gunicorn alone, a fixed JSON answer (no Django);
- ``application``: Rapport's WSGI application (every middleware, settings as served) with two
  extra routes: ``/floor/django/`` a plain Django view returning a constant, and
  ``/api/v1/floor/`` a DRF ``APIView`` with the API's default authentication (the token, read
  by its prepared statement), permissions (scope, role of ``people.person``) and throttles,
  rendering a constant — the least an authenticated API request can cost here.

Served by the same gunicorn command as ``rapport run`` (2 workers × 4 threads).
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")

BODY = b'{"ok":true}'


def constant(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ.get("CONTENT_LENGTH"):
        environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
    status = "201 Created" if environ["REQUEST_METHOD"] == "POST" else "200 OK"
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]


def floor_views() -> tuple[Any, Any]:
    """The floor's two views, each answering a constant: a DRF ``APIView`` with the API's defaults
    (as every Rapport API view: token, permissions of ``people.person``, throttles; a POST's body
    parsed) and a plain Django view. Also ``bench/api_costs.py``'s."""
    from django.http import JsonResponse
    from rest_framework.response import Response
    from rest_framework.views import APIView

    class Floor(APIView):
        object_type = "people.person"

        def get(self, request: Any) -> Response:
            return Response({"ok": True})

        def post(self, request: Any) -> Response:
            request.data  # noqa: B018 - parsed, as a create's body is
            return Response({"ok": True}, status=201)

    def plain(request: Any) -> JsonResponse:
        return JsonResponse({"ok": True})

    return Floor, plain


def _routes() -> Any:
    from django.urls import path

    import rapport.urls

    floor, plain = floor_views()
    rapport.urls.urlpatterns[:0] = [path("api/v1/floor/", floor.as_view()), path("floor/django/", plain)]


from rapport.wsgi import application  # noqa: E402 - Django is set up first

_routes()
__all__ = ["application", "constant"]
