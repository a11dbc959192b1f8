"""What each layer of a token-signed API request costs, by difference: the real WSGI application
in this process, the same request shape with one more layer each time.

    .venv/bin/python -u bench/api_costs.py [--postgres] [--size 500] [--rounds 8] [--requests 400]

Answers, cheapest first (each GET unless named; ``Authorization: Token …`` on all of them):

- ``harness``: a WSGI callable returning a constant (the loop and the environ, no Django);
- ``django, no middleware``: Django's handler without ``settings.MIDDLEWARE``, a plain view;
- ``django``: the same view behind every middleware (a token call: decision 0017's path);
- ``drf, nothing``: a DRF ``APIView`` without authentication, permissions or throttles;
- ``drf, token sign-in``: the API's authentication classes (the token's prepared statement);
- ``drf, all checks``: and the API's permissions and throttles (rates ``off`` as in bench/api.py);
- ``drf, all checks, POST body``: and a create's JSON body parsed (``request.data``);
- ``create`` and ``get``: the people API's own views (``POST /api/v1/people/``, ``GET …/{id}/``).

Variants run in turn, ``--rounds`` times ``--requests`` each, so a slow minute of the shared machine
falls on all of them; each figure is the median over rounds of CPU per request: this process plus,
on PostgreSQL, its backend (``/proc``, 10 ms ticks: keep ``--requests`` ≥ 400). The difference to the
row above is what that layer adds. Not a throughput benchmark: bench/api.py measures the server.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api as bench_api  # the same data and bodies as bench/api.py
from _common import boot
from api_profile import _backend_pid, _cpu  # the backend's CPU, as api_profile.py reads it


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    if "DATABASE_URL" in os.environ or not args.postgres:
        import tempfile

        os.environ.setdefault("RAPPORT_VAR_DIR", tempfile.mkdtemp(prefix="rapport-costs-var-"))
    # As bench/api.py's server: no rate limits, one database connection (and backend) all along.
    os.environ.update({"RAPPORT_RATE_TOKEN": "off", "RAPPORT_RATE_IP": "off", "RAPPORT_CONN_MAX_AGE": "3600"})
    vendor = boot(args)
    from django.db import connection

    from rapport.access.models import User
    from rapport.access.services import token_create

    handlers = _handlers()
    user = User.objects.create_superuser("bench", "bench@example.com", "x")
    _, key = token_create(user=user, name="bench", scopes=["read", "write"])
    bench_api._generate(args.size, offset=0)
    connection.close()
    full, bare = handlers

    counter = iter(range(10**9))
    created: list[str] = []

    def wsgi(handler: Any, method: str, path: str, body: bytes = b"", expect: str = "200") -> bytes:
        status: list[str] = []
        out = b"".join(handler(_environ(method, path, key, body), lambda s, h, exc=None: status.append(s)))
        assert status[0].startswith(expect), (path, status, out[:300])
        return out

    # Made before the timing: a body is a few µs of json.dumps and uuid4, not the server's work.
    bodies = iter([json.dumps(bench_api._create_body(i % 800_000)).encode()
                   for i in range(2 * (30 + args.rounds * args.requests))])

    def create_body() -> bytes:
        return next(bodies)

    def harness(environ: dict, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "11")])
        return [b'{"ok":true}']

    variants = {
        "harness": lambda: wsgi(harness, "GET", "/api/v1/cost/plain/"),
        "django, no middleware": lambda: wsgi(bare, "GET", "/api/v1/cost/plain/"),
        "django": lambda: wsgi(full, "GET", "/api/v1/cost/plain/"),
        "drf, nothing": lambda: wsgi(full, "GET", "/api/v1/cost/drf/"),
        "drf, token sign-in": lambda: wsgi(full, "GET", "/api/v1/cost/token/"),
        "drf, all checks": lambda: wsgi(full, "GET", "/api/v1/cost/checked/"),
        "drf, all checks, POST body": lambda: wsgi(full, "POST", "/api/v1/cost/checked/", create_body(), "201"),
        "create": lambda: created.append(json.loads(wsgi(full, "POST", "/api/v1/people/", create_body(), "201"))["id"]),
        "get": lambda: wsgi(full, "GET", f"/api/v1/people/{created[next(counter) % len(created)]}/"),
    }
    for fn in variants.values():  # warm: connections, caches, prepared statements
        for _ in range(30):
            fn()
    backend = _backend_pid(connection)
    service = _ServiceMeter()  # the create's service call, timed inside the request (this process only)
    spent: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    in_service: list[float] = []
    wall0 = time.perf_counter()
    for _ in range(args.rounds):
        for name, fn in variants.items():
            service.spent = 0.0
            cpu0, be0 = time.process_time(), _cpu(backend)
            for _ in range(args.requests):
                fn()
            per = 1e6 / args.requests
            spent[name].append(((time.process_time() - cpu0) * per, (_cpu(backend) - be0) * per))
            if name == "create":
                in_service.append(service.spent * per)
    print(f"{vendor}: {args.rounds} rounds × {args.requests} requests per answer, "
          f"{time.perf_counter() - wall0:.1f} s wall; CPU µs per request, median over rounds: this process, "
          "its backend, both (min–max of both), and what the row adds to the one named")
    print(f"{'answer':<30}{'process':>8}{'backend':>8}{'both':>8}{'min':>8}{'max':>8}{'adds':>8}  to")
    names = list(variants)
    above = {**{name: names[i - 1] for i, name in enumerate(names) if i}, "get": "drf, all checks",
             "create": "drf, all checks, POST body"}

    def both(name: str) -> float:
        return statistics.median(p + b for p, b in spent[name])

    for name, figures in spent.items():
        process, database = statistics.median(p for p, _ in figures), statistics.median(b for _, b in figures)
        totals = [p + b for p, b in figures]
        adds = f"{both(name) - both(above[name]):>8.0f}  {above[name]}" if name in above else ""
        print(f"{name:<30}{process:>8.0f}{database:>8.0f}{both(name):>8.0f}{min(totals):>8.0f}{max(totals):>8.0f}{adds}")
    view = (statistics.median(p for p, _ in spent["create"]) - statistics.median(p for p, _ in spent[above["create"]])
            - statistics.median(in_service))
    print(f"create: people.services.person_create_checked {statistics.median(in_service):.0f} µs of this process's CPU "
          f"per create; the view around it (input, output, ETag, headers) {view:.0f} µs")


class _ServiceMeter:
    """Wraps ``person_create_checked`` where the view calls it, adding its CPU seconds to ``spent``."""

    def __init__(self) -> None:
        from rapport.people.api import views

        self.spent, inner = 0.0, views.services.person_create_checked

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.spent += time.process_time() - start

        views.services = _With(views.services, person_create_checked=timed)


class _With:
    """A module with some attributes replaced (the view reads ``services.<name>`` at call time)."""

    def __init__(self, module: Any, **replaced: Any) -> None:
        self._module, self._replaced = module, replaced

    def __getattr__(self, name: str) -> Any:
        return self._replaced[name] if name in self._replaced else getattr(self._module, name)


def _handlers() -> tuple[Any, Any]:
    """Rapport's WSGI application with the cost routes, and the same without middleware."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings
    from django.urls import path
    from rest_framework.response import Response
    from rest_framework.settings import api_settings
    from rest_framework.views import APIView

    import rapport.urls
    from rapport.wsgi import application

    class Nothing(APIView):
        authentication_classes, permission_classes, throttle_classes = (), (), ()

        def get(self, request: Any) -> Response:
            return Response({"ok": True})

    class Token(Nothing):
        authentication_classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES

    # the API's defaults, as every Rapport API view, and a plain Django view (bench/api.py --floor's);
    # importing the floor module adds its own routes too, after which the cost routes go first
    from _api_floor import floor_views

    checked, plain = floor_views()
    rapport.urls.urlpatterns[:0] = [
        path("api/v1/cost/plain/", plain), path("api/v1/cost/drf/", Nothing.as_view()),
        path("api/v1/cost/token/", Token.as_view()), path("api/v1/cost/checked/", checked.as_view())]
    with override_settings(MIDDLEWARE=[]):
        bare = WSGIHandler()
    return application, bare


def _environ(method: str, path: str, key: str, body: bytes) -> dict:
    return {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "HTTP_AUTHORIZATION": f"Token {key}",
        "HTTP_ACCEPT": "application/json", "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.version": (1, 0),
    }


if __name__ == "__main__":
    main()
