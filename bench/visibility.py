"""What record visibility (S2) and the access audit (S5) cost.

    .venv/bin/python bench/visibility.py [--size 100000] [--postgres] [--api-requests 2000]
                                         [--rounds 6] [--only visibility|audit] [--profile-audit]

Data: N people owned by 50 users in 8 teams, the organisation-wide default for people set
to private, 20 sharing rules (team-owned and criteria rules, read and read-write, aimed at
teams and roles) and 2,000 manual shares. The user measured is a sales rep who is a member
of two teams and a target of several rules.

1. Visibility, measured twice: as bulk-loaded (no planner statistics) and after ``ANALYZE``
   (what a database that has been running has): the people list (first page of 25 in list order, through
   ``person_list_for_display``) and the global search (``global_search``) as the sales rep,
   against the same calls as an Administrator, for whom ``restrict`` adds no filter.
   Goal: visibility adds < 20 % (p50 ratio < 1.2). Each call is a new request: the user
   object carries no context, so the call reads the shared access-generation row and takes
   the context from the process's cache (``access/policy.py``), as every request after the
   first one since a settings change does. Shown too, not judged: the same calls with the
   context kept on the user object (no generation read), and what the first request after a
   settings change costs (loading the organisation's sharing configuration).
2. Audit writes: API read throughput of ``GET /api/v1/people/<id>/`` (each writes a "view"
   entry to the hash chain), in process through DRF's test client (no network, no server),
   with the audit append on and replaced by a no-op, in alternating rounds so the shared
   machine's noise falls on both. Goal: throughput cut < 15 %, judged (since 2026-12-02,
   eighth session) over the **whole run**: every request of every round of each mode, total
   requests over total seconds, so every WAL checkpoint either mode paid is counted. Rounds
   are 2,000 distinct people each (``--api-requests``), 6 each way (``--rounds``): on SQLite
   an audit-on round then spans ~19 checkpoints at the default 1,000 pages and an audit-off
   round ~8, so no single checkpoint decides a round. Also printed: the spread of the cut
   between rounds (each audit-on round against the audit-off round after it) and, on SQLite,
   the WAL restarts (one per checkpoint cycle) of each mode and the share of the mode's time
   spent in the requests during which one fell (read from the WAL index in the ``-shm`` file
   through a memory map, the same read in both modes). **Not comparable with the figures before
   that date**, which were the median of 12 rounds of 40 requests (one checkpoint moved a
   round by 10–35 %); that figure is still printed ("round median, old measure"), and
   ``--api-requests 40 --rounds 12`` runs the old shape. Then the same GETs paired: each
   URL fetched with the audit on and off back to back (order alternating, 480 pairs over the
   first URLs), judged on the p50 of single requests, which a loaded machine disturbs far
   less. Also printed: this process's CPU per request each way, and the statements one
   audited GET runs (``--profile-audit`` adds a cProfile of one audit-on round, top functions
   by cumulative time).

``--only audit`` skips the visibility part (the data are still generated: the GETs read
from the same 100,000 people); ``--only visibility`` skips the audit part.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_args, boot, print_table, timed

USERS, TEAMS, RULES, SHARES = 50, 8, 20, 2000
COUNTRIES = ["GB", "IE", "FR", "DE", "NL", "ES", "IT", "US", "CA", "AU"]
QUERIES = 150
SEARCH_PASSES = 3  # each query searched this many times each way: 450 calls a side for a steady p50
LIST_CALLS = 60
ROUNDS = 6  # alternating rounds each way (``--rounds``); the whole run is judged
PAIRS = 480  # paired on/off fetches (as many as 12 rounds of 40 gave before)


def main() -> None:
    parser_args = _args()
    # The API's rate limits still count every request (a statement each, as in production) but
    # must not refuse the ~2,000 GETs of a minute here.
    os.environ.setdefault("RAPPORT_RATE_TOKEN", "100000/min")
    os.environ.setdefault("RAPPORT_RATE_IP", "100000/min")
    vendor = boot(parser_args)
    from rapport.access.models import Role, User

    rng = random.Random(7)
    start = time.perf_counter()
    rep, _users = _generate(parser_args.size, rng)
    print(f"{vendor}: {parser_args.size} people, {USERS} owners in {TEAMS} teams, {RULES} rules, "
          f"{SHARES} manual shares; generated in {time.perf_counter() - start:.1f}s")
    admin = User.objects.create_user("bench-admin", password=None,
                                     role=Role.objects.get(key="administrator"))
    queries = _queries(rng)  # the same searches in both phases
    if parser_args.only != "audit":
        print("\n== as loaded (the planner has no statistics yet)")
        _visibility(vendor, rep, admin, queries)
    _analyze(vendor)
    if parser_args.only != "audit":
        print("\n== after ANALYZE (what the planner knows once statistics exist)")
        _visibility(vendor, rep, admin, queries)
    if parser_args.only != "visibility":
        _audit(vendor, admin, parser_args.api_requests, parser_args.rounds, profile=parser_args.profile_audit)
    print(f"\nthis run: {time.perf_counter() - start:.1f} s wall, {time.process_time():.1f} s CPU of this process"
          + (" (the PostgreSQL server's CPU is on top)" if vendor == "postgresql" else ""))


def _args():  # type: ignore[no-untyped-def]
    import argparse

    sys_argv = sys.argv[1:]
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--api-requests", type=int, default=2000, help="requests (distinct people) per round")
    extra.add_argument("--rounds", type=int, default=ROUNDS, help="audit rounds each way")
    extra.add_argument("--only", choices=["visibility", "audit"], help="run one part only")
    extra.add_argument("--profile-audit", action="store_true", help="cProfile the audit-on loop")
    known, rest = extra.parse_known_args(sys_argv)
    sys.argv = [sys.argv[0], *rest]
    args = bench_args("visibility and audit overhead", default_size=100_000)
    args.api_requests, args.only, args.profile_audit = known.api_requests, known.only, known.profile_audit
    args.rounds = known.rounds
    sys.argv = [sys.argv[0], *sys_argv]  # --postgres re-runs the script with every option
    return args


# ------------------------------------------------------------------------------ measures


def _new_request(user) -> None:  # type: ignore[no-untyped-def]
    """What a new request's user object lacks: a context and the generation read with it."""
    for name in ("_rapport_access", "_rapport_generation"):
        user.__dict__.pop(name, None)


def _timed(fn, inputs, cpu: list[float]) -> list[float]:  # type: ignore[no-untyped-def]
    """Wall seconds per call (returned) and this process's CPU seconds per call (appended to ``cpu``)."""
    wall = []
    for value in inputs:
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(value)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall


def _queries(rng: random.Random) -> list[str]:
    """QUERIES name prefixes of 2–5 characters, drawn once from the family names (seeded)."""
    from rapport.people.models import Person

    keys = sorted(k for k in Person.objects.values_list("family_key", flat=True) if len(k) >= 2)
    return [k[: rng.randint(2, 5)] for k in rng.sample(keys, QUERIES)]


def _visibility(vendor: str, rep, admin, queries: list[str]) -> None:  # type: ignore[no-untyped-def]
    from rapport.access import policy
    from rapport.access.policy import forget
    from rapport.people.models import Person
    from rapport.people.selectors import global_search, person_list_for_display

    forget(rep)
    visible = Person.objects.visible_to(rep).count()
    total = Person.objects.count()
    print(f"the sales rep sees {visible} of {total} people ({100 * visible / total:.1f} %)")

    def first_page(user, fresh=True):  # type: ignore[no-untyped-def]
        if fresh:
            _new_request(user)  # a request starts without a context: count its queries too
        return list(person_list_for_display(user=user)[:25])

    def search(user, query, fresh=True):  # type: ignore[no-untyped-def]
        if fresh:
            _new_request(user)
        return global_search(user=user, query=query)

    for _ in range(3):  # warm up
        first_page(rep), first_page(admin), search(rep, queries[0]), search(admin, queries[0])
    cpu: dict[str, list[float]] = {k: [] for k in ("list rep", "list admin", "search rep", "search admin")}
    rounds_rep, rounds_admin = [], []
    for _ in range(LIST_CALLS):
        rounds_rep += _timed(lambda _: first_page(rep), [None], cpu["list rep"])
        rounds_admin += _timed(lambda _: first_page(admin), [None], cpu["list admin"])
    # Each query SEARCH_PASSES times each way, which side goes first alternating, so a burst of
    # the shared machine's other work falls on both sides alike.
    server_cpu = _server_cpu_reader(vendor)
    server: dict[str, list[float]] = {"search rep": [], "search admin": []}
    search_rep, search_admin, counts = [], [], {"rep": 0, "admin": 0, "differ": 0}
    for n in range(SEARCH_PASSES):
        for i, q in enumerate(queries):
            found = {}
            for who, user, wall in ((("rep", rep, search_rep), ("admin", admin, search_admin)) if (i + n) % 2 == 0
                                    else (("admin", admin, search_admin), ("rep", rep, search_rep))):
                before = server_cpu()
                wall += _timed(lambda q, who=who, user=user, found=found: found.__setitem__(who, search(user, q)), [q],
                               cpu[f"search {who}"])
                server[f"search {who}"].append(server_cpu() - before)
            counts["rep"] += len(found["rep"])
            counts["admin"] += len(found["admin"])
            counts["differ"] += len(found["rep"]) != len(found["admin"])
    # The first request after a settings change loads the sharing configuration (once per
    # change and process); shown apart, it is not what a request usually pays.
    cold = []
    for _ in range(20):
        policy._config = None
        forget(rep)
        cold += timed(lambda _: first_page(rep), [None])
    # The same with the access context kept on the user object (no generation read).
    kept = {"list rep": [], "list admin": [], "search rep": [], "search admin": []}
    first_page(rep), first_page(admin)
    for _ in range(LIST_CALLS):
        kept["list rep"] += timed(lambda _: first_page(rep, False), [None])
        kept["list admin"] += timed(lambda _: first_page(admin, False), [None])
    for i, q in enumerate(queries):
        for who, user in (("rep", rep), ("admin", admin)) if i % 2 == 0 else (("admin", admin), ("rep", rep)):
            kept[f"search {who}"] += timed(lambda q, user=user: search(user, q, False), [q])
    print("\npeople list, first page of 25 (person_list_for_display):")
    figures = print_table([("sales rep", rounds_rep), ("no filter (admin)", rounds_admin)],
                          baseline="no filter (admin)")
    _verdict(vendor, "list", figures["sales rep"]["p50"] / figures["no filter (admin)"]["p50"], 1.2)
    _cpu(vendor, cpu["list rep"], cpu["list admin"])
    _kept(kept["list rep"], kept["list admin"])
    print(f"  (first request after a settings change, loading the sharing configuration: sales rep p50 "
          f"{1000 * statistics.median(cold):.2f} ms; not the goal's measure)")
    print(f"\nglobal search (global_search), {len(queries)} name prefixes of 2–5 characters × {SEARCH_PASSES} "
          f"passes each way:")
    print(f"  hits per search: sales rep {counts['rep'] / len(search_rep):.2f}, admin "
          f"{counts['admin'] / len(search_admin):.2f}; {counts['differ']} of {len(search_rep)} searches with a "
          f"different number of hits")
    figures = print_table([("sales rep", search_rep), ("no filter (admin)", search_admin)],
                          baseline="no filter (admin)")
    _verdict(vendor, "search", figures["sales rep"]["p50"] / figures["no filter (admin)"]["p50"], 1.2)
    _cpu(vendor, cpu["search rep"], cpu["search admin"])
    if vendor == "postgresql" and any(server["search admin"]):
        rep_server, admin_server = (statistics.median(server[k]) for k in ("search rep", "search admin"))
        both = [statistics.median([c + s for c, s in zip(cpu[k], server[k], strict=True)])
                for k in ("search rep", "search admin")]
        print(f"  the PostgreSQL backend's CPU per call: sales rep p50 {1000 * rep_server:.2f} ms, admin "
              f"{1000 * admin_server:.2f} ms; client + server CPU p50: sales rep {1000 * both[0]:.2f} ms, admin "
              f"{1000 * both[1]:.2f} ms, {100 * (both[0] / both[1] - 1):+.1f} %")
    _kept(kept["search rep"], kept["search admin"])


def _cpu(vendor: str, rep: list[float], admin: list[float]) -> None:
    ratio = statistics.median(rep) / statistics.median(admin)
    server = "; the PostgreSQL server's CPU is not in it" if vendor == "postgresql" else ""
    print(f"  this process's CPU per call: sales rep p50 {1000 * statistics.median(rep):.2f} ms, admin "
          f"{1000 * statistics.median(admin):.2f} ms, {100 * (ratio - 1):+.1f} %{server}")


def _kept(rep: list[float], admin: list[float]) -> None:
    ratio = statistics.median(rep) / statistics.median(admin)
    print(f"  (access context kept between calls: sales rep p50 {1000 * statistics.median(rep):.2f} ms, "
          f"admin {1000 * statistics.median(admin):.2f} ms, {100 * (ratio - 1):+.1f} %; not the goal's measure)")


def _audit(vendor: str, admin, requests: int, rounds: int, *,  # type: ignore[no-untyped-def]
           profile: bool = False) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse
    from rest_framework.test import APIClient

    from rapport.access import audit
    from rapport.access.models import AuditEntry
    from rapport.access.services import token_create
    from rapport.people.models import Person

    _, key = token_create(user=admin, name="bench", scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    pks = list(Person.objects.order_by("?").values_list("pk", flat=True)[:requests])
    urls = [reverse("api:person-detail", kwargs={"pk": pk}) for pk in pks]
    real_append = audit._append

    server_cpu = _server_cpu_reader(vendor)
    wal = _wal_reader(vendor)
    # Per measured round and mode: wall s, this process's CPU s, the server's CPU s, WAL restarts,
    # and the wall s of the requests during which the WAL index header changed (a checkpoint or restart).
    measured: dict[bool, list[_Round]] = {True: [], False: []}

    def run(with_audit: bool, chosen: list[str], record: bool = True) -> None:
        audit._append = real_append if with_audit else (lambda rows: None)
        try:
            restarts, in_checkpoints, header = 0, 0.0, wal()
            start, start_cpu, start_server = time.perf_counter(), time.process_time(), server_cpu()
            for url in chosen:
                began = time.perf_counter()
                response = client.get(url)
                if response.status_code != 200:
                    raise SystemExit(f"GET {url}: {response.status_code}")
                if header is not None:  # SQLite: a memory-mapped read, the same in both modes
                    now = wal()
                    if now != header:
                        in_checkpoints += time.perf_counter() - began
                        restarts += now[:2] != header[:2]  # new salts: the WAL restarted after a checkpoint
                        header = now
            if record:
                measured[with_audit].append(_Round(
                    len(chosen), time.perf_counter() - start, time.process_time() - start_cpu,
                    server_cpu() - start_server, restarts, in_checkpoints))
        finally:
            audit._append = real_append

    warm = urls[: min(len(urls), 200)]
    run(True, warm, False), run(False, warm, False)  # warm up
    before = AuditEntry.objects.count()
    for _ in range(rounds):
        run(True, urls)
        run(False, urls)
    written = AuditEntry.objects.count() - before
    _audit_report(vendor, measured, len(urls), rounds, written)
    _paired(vendor, client, urls, audit, real_append, server_cpu)
    with CaptureQueriesContext(connection) as audited:
        client.get(urls[0])
    audit._append = lambda rows: None
    try:
        with CaptureQueriesContext(connection) as plain:
            client.get(urls[0])
    finally:
        audit._append = real_append
    extra = audited.captured_queries[:]
    for query in plain.captured_queries:  # what the audit adds: the audited GET's statements minus the plain one's
        match = next((q for q in extra if q["sql"] == query["sql"]), None)
        if match is not None:
            extra.remove(match)
    print(f"  statements per GET: {len(plain)} without the audit, {len(audited)} with it; the audit's:")
    for query in extra:
        print(f"    {query['sql'][:110]}")
    if profile:
        _profile_audit(lambda: run(True, urls, False))


@dataclass(frozen=True)
class _Round:
    requests: int
    wall: float
    cpu: float  # this process's
    server: float  # the PostgreSQL backend's (0 on SQLite)
    wal_restarts: int  # SQLite: WAL restarts, one per checkpoint cycle (0 elsewhere)
    in_checkpoints: float  # wall s of the requests during which the WAL index header changed


def _audit_report(vendor: str, measured: dict[bool, list[_Round]], per_round: int, rounds: int,
                  written: int) -> None:
    """The whole run's cut (the goal's measure), its spread between rounds, and the old round median."""
    def total(mode: bool, attr: str) -> float:
        return sum(getattr(r, attr) for r in measured[mode])

    count = {mode: total(mode, "requests") for mode in (True, False)}
    rate = {mode: count[mode] / total(mode, "wall") for mode in (True, False)}
    cpu = {mode: total(mode, "cpu") / count[mode] for mode in (True, False)}
    server = {mode: total(mode, "server") / count[mode] for mode in (True, False)}
    round_rates = {mode: [r.requests / r.wall for r in measured[mode]] for mode in (True, False)}
    print(f"\nAPI reads, GET /api/v1/people/<id>/ in process (DRF test client), {per_round} requests × {rounds} "
          f"alternating rounds each way; {written} audit entries written:")
    print(f"{'mode':<24}{'req/s (run)':>12}{'round min':>10}{'max':>10}{'×base':>8}{'CPU ms/req':>12}"
          f"{'wall s':>9}{'CPU s':>9}")
    for label, mode in (("audit off (baseline)", False), ("audit on", True)):
        print(f"{label:<24}{rate[mode]:>12.1f}{min(round_rates[mode]):>10.1f}{max(round_rates[mode]):>10.1f}"
              f"{rate[mode] / rate[False]:>8.2f}{1000 * cpu[mode]:>12.2f}{total(mode, 'wall'):>9.1f}"
              f"{total(mode, 'cpu'):>9.1f}")
    cut = 1 - rate[True] / rate[False]
    # Each audit-on round against the audit-off round that followed it: how far one pair can stray.
    pair_cuts = sorted(1 - (on.requests / on.wall) / (off.requests / off.wall)
                       for on, off in zip(measured[True], measured[False], strict=True))
    print(f"  spread between rounds (each audit-on round against the audit-off round after it): cut "
          f"{100 * pair_cuts[0]:.1f} to {100 * pair_cuts[-1]:.1f} %, median {100 * statistics.median(pair_cuts):.1f} %")
    server_note = " (the PostgreSQL server's CPU is not in it)" if vendor == "postgresql" else ""
    print(f"  by this process's CPU over the run{server_note}: the audit cuts throughput by {100 * (1 - cpu[False] / cpu[True]):.1f} %")
    if server[True] or server[False]:
        both = {mode: cpu[mode] + server[mode] for mode in (True, False)}
        print(f"  the PostgreSQL backend's CPU per request: {1000 * server[False]:.2f} ms off, "
              f"{1000 * server[True]:.2f} ms on; by client + server CPU the audit cuts throughput by "
              f"{100 * (1 - both[False] / both[True]):.1f} %")
    if vendor == "sqlite":
        shares = {mode: total(mode, "in_checkpoints") / total(mode, "wall") for mode in (True, False)}
        print(f"  WAL restarts (SQLite, one per checkpoint cycle, not judged): {int(total(True, 'wal_restarts'))} "
              f"in audit-on rounds, {int(total(False, 'wal_restarts'))} in audit-off rounds; requests during which a "
              f"checkpoint or restart fell took {100 * shares[True]:.1f} % / {100 * shares[False]:.1f} % of each "
              f"mode's time")
    old = 1 - statistics.median(round_rates[True]) / statistics.median(round_rates[False])
    print(f"  round median, old measure (not the goal's since 2026-12-02): cut {100 * old:.1f} %")
    verdict = "meets" if cut < 0.15 else "MISSES"
    print(f"{vendor}: audit writes cut read throughput by {100 * cut:.1f} % over the whole run: {verdict} "
          "the < 15 % goal")


def _paired(vendor: str, client, urls: list[str], audit, real_append, server_cpu) -> None:  # type: ignore[no-untyped-def]
    """Each URL fetched twice back to back, audit on and off, which first alternating.

    On a shared machine a burst of someone else's work falls on a whole round; here it falls
    on both modes alike, and the medians of single requests shrug it off.
    """
    wall: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    server = {True: 0.0, False: 0.0}
    for n in range(PAIRS):
        url = urls[n % len(urls)]
        for with_audit in ((True, False) if n % 2 else (False, True)):
            audit._append = real_append if with_audit else (lambda rows: None)
            try:
                start, start_cpu, start_server = time.perf_counter(), time.process_time(), server_cpu()
                if client.get(url).status_code != 200:
                    raise SystemExit(f"GET {url} failed")
                wall[with_audit].append(time.perf_counter() - start)
                cpu[with_audit].append(time.process_time() - start_cpu)
                server[with_audit] += server_cpu() - start_server
            finally:
                audit._append = real_append
    on, off = statistics.median(wall[True]), statistics.median(wall[False])
    print(f"\npaired requests ({len(wall[True])} URL fetches each way, audit on and off back to back):")
    print(f"{'mode':<24}{'p50 ms':>10}{'req/s at p50':>14}{'mean ms':>10}{'CPU p50 ms':>12}")
    for label, mode in (("audit off (baseline)", False), ("audit on", True)):
        print(f"{label:<24}{1000 * statistics.median(wall[mode]):>10.2f}{1 / statistics.median(wall[mode]):>14.1f}"
              f"{1000 * statistics.fmean(wall[mode]):>10.2f}{1000 * statistics.median(cpu[mode]):>12.2f}")
    cpu_cut = 1 - statistics.median(cpu[False]) / statistics.median(cpu[True])
    print(f"  by this process's CPU (p50): the audit cuts throughput by {100 * cpu_cut:.1f} %")
    if server[True] or server[False]:
        count = len(wall[True])
        both = {mode: statistics.median(cpu[mode]) + server[mode] / count for mode in (True, False)}
        print(f"  the PostgreSQL backend's CPU per request: {1000 * server[False] / count:.2f} ms off, "
              f"{1000 * server[True] / count:.2f} ms on; by client + server CPU the audit cuts throughput by "
              f"{100 * (1 - both[False] / both[True]):.1f} %")
    cut = 1 - off / on
    verdict = "meets" if cut < 0.15 else "MISSES"
    print(f"{vendor}: paired, audit writes cut read throughput by {100 * cut:.1f} % (p50): {verdict} the < 15 % goal")


def _server_cpu_reader(vendor: str):  # type: ignore[no-untyped-def]
    """Seconds of CPU the PostgreSQL backend serving this connection has used (0 where unknown).

    The server runs on this machine (``--postgres``): its backend's ``/proc/<pid>/schedstat``
    counts nanoseconds on CPU, whatever else the shared machine is running.
    """
    if vendor != "postgresql":
        return lambda: 0.0
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    path = Path(f"/proc/{pid}/schedstat")

    def read() -> float:
        try:
            return int(path.read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0

    return read


def _wal_reader(vendor: str):  # type: ignore[no-untyped-def]
    """SQLite: the WAL index's (salts, backfilled frames), read from its ``-shm`` file through a
    memory map without a statement (a microsecond): it changes when a checkpoint copies frames or
    the WAL restarts (None elsewhere, or where the file cannot be mapped)."""
    if vendor != "sqlite":
        return lambda: None
    import mmap
    import struct

    from django.db import connection

    connection.ensure_connection()
    try:
        with open(f"{connection.settings_dict['NAME']}-shm", "rb") as shm:
            view = mmap.mmap(shm.fileno(), 0, access=mmap.ACCESS_READ)  # stays valid after the close
    except (OSError, ValueError):
        return lambda: None

    def read() -> tuple[int, int, int]:
        return (*struct.unpack_from("=II", view, 32), struct.unpack_from("=I", view, 96)[0])

    return read


def _profile_audit(run) -> None:  # type: ignore[no-untyped-def]
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    print("\ncProfile of one audit-on round, by cumulative time (audit and database functions):")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(r"audit|sqlite3|psycopg|db/backends|transaction", 30)


def _analyze(vendor: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _verdict(vendor: str, what: str, ratio: float, goal: float) -> None:
    verdict = "meets" if ratio < goal else "MISSES"
    print(f"{vendor}: visibility adds {100 * (ratio - 1):.1f} % to the {what} (p50): {verdict} the < 20 % goal")


# ----------------------------------------------------------------------------- the data


def _generate(size: int, rng: random.Random):  # type: ignore[no-untyped-def]
    from faker import Faker

    from rapport.access import services
    from rapport.access.models import Access, RecordShare, Role, Team, TeamMembership, User
    from rapport.core.search import fold
    from rapport.people.models import Person

    roles = {r.key: r for r in Role.objects.all()}
    users = User.objects.bulk_create([
        User(username=f"owner{i:02d}", role=roles["sales-rep" if i % 10 else "sales-manager"],
             is_active=True) for i in range(USERS)])
    rep = users[1]
    teams = Team.objects.bulk_create([Team(name=f"Team {t}") for t in range(TEAMS)])
    TeamMembership.objects.bulk_create(
        [TeamMembership(user=u, team=teams[i % TEAMS]) for i, u in enumerate(users)]
        + [TeamMembership(user=rep, team=teams[5])])
    services.sharing_default_set(actor=None, object_type="people.person", access=Access.PRIVATE)
    for n in range(RULES):
        owner_team = teams[n % TEAMS] if n % 2 == 0 else None
        criteria = {"country": COUNTRIES[n % len(COUNTRIES)]} if n % 2 == 1 else None
        target = {"target_role": roles["sales-rep"], "target_team": None} if n % 5 == 0 else \
            {"target_role": None, "target_team": teams[(n * 3 + 1) % TEAMS]}
        services.sharing_rule_save(actor=None, name=f"Rule {n}", object_type="people.person",
                                   owner_team=owner_team, criteria=criteria,
                                   access=Access.READ_WRITE if n % 3 == 0 else Access.READ, **target)

    fake = Faker(["en_GB", "de_DE", "fr_FR"])
    fake.seed_instance(7)
    given_pool = [fake.first_name() for _ in range(2000)]
    family_pool = [fake.last_name() for _ in range(4000)]
    batch: list[Person] = []
    for i in range(size):
        given, family = rng.choice(given_pool), rng.choice(family_pool)
        batch.append(Person(given_name=given, family_name=family, given_key=fold(given)[:100],
                            family_key=fold(family)[:100], country=rng.choice(COUNTRIES),
                            owner=users[rng.randrange(USERS)]))
        if len(batch) >= 5000 or i == size - 1:
            Person.objects.bulk_create(batch, batch_size=1000)
            batch = []
    ids = list(Person.objects.order_by("?").values_list("pk", flat=True)[:SHARES])
    RecordShare.objects.bulk_create([
        RecordShare(object_type="people.person", object_id=pk, access=Access.READ,
                    user=users[rng.randrange(USERS)] if n % 3 else None,
                    team=None if n % 3 else teams[rng.randrange(TEAMS)])
        for n, pk in enumerate(ids)], batch_size=1000)
    return rep, users


if __name__ == "__main__":
    main()
