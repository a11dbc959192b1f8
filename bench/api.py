"""API throughput (A1): create, get and list-100 against a running server, vs the same in-process.

    .venv/bin/python bench/api.py [--size 20000] [--postgres] [--threads 4] [--requests 1200]
        [--compare OTHER_CHECKOUT/src] [--servers gunicorn:2x4,granian:2x1] [--floor]

``--servers`` lists the server shapes to measure one after the other on the same data
(``server:WORKERSxTHREADS``, served by ``rapport run --web-server … --web-workers …
--web-threads …``; default: what ``rapport run`` starts by default).

The benchmark bulk-inserts ``--size`` people (email + phone each, some with a current job or a
tag), creates an API token with the real token service, starts ``rapport run --no-worker`` on a
free loopback port against its own database (granian, 2 workers × 1 thread, as ``rapport run``
starts it by default), and drives it with ``--threads`` client processes, each on one
HTTP/1.1 keep-alive connection, taking the next request from one shared list (a raw socket
sending requests built before the clock starts:
the load generator shares the cores with the server, so it is kept light, and its own CPU is
printed). Request loops are bounded: ``--requests`` creates and gets, a fifth as many
list-100 pages, split across the clients. Rate limits are switched off for the server (they
would answer 429 long before the goal; their cost is one INSERT … ON CONFLICT statement
per limit per request).

Baseline, in the same run: the same operations done directly through the services and
selectors in this process, one thread (``person_create``, ``person_get`` + audit entry, one
page of ``person_list_for_api`` serialised), so the ratio says what HTTP, auth and the
server add.

On a shared machine the wall clock mostly measures waiting for a core, so the benchmark also
reads the CPU time the work really took from ``/proc``: the server's processes (server
master and workers) and, on PostgreSQL, the server backends serving them; for the baseline,
this process and its backend. ``2 cores/s`` is then what two dedicated cores would sustain:
2 s of CPU per second divided by the CPU one request costs (client excluded, as it would run
elsewhere; PostgreSQL background writers excluded).

Each phase also prints (printed only; nothing above is measured differently) how the server's
own CPU in that phase split between its processes, the whole machine's idle and I/O-wait share
(``/proc/stat``) and the load generator's CPU per request of that phase: with one thread per
worker, a worker serves only the connections it accepted, and when the four connections land
4 + 0 one worker serves everything while the other idles (the rate halves at the same CPU per
request), which the split shows as one process near 100 %.

It also proves list queries do not grow with the data: it counts the queries of one list-100
page (in-process, through the real view, ``CaptureQueriesContext``) at two database sizes.

Goal: ≥ 350 creates/s and ≥ 50 list-100 pages/s on PostgreSQL on 2 cores.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, bench_args, boot, percentiles

GOAL_CREATES = 350
GOAL_LISTS = 50


def main() -> None:
    began = time.perf_counter()
    args = _args()
    if "DATABASE_URL" in os.environ or not args.postgres:
        os.environ.setdefault("RAPPORT_VAR_DIR", tempfile.mkdtemp(prefix="rapport-bench-var-"))
    vendor = boot(args)
    from django.db import connection

    from rapport.access.models import User
    from rapport.access.services import token_create

    user = User.objects.create_superuser("bench", "bench@example.com", "x")
    _, key = token_create(user=user, name="bench", scopes=["read", "write"])

    first = max(1000, args.size // 10)
    start = time.perf_counter()
    _generate(first, offset=0)
    small_queries = _list_queries(key)
    _generate(args.size - first, offset=first)
    large_queries = _list_queries(key)
    print(f"{vendor}: generated {args.size} people in {time.perf_counter() - start:.1f}s")
    print(f"queries for one list-100 page (in-process, real view): {small_queries} with {first} people, "
          f"{large_queries} with {args.size} people -> "
          f"{'constant' if small_queries == large_queries else 'NOT CONSTANT'}")

    baseline = _in_process(user, args.requests)
    connection.close()

    for label, source, shape in args.runs:
        port = _free_port()
        server = _start_server(port, args, source, shape=shape)
        appends = _AuditAppends()
        try:
            served = _over_http(port, key, args, server)
        finally:
            _stop_server(server)
        _report(vendor, label, shape, args, served, baseline)
        appends.report()
    if args.floor:
        _floor(key, args)
    children = os.times()
    print(f"this run: {time.perf_counter() - began:.1f} s wall, {time.process_time():.1f} s CPU in this process "
          f"(generation, in-process baseline), {children.children_user + children.children_system:.1f} s in its child "
          "processes (the server and the load generator)")


def _report(vendor: str, web_server: str, shape: tuple[str, int, int], args, served: dict,  # type: ignore[no-untyped-def]
            baseline: dict) -> None:
    print(f"\nserver: rapport run --no-worker, {web_server}, {shape[1]} workers × {shape[2]} "
          f"threads, {args.threads} client processes on keep-alive connections; machine: {os.cpu_count()} cores")
    print("wall: requests per second as measured; CPU: milliseconds of CPU per request (server + database);"
          " 2 cores/s: 2000 / CPU ms")
    print(f"{'operation':<10}{'n':>6}{'HTTP/s':>8}{'p50 ms':>8}{'p95 ms':>8}{'CPU ms':>8}{'2 cores/s':>10}"
          f"{'in-proc/s':>10}{'CPU ms':>8}{'2 cores/s':>10}{'HTTP/in-proc CPU':>18}")
    projected = {}
    for name in ("create", "get", "list-100"):
        n, seconds, samples, cpu = served[name]
        base_n, base_seconds, base_cpu = baseline[name]
        f = percentiles(samples)
        cpu_ms, base_ms = cpu * 1000 / n, base_cpu * 1000 / base_n
        projected[name] = 2000 / cpu_ms if cpu_ms else float("inf")
        print(f"{name:<10}{n:>6}{n / seconds:>8.1f}{f['p50']:>8.1f}{f['p95']:>8.1f}{cpu_ms:>8.2f}"
              f"{projected[name]:>10.0f}{base_n / base_seconds:>10.1f}{base_ms:>8.2f}{2000 / base_ms:>10.0f}"
              f"{cpu_ms / base_ms:>18.2f}")
    creates = served["create"][0] / served["create"][1]
    lists = served["list-100"][0] / served["list-100"][1]
    for label, figure, goal in (("creates", creates, GOAL_CREATES), ("list-100 pages", lists, GOAL_LISTS)):
        key = "create" if label == "creates" else "list-100"
        print(f"{vendor} ({web_server}): {figure:.0f} {label}/s measured, {projected[key]:.0f}/s on 2 dedicated "
              f"cores by CPU cost: {'meets' if projected[key] >= goal else 'MISSES'} the {goal}/s goal")


def _args():  # type: ignore[no-untyped-def]
    import argparse

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--threads", type=int, default=4)
    extra.add_argument("--requests", type=int, default=1200)
    extra.add_argument("--compare", default="")
    extra.add_argument("--servers", default="",
                       help="server shapes to measure in turn, e.g. gunicorn:2x4,granian:2x1")
    extra.add_argument("--floor", action="store_true",
                       help="also measure the floor: the server alone, and a DRF view with token sign-in returning a constant")
    known, rest = extra.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    args = bench_args("API throughput against a running server", default_size=20_000)
    args.threads, args.requests, args.floor = known.threads, known.requests, known.floor
    # What `rapport run` starts (granian by default), from this tree; ``--compare SRC`` also serves the same
    # data from another checkout's ``src`` (e.g. a `git worktree` of an earlier commit), this
    # tree again after it, so a change is measured against its own before in one run.
    args.shapes = [_shape(text) for text in known.servers.split(",") if text.strip()] or [_shape("")]
    sources = [None] if not known.compare else [None, known.compare, None]
    args.runs = [(shape[0] if source is None else f"{shape[0]}, code from {source}", source, shape)
                 for shape in args.shapes for source in sources]
    sys.argv = [sys.argv[0], *rest, "--threads", str(known.threads), "--requests", str(known.requests),
                *(["--compare", known.compare] if known.compare else []),
                *(["--servers", known.servers] if known.servers else []), *(["--floor"] if known.floor else [])]
    return args


def _shape(text: str) -> tuple[str, int, int]:
    """``granian:2x1`` → ("granian", 2, 1); missing parts are ``rapport run``'s defaults."""
    server, _, size = text.strip().partition(":")
    workers, _, threads = size.partition("x")
    return (server or os.environ.get("RAPPORT_WEB_SERVER", "granian"),
            int(workers or os.environ.get("RAPPORT_WEB_WORKERS", "2")),
            int(threads or os.environ.get("RAPPORT_WEB_THREADS", "1")))


# ------------------------------------------------------------------------------- data


def _generate(count: int, *, offset: int) -> None:
    """Bulk-insert people with the services' normalisation; a fifth have a job, a tenth a tag."""
    from rapport.core.search import fold
    from rapport.identity.normalise import normalise_email, normalise_phone
    from rapport.people.models import ContactPoint, Employment, Organisation, Person, Tag

    rng = random.Random(offset)
    orgs = list(Organisation.objects.all()[:200])
    if not orgs:
        Organisation.objects.bulk_create([Organisation(name=f"Company {i}", name_key=fold(f"Company {i}"))
                                          for i in range(200)])
        orgs = list(Organisation.objects.all())
    tag, _ = Tag.objects.get_or_create(name="customer")
    given = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
    family = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman"]
    for chunk in range(offset, offset + count, 2000):
        people, points, jobs, tagged = [], [], [], []
        for i in range(chunk, min(chunk + 2000, offset + count)):
            g, f = rng.choice(given), rng.choice(family)
            person = Person(given_name=g, family_name=f, given_key=fold(g), family_key=fold(f), country="GB")
            people.append(person)
            email = normalise_email(f"{g}.{f}.{i}@example.com".lower())
            phone = normalise_phone(f"07911 {100000 + i % 900000}", "GB")
            points += [ContactPoint(person=person, kind="email", value=email.normalised, normalised=email.normalised,
                                    search_key=email.search_key, primary=True),
                       ContactPoint(person=person, kind="phone", value=f"07911 {100000 + i % 900000}",
                                    normalised=phone.normalised, search_key=phone.search_key, primary=True)]
            if i % 5 == 0:
                jobs.append(Employment(person=person, organisation=rng.choice(orgs), title="Engineer"))
            if i % 10 == 0:
                tagged.append(person)
        Person.objects.bulk_create(people, batch_size=1000)
        for row in (*points, *jobs):
            row.person_id = row.person.pk
        ContactPoint.objects.bulk_create(points, batch_size=1000)
        Employment.objects.bulk_create(jobs, batch_size=1000)
        Person.tags.through.objects.bulk_create(
            [Person.tags.through(person_id=p.pk, tag_id=tag.pk) for p in tagged], batch_size=1000)
    from django.db import connection

    if connection.vendor == "postgresql":
        # What autovacuum does within a minute of a bulk insert: without statistics the planner
        # takes 40,000 contact points for a small table and scans them all for a page of 100.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def _list_queries(key: str) -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    client.get("/api/v1/people/", {"page_size": 100})  # warm caches that live per process
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/v1/people/", {"page_size": 100})
    assert response.status_code == 200 and len(response.json()["results"]) == 100, response.content[:300]
    return len(ctx.captured_queries)


def _create_body(n: int) -> dict:
    tag = uuid.uuid4().hex[:10]
    return {"given_name": "Bench", "family_name": f"Create{n}", "country": "GB",
            "contact_points": [{"kind": "email", "value": f"bench.{tag}@example.com"},
                               {"kind": "phone", "value": f"+44 7911 {n % 1000000:06d}"}]}


# --------------------------------------------------------------------------- baseline


def _in_process(user, requests: int) -> dict[str, tuple[int, float, float]]:  # type: ignore[no-untyped-def]
    """The same operations through services and selectors, in this process, one thread."""
    from rapport.access.audit import record_people_access_bulk, record_person_access
    from rapport.people import selectors, services
    from rapport.people.api.serializers import person_out

    n_create, n_list = requests, max(20, requests // 5)
    meter = _Meter(in_process=True)
    start = time.perf_counter()
    ids = []
    for i in range(n_create):
        body = _create_body(10_000_000 + i)
        points = [services.ContactPointInput(**p) for p in body.pop("contact_points")]
        ids.append(services.person_create(actor=user, contact_points=points, channel="api", **body).pk)
    create, create_cpu = time.perf_counter() - start, meter.lap()
    start = time.perf_counter()
    for pk in ids:
        person = selectors.person_get(user=user, person_id=pk)
        record_person_access(actor=user, action="view", people=[person], channel="api")
        person_out(person)
    get, get_cpu = time.perf_counter() - start, meter.lap()
    start = time.perf_counter()
    for _ in range(n_list):
        page = list(selectors.person_list(user=user).order_by("-created_at", "-id")[:100])
        details = selectors.person_page_details(person_ids=[p.pk for p in page])
        record_people_access_bulk(actor=user, action="view", people=page, channel="api")  # as the list view
        [person_out(p, details=details) for p in page]
    lists, lists_cpu = time.perf_counter() - start, meter.lap()
    # Every API create also runs identity's duplicate check (I2) before person_create.
    from rapport.identity.realtime import check_before_create

    for i in range(min(200, n_create)):
        body = _create_body(20_000_000 + i)
        check_before_create(user=user, on_duplicate="create", given_name=body["given_name"],
                            family_name=body["family_name"],
                            emails=[body["contact_points"][0]["value"]], phones=[body["contact_points"][1]["value"]])
    print(f"in-process: the duplicate check every API create runs first (identity I2) costs "
          f"{meter.lap() * 1000 / min(200, n_create):.2f} ms CPU per create")
    return {"create": (n_create, create, create_cpu), "get": (n_create, get, get_cpu),
            "list-100": (n_list, lists, lists_cpu)}


# ------------------------------------------------------------------------------- floor


def _floor(key: str, args) -> None:  # type: ignore[no-untyped-def]
    """CPU per request of answers that do none of Rapport's work, through the same server
    command as ``rapport run``: what the create and list figures can come down to at best."""
    for shape in dict.fromkeys(args.shapes):
        _floor_of(key, args, shape)


def _floor_of(key: str, args, shape: tuple[str, int, int]) -> None:  # type: ignore[no-untyped-def]
    rows = []
    for app, label, method, path in (
            ("_api_floor:constant", f"{shape[0]} alone, constant", "POST", "/"),
            ("_api_floor:application", "Django, every middleware, plain view", "GET", "/floor/django/"),
            ("_api_floor:application", "DRF view, token sign-in, constant (GET)", "GET", "/api/v1/floor/"),
            ("_api_floor:application", "DRF view, token sign-in, create body (POST)", "POST", "/api/v1/floor/")):
        port = _free_port()
        server = _start_server(port, args, None, shape=shape, app=app)
        try:
            per_client = max(1, args.requests // args.threads)
            body = _create_body(0) if method == "POST" else None
            request = _request(method, path, key, body)
            warm = _Connection(port)
            for _ in range(5 * args.threads):
                warm.call(request)
            samples, _, spent, elapsed, cpu, n, _ = _drive(
                port, [[request] * per_client for _ in range(args.threads)], 201 if method == "POST" else 200,
                server.pid, label)
        finally:
            _stop_server(server)
        rows.append((label, n, n / elapsed, percentiles(samples), spent * 1000 / n, cpu * 1000 / n))
    print(f"\nfloor: the same {shape[0]} command ({shape[1]} workers × {shape[2]} threads), same clients; "
          "CPU: server + database")
    print(f"{'answer':<46}{'n':>6}{'HTTP/s':>8}{'p50 ms':>8}{'CPU ms':>8}{'2 cores/s':>10}{'client ms':>10}")
    for label, n, rate, f, cpu_ms, client_ms in rows:
        print(f"{label:<46}{n:>6}{rate:>8.1f}{f['p50']:>8.1f}{cpu_ms:>8.2f}{2000 / cpu_ms:>10.0f}{client_ms:>10.2f}")


# ------------------------------------------------------------------------------ server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int, args, source: str | None, *, shape: tuple[str, int, int],  # type: ignore[no-untyped-def]
                  app: str = "") -> subprocess.Popen:
    env = dict(os.environ)
    if source:  # ahead of the installed tree on the import path
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    # Persistent database connections, so the backends measured live through the whole run.
    env.update({"RAPPORT_RATE_TOKEN": "off", "RAPPORT_RATE_IP": "off", "RAPPORT_CONN_MAX_AGE": "3600"})
    log = open(Path(os.environ["RAPPORT_VAR_DIR"]) / "server.log", "ab")  # noqa: SIM115 - closed with the process
    server_name, workers, threads = shape
    # By environment, which an earlier checkout's `rapport run` (``--compare``) reads too.
    env.update({"RAPPORT_WEB_SERVER": server_name, "RAPPORT_WEB_WORKERS": str(workers),
                "RAPPORT_WEB_THREADS": str(threads)})
    command = [str(ROOT / ".venv" / "bin" / "rapport"), "run", "--no-worker", "--bind", f"127.0.0.1:{port}"]
    if app:  # the floor's applications, with the server arguments `rapport run` uses
        from rapport.core.management.commands.run import web_server_command

        env.update({"DJANGO_SETTINGS_MODULE": "rapport.settings",
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"), env.get("PYTHONPATH")]))})
        command = web_server_command(server=server_name, app=app, bind=f"127.0.0.1:{port}", workers=workers,
                                     threads=threads)
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status in (200, 503):
                return server
        except OSError:
            time.sleep(0.3)
    _stop_server(server)
    raise SystemExit(f"the server did not start; see {log.name}")


def _stop_server(server: subprocess.Popen) -> None:
    import signal

    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


class _Connection:
    """One keep-alive HTTP/1.1 connection on a raw socket, sending requests built in advance.

    The load generator shares the two cores with the server, so it does as little as it can:
    no header dicts or JSON per request, only send, read the head, read Content-Length bytes.
    """

    def __init__(self, port: int) -> None:
        self.port, self.reconnects = port, 0
        self.sock = self._connect()
        self.buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def call(self, request: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.sock.sendall(request)
                return self._response()
            except (ConnectionError, BrokenPipeError):
                if attempt == 2:
                    raise
                self.sock.close()
                self.sock, self.buffer = self._connect(), b""
                self.reconnects += 1
        raise AssertionError("unreachable")

    def _response(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lower = head.lower()
        length, at = 0, lower.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = lower.find(b"\r\n", at + 2)
            length = int(lower[at + 17:stop if stop >= 0 else len(lower)])
        while len(rest) < length:
            rest += self._more()
        body, self.buffer = rest[:length], rest[length:]
        if b"\r\nconnection: close" in lower:
            self.sock.close()
            self.sock, self.buffer = self._connect(), b""
            self.reconnects += 1
        return int(head[9:12]), body

    def _read(self) -> None:
        self.buffer += self._more()

    def _more(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        return data


def _request(method: str, path: str, key: str, body: dict | None = None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {key}\r\n"
            f"Accept: application/json\r\n")
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return (head + "\r\n").encode() + payload


def _client(port: int, requests: list[bytes], taken, expect: int, out) -> None:  # type: ignore[no-untyped-def]
    """One client process on one connection: takes the next request of the shared list until none
    are left (so every connection stays busy to the end, however the server's workers split the
    connections between them); sends back the latencies, the answers' ids (creates), its CPU
    seconds, reconnects and how many requests it sent."""
    conn = _Connection(port)
    samples, bodies, failed = [], [], 0
    began_cpu = time.process_time()
    lock, total = taken.get_lock(), len(requests)
    while True:
        with lock:
            i = taken.value
            taken.value = i + 1
        if i >= total:
            break
        began = time.perf_counter()
        status, body = conn.call(requests[i])
        samples.append(time.perf_counter() - began)
        if status != expect:
            failed += 1
            bodies.append(body[:300])
        else:
            bodies.append(body[:60])
    cpu = time.process_time() - began_cpu
    out.send((samples, bodies, failed, cpu, conn.reconnects))
    out.close()


def _over_http(port: int, key: str, args, server) -> dict[str, tuple[int, float, list[float], float]]:  # type: ignore[no-untyped-def]
    warm = _Connection(port)
    for _ in range(5 * args.threads):  # warm up every worker's caches and connections
        status, _ = warm.call(_request("GET", "/api/v1/people/?page_size=100", key))
        assert status == 200
    per_client = max(1, args.requests // args.threads)
    lists_per_client = max(5, per_client // 5)
    created: list[str] = []
    results = {}
    client_cpu = client_requests = reconnects = 0.0
    for name in ("create", "get", "list-100"):
        count = lists_per_client if name == "list-100" else per_client
        batches = []
        for t in range(args.threads):  # every request built before the clock starts
            if name == "create":
                batch = [_request("POST", "/api/v1/people/", key, _create_body(t * count + j)) for j in range(count)]
            elif name == "get":
                batch = [_request("GET", f"/api/v1/people/{created[(t * count + j) % len(created)]}/", key)
                         for j in range(count)]
            else:
                batch = [_request("GET", "/api/v1/people/?page_size=100", key)] * count
            batches.append(batch)
        samples, bodies, spent, elapsed, cpu, count_, again = _drive(port, batches, 201 if name == "create" else 200,
                                                                   server.pid, name)
        client_cpu, client_requests, reconnects = client_cpu + cpu, client_requests + count_, reconnects + again
        if name == "create":
            created += [body[body.index(b'"id":"') + 6:][:36].decode() for body in bodies]
        if name == "list-100":
            status, page = warm.call(batches[0][0])
            assert status == 200 and len(json.loads(page)["results"]) == 100, page[:300]
        results[name] = (len(samples), elapsed, samples, spent)
    print(f"client reconnects (server closed keep-alive): {reconnects:.0f}; load generator CPU: "
          f"{client_cpu * 1000 / client_requests:.2f} ms per request (not counted below)")
    return results


def _drive(port: int, batches: list[list[bytes]], expect: int, server_pid: int, name: str):  # type: ignore[no-untyped-def]
    """One client process per batch, all at once, taking requests from one shared list (the
    batches in turn: every client's first, then every second, …); (latencies, bodies, server CPU
    seconds, wall seconds, client CPU seconds, requests, reconnects).

    Until round 8 each client sent its own batch: when the server's workers got the four
    connections 3 + 1 (or 4 + 0), the worker with fewer finished early and the other served the
    rest alone, so the measured rate was partly a coin toss on how connections were accepted."""
    import multiprocessing

    fork = multiprocessing.get_context("fork")
    requests = [batch[j] for j in range(max(map(len, batches))) for batch in batches if j < len(batch)]
    taken = fork.Value("l", 0)
    pipes, processes = [], []
    meter = _Meter(server_pid=server_pid)
    split, machine = _ProcessSplit(server_pid), _MachineTime()
    start = time.perf_counter()
    for _ in batches:
        parent, child = fork.Pipe(duplex=False)
        process = fork.Process(target=_client, args=(port, requests, taken, expect, child))
        process.start()
        pipes.append(parent)
        processes.append(process)
    answers = [pipe.recv() for pipe in pipes]
    elapsed = time.perf_counter() - start
    spent = meter.lap()
    shares_of_cpu, idle = split.shares(), machine.idle()
    for process in processes:
        process.join()
    samples: list[float] = []
    all_bodies: list[bytes] = []
    client_cpu = reconnects = 0.0
    shares = []
    for got, bodies, failed, cpu, again in answers:
        if failed:
            raise SystemExit(f"{name}: {failed} requests failed, e.g. {next(b for b in bodies if b)!r}")
        samples += got
        all_bodies += bodies
        shares.append(len(got))
        client_cpu, reconnects = client_cpu + cpu, reconnects + again
    print(f"{name}: requests sent by each client connection: {' / '.join(map(str, shares))}; "
          f"server processes' share of their CPU: {shares_of_cpu}; machine idle {idle}; "
          f"load generator {client_cpu * 1000 / max(1, len(samples)):.2f} ms CPU per request")
    return samples, all_bodies, spent, elapsed, client_cpu, len(samples), reconnects


class _ProcessSplit:
    """How the server's own CPU in one phase split between its processes (workers first, by pid).

    With one thread per worker, each worker serves only the connections it accepted: when the
    four client connections land 4 + 0, one worker serves every request and the other idles,
    which halves the measured rate while the CPU per request stays the same."""

    def __init__(self, server_pid: int) -> None:
        self.pids = sorted(_descendants(server_pid))
        self.before = {pid: _cpu_of({pid}) for pid in self.pids}

    def shares(self) -> str:
        spent = {pid: _cpu_of({pid}) - before for pid, before in self.before.items()}
        total = sum(spent.values()) or 1.0
        busy = sorted((s for s in spent.values() if s / total >= 0.02), reverse=True)
        return " / ".join(f"{100 * s / total:.0f} %" for s in busy)


class _MachineTime:
    """The whole machine's idle and I/O-wait share of its CPU time over one phase (/proc/stat)."""

    def __init__(self) -> None:
        self.before = self._ticks()

    def idle(self) -> str:
        spent = [b - a for a, b in zip(self.before, self._ticks(), strict=True)]
        total = sum(spent) or 1
        return f"{100 * spent[3] / total:.0f} %, iowait {100 * spent[4] / total:.0f} %"

    @staticmethod
    def _ticks() -> list[int]:
        return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


class _AuditAppends:
    """How the server's audit appends went (PostgreSQL): the chain head's row counters.

    A single entry is first appended after a guessed head (``access.audit._append_after``: one
    statement that moves the head and inserts the entry, or, when the guess is stale, moves
    nothing and reads the current head for the next try; decision 0030). An entry that takes the
    reserving path (no head row yet, or three stale guesses in a row) moves the head twice:
    reserve, then insert and move. So head updates minus entries inserted = reserving-path
    appends; stale guesses themselves update no row and are not counted here. Read after the
    server stopped: its backends send their counters when they exit.
    """

    def __init__(self) -> None:
        self.before = self._counts()

    def report(self) -> None:
        if self.before is None:
            return
        time.sleep(0.5)  # the exiting backends' counters
        after = self._counts()
        entries, updates = (a - b for a, b in zip(after, self.before, strict=True))
        reserved = updates - entries
        print(f"audit appends by the server: {entries} entries, {reserved} by the reserving path "
              f"({100 * reserved / max(1, entries):.0f} %; a stale guess costs one more statement and is not counted)")

    @staticmethod
    def _counts() -> tuple[int, int] | None:
        from django.db import connection

        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SELECT (SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'access_auditentry'), "
                           "(SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'access_auditchainhead')")
            entries, updates = cursor.fetchone()
        return int(entries or 0), int(updates or 0)


class _Meter:
    """CPU seconds used since the last lap: by the server's process tree and the database
    backends serving it, or (``in_process``) by this process and its own backend."""

    def __init__(self, *, server_pid: int | None = None, in_process: bool = False) -> None:
        self.server_pid, self.in_process = server_pid, in_process
        self.last = self._total()

    def lap(self) -> float:
        now = self._total()
        spent, self.last = now - self.last, now
        return spent

    def _total(self) -> float:
        if self.in_process:
            return time.process_time() + _cpu_of(_backends(own=True))
        return _cpu_of(_descendants(self.server_pid)) + _cpu_of(_backends(own=False))


def _cpu_of(pids: set[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _descendants(root: int | None) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root] if root else []
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, ()))
    return found


def _backends(*, own: bool) -> set[int]:
    """PostgreSQL server processes of client connections: this process's own, or all others."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return set()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND "
                       + ("pid = pg_backend_pid()" if own else "pid <> pg_backend_pid()"))
        return {row[0] for row in cursor.fetchall()}


if __name__ == "__main__":
    main()
