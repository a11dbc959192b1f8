"""Where one API create (or get) spends its CPU: the real WSGI application, every middleware.

    .venv/bin/python bench/api_profile.py [--size 2000] [--postgres] [--requests 300] [--op create|get|list]
        [--profile 40] [--sample 0]

``--op floor-get`` / ``floor-post`` / ``django`` call the floor routes of ``bench/_api_floor.py``
(a DRF view with the API's token sign-in, permissions and throttles answering a constant, the
POST parsing a create's body; a plain Django view): what every API request costs before its work.

Calls ``rapport.wsgi.application`` directly with pre-built WSGI environs (what gunicorn or
granian hand it, minus the socket), so the figures are the application's own: Django's
handler, the middleware, DRF, authentication, the view, the services and the database.
Prints, per request: the statements sent (counted and grouped by their first words), this
process's CPU and, on PostgreSQL, the backend's CPU (read from ``/proc``), then the cProfile
functions with the most cumulative time over ``--profile`` requests. ``--sample N`` also
samples N more requests statistically (a stack every 0.5 ms of this process's CPU, SIGPROF):
cProfile's per-call cost inflates call-heavy code (Django's plumbing), the sampler's does not,
so its shares (and ms per request) are the ones to compare.

A development tool for docs/performance/api.md, not a benchmark of its own: bench/api.py
measures the server.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api as bench_api  # the same data and bodies as bench/api.py
from _common import boot

FLOOR_ROUTES = {"floor-get": ("GET", "/api/v1/floor/"), "floor-post": ("POST", "/api/v1/floor/"),
                "django": ("GET", "/floor/django/")}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", type=int, default=40)
    parser.add_argument("--op", choices=("create", "get", "list", "floor-get", "floor-post", "django"),
                        default="create")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--sample", type=int, default=0,
                        help="requests sampled statistically (SIGPROF every 0.5 ms of CPU) after the cProfile run")
    parser.add_argument("--explain", action="store_true",
                        help="PostgreSQL: planning and execution time of each statement (EXPLAIN ANALYZE, rolled back)")
    args = parser.parse_args()
    if "DATABASE_URL" in os.environ or not args.postgres:
        import tempfile

        os.environ.setdefault("RAPPORT_VAR_DIR", tempfile.mkdtemp(prefix="rapport-prof-var-"))
    os.environ.update({"RAPPORT_RATE_TOKEN": "off", "RAPPORT_RATE_IP": "off"})
    vendor = boot(args)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rapport.access.models import User
    from rapport.access.services import token_create
    if args.op in FLOOR_ROUTES:
        from _api_floor import application  # Rapport's application with the floor routes added
    else:
        from rapport.wsgi import application

    user = User.objects.create_superuser("bench", "bench@example.com", "x")
    _, key = token_create(user=user, name="bench", scopes=["read", "write"])
    bench_api._generate(args.size, offset=0)
    connection.close()

    created: list[str] = []

    def call(i: int) -> bytes:
        if args.op == "create":
            body = json.dumps(bench_api._create_body(i)).encode()
            environ = _environ("POST", "/api/v1/people/", key, body)
        elif args.op in FLOOR_ROUTES:
            method, path = FLOOR_ROUTES[args.op]
            body = json.dumps(bench_api._create_body(i)).encode() if method == "POST" else b""
            environ = _environ(method, path, key, body)
        elif args.op == "list":  # one page of 100, as bench/api.py's list-100
            environ = _environ("GET", "/api/v1/people/?page_size=100", key, b"")
        else:
            environ = _environ("GET", f"/api/v1/people/{created[i % len(created)]}/", key, b"")
        status: list[str] = []
        out = b"".join(application(environ, lambda s, h, exc=None: status.append(s)))
        assert status[0][:3] in ("200", "201"), (status, out[:300])
        return out

    if args.op == "get":
        for i in range(50):
            args.op = "create"
            created.append(json.loads(call(800_000 + i))["id"])  # +44 7911 9xxxxx is not a valid number
        args.op = "get"
    for i in range(20):  # warm: connections, caches, prepared statements
        call(1_000_000 + i)

    with CaptureQueriesContext(connection) as ctx:
        call(2_000_000)
    kinds = Counter(_kind(q["sql"]) for q in ctx.captured_queries)
    print(f"{vendor}: {args.op}: {len(ctx.captured_queries)} statements per request")
    for q in ctx.captured_queries:
        print(f"   {q['time']:>6} s  {(q['sql'] or '(prepared statement: text not logged)')[:150]}")
    print("   by kind:", dict(kinds))
    if args.explain and vendor == "postgresql":
        _explain(connection, call)

    backend = _backend_pid(connection)
    cpu0, be0, wall0 = time.process_time(), _cpu(backend), time.perf_counter()
    for i in range(args.requests):
        call(3_000_000 + i)
    n = args.requests
    cpu, be, wall = time.process_time() - cpu0, _cpu(backend) - be0, time.perf_counter() - wall0
    print(f"{vendor}: {args.op}: {n} requests: {wall * 1000 / n:.2f} ms wall, {cpu * 1000 / n:.2f} ms CPU "
          f"(this process) + {be * 1000 / n:.2f} ms CPU (database backend) = {(cpu + be) * 1000 / n:.2f} ms "
          f"per request")

    profiler = cProfile.Profile(time.process_time)  # CPU, not waiting for a core
    profiler.enable()
    for i in range(args.profile):
        call(4_000_000 + i)
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    print(f"function calls per request: {stats.total_calls / args.profile:.0f}")  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(args.top)
    print(text.getvalue())
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
    print(text.getvalue())
    if args.sample:
        _sampled(call, args.sample, args.top)


def _sampled(call, requests: int, top: int) -> None:  # type: ignore[no-untyped-def]
    """Where the CPU of ``requests`` calls goes, by stack samples: per function, the share of
    samples it was on the stack (inclusive) and on top (own), with ms per request."""
    import signal

    inclusive: Counter = Counter()
    own: Counter = Counter()

    def sample(signum, frame) -> None:  # type: ignore[no-untyped-def]
        seen = set()
        if frame is not None:
            own[_where(frame.f_code)] += 1
        while frame is not None:
            key = _where(frame.f_code)
            if key not in seen:
                seen.add(key)
                inclusive[key] += 1
            frame = frame.f_back

    signal.signal(signal.SIGPROF, sample)
    cpu0 = time.process_time()
    signal.setitimer(signal.ITIMER_PROF, 0.0005, 0.0005)
    try:
        for i in range(requests):
            call(5_000_000 + i)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
    per_request = (time.process_time() - cpu0) * 1000 / requests
    samples = sum(own.values()) or 1
    print(f"sampled: {requests} requests, {samples} samples, {per_request:.2f} ms CPU per request (this process)")
    for title, counter in (("on the stack", inclusive), ("on top", own)):
        print(f"   {title}:   share   ms/request  function")
        for key, count in counter.most_common(top):
            print(f"   {100 * count / samples:>16.1f} % {count * per_request / samples:>8.3f}  {key}")


def _where(code) -> str:  # type: ignore[no-untyped-def]
    name = code.co_filename.rpartition("site-packages/")[2].rpartition("/src/")[2]
    return f"{name}:{code.co_firstlineno}({code.co_name})"


def _explain(connection, call) -> None:  # type: ignore[no-untyped-def]
    """Each statement of one more request, replayed under EXPLAIN ANALYZE after rolling it back."""
    from django.core import signals
    from django.db import close_old_connections, transaction
    from django.test.utils import CaptureQueriesContext

    # As Django's test client does: a request inside a transaction must not close the connection.
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        call(2_012_345)
        transaction.set_rollback(True)
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)
    print("   EXPLAIN ANALYZE (planning + execution ms, server side):")
    statements = [q["sql"] for q in ctx.captured_queries
                  if q["sql"] and not q["sql"].startswith(("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT"))]
    total = 0.0
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in statements:
            sql = sql.removeprefix("1 times: ")
            if "$1" in sql:  # logged without its values: cannot be replayed
                print(f"   (not replayed)      {sql[:110]}")
                continue
            cursor.execute(f"EXPLAIN (ANALYZE, SUMMARY, FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0][0]
            spent = plan["Planning Time"] + plan["Execution Time"]
            total += spent
            print(f"   {plan['Planning Time']:>7.3f} + {plan['Execution Time']:>7.3f}  {sql[:110]}")
            if plan["Execution Time"] > 1.0:  # worth reading: the plan
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                print("\n".join(f"             {line}" for (line,) in cursor.fetchall()))
        transaction.set_rollback(True)
    print(f"   total {total:.3f} ms")


def _environ(method: str, path: str, key: str, body: bytes) -> dict:
    path, _, query = path.partition("?")
    return {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "HTTP_AUTHORIZATION": f"Token {key}",
        "HTTP_ACCEPT": "application/json", "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.version": (1, 0),
    }


def _kind(sql: str | None) -> str:
    if sql is None:
        return "(prepared statement)"
    words = sql.split()
    head = " ".join(words[:3]).replace('"', "")
    return head[:40]


def _backend_pid(connection) -> int | None:  # type: ignore[no-untyped-def]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
