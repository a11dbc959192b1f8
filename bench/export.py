"""Export throughput and memory (A3), against a plain SELECT of the same people written with csv.

    flock /tmp/rapport-bench.lock .venv/bin/python bench/export.py [--size 1000000] [--postgres]
    .venv/bin/python -u bench/export.py --size 1000000 [--postgres] --lock /tmp/rapport-bench.lock

(``--lock``: the data is loaded without the lock, the measurements wait for it. ``--keep FILE``
(a SQLite file) or ``--keep postgres://…`` (an existing database): loaded there and kept, or,
already loaded, measured as it is — loading a million people takes a quarter of an hour on the
shared machine.)

1. Loads ``size`` people straight into the tables (raw ``executemany`` on SQLite, ``COPY`` on
   PostgreSQL; no services, it is the export being measured): everyone has an email, half a
   phone, a tenth a second email, one in twenty a postal address, a fifth one or two tags, a
   tenth a current job (and some a former one); notes with commas, quotes, newlines and
   leading ``=``/``+``/``-``/``@``; one person in ten lives in GB.
2. In a child process each (so the memory figures are the export's own):
   - baseline: the people's own columns read with a plain cursor and written with
     ``csv.writer`` (no contact points, tags, jobs, visibility, field security or audit);
   - ``export_people(fmt="csv", filters={"country": "GB"})`` — a tenth of the people;
   - ``export_people(fmt="csv")`` — everyone, the path the UI, API and CLI use (visibility,
     field security, formula neutralising, the access audit of every exported person).
3. Prints rows/s wall and per CPU-second of the child and the export's worker processes (the
   database server's CPU is on top on PostgreSQL, and printed in its own column when /proc
   shows the server's processes; on SQLite the engine runs in the child), the ratio to the
   baseline, the peak anonymous memory (``RssAnon``, sampled every 20 ms, of the child or an
   export worker, whichever is larger: what the export allocates; SQLite's memory-mapped database
   file is not in it, decision 0025) and the peak RSS with file pages (``VmHWM``) at a tenth and
   at the full size, and checks the audit chain.

Goal: ≥ 50,000 rows/s (wall) for 1,000,000 people on SQLite and PostgreSQL; memory flat.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, ServerCPU, bench_args, boot

BATCH = 10_000
GIVEN = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Margaret",
         "Dennis", "Katherine", "John", "Sophie", "Jürgen", "Zoë", "Émile", "Siobhán", "Łukasz"]
FAMILY = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman",
          "Berners-Lee", "Hamilton", "Ritchie", "Johnson", "Backus", "Wilson", "Müller", "Ó Briain", "Nowak",
          "García", "Smith"]
NOTES = ["", "", "", "Met at the fair, likes \"tea\"", "=1+2", "+44 call first", "-", "@handle, line one\nline two"]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return _child(sys.argv[2], sys.argv[3])
    lock = _lock_option() or os.environ.get("RAPPORT_BENCH_LOCK", "")
    keep = _keep_option()
    args = bench_args("export rows/s vs a plain SELECT written with csv", default_size=1_000_000)
    vendor = boot(args)
    from django.db import connection

    from rapport.access.models import User
    from rapport.people.models import Person

    size = args.size
    print(f"{vendor}: {size:,} people (2 cores, shared with other work)")
    if keep and Person.objects.exists():
        size = Person.objects.count()
        print(f"kept database {keep}: {size:,} people already loaded")
    else:
        User.objects.create_superuser("bench", "bench@example.com", "bench-not-secret-9")
        start = time.perf_counter()
        _load(size, connection)
        print(f"loaded {size:,} people in {time.perf_counter() - start:.1f}s")
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    connection.close()

    if lock:  # loading is not measured: only the measurements wait for the shared benchmark lock
        import fcntl

        waited = time.perf_counter()
        handle = open(lock, "a")  # noqa: SIM115 - held until the process ends
        fcntl.flock(handle, fcntl.LOCK_EX)
        print(f"benchmark lock {lock} taken after {time.perf_counter() - waited:.0f}s")
    base = _run_child("baseline")
    tenth = _run_child("export-gb")
    full = _run_child("export")

    print()
    postgres = vendor == "postgresql" and all(r.get("server_cpu") is not None for r in (base, tenth, full))
    print(f"{'operation':<46}{'rows':>10}{'wall s':>8}{'rows/s':>9}{'CPU s':>8}{'rows/CPU-s':>11}"
          f"{'×base CPU':>10}{'peak RSS MB':>12}{'anon MB':>8}" + (f"{'server CPU s':>13}" if postgres else ""))
    base_per_row = base["cpu"] / base["rows"]
    for name, r in (("plain SELECT + csv.writer (baseline)", base),
                    ("export_people CSV, country=GB (1/10)", tenth),
                    ("export_people CSV (everyone)", full)):
        print(f"{name:<46}{r['rows']:>10,}{r['wall']:>8.1f}{r['rows'] / r['wall']:>9,.0f}{r['cpu']:>8.1f}"
              f"{r['rows'] / r['cpu']:>11,.0f}{(r['cpu'] / r['rows']) / base_per_row:>10.2f}{r['rss_mb']:>12.0f}"
              f"{r['anon_mb']:>8.0f}"
              + (f"{r['server_cpu']:>13.1f}" if postgres else ""))
    print()
    rate = full["rows"] / full["wall"]
    verdict = "meets" if rate >= 50_000 else "MISSES"
    print(f"{vendor}: export {rate:,.0f} rows/s wall ({full['rows'] / full['cpu']:,.0f} per CPU-second of the "
          f"exporting processes{'; server CPU on top' if vendor == 'postgresql' else ''}) {verdict} the 50,000 "
          f"rows/s goal; {full['wall'] / base['wall']:.2f}× the baseline's wall, "
          f"{(full['cpu'] / full['rows']) / base_per_row:.2f}× its CPU per row")
    print(f"{vendor}: peak anonymous memory {tenth['anon_mb']:.0f} MB at {tenth['rows']:,} rows, "
          f"{full['anon_mb']:.0f} MB at {full['rows']:,} rows (×{full['anon_mb'] / tenth['anon_mb']:.2f}); "
          f"peak RSS with file pages {tenth['rss_mb']:.0f} / {full['rss_mb']:.0f} MB")
    _check_audit(full["rows"] + tenth["rows"])


def _lock_option() -> str:
    """``--lock PATH``: take the shared benchmark lock (flock) for the measurements only."""
    if "--lock" not in sys.argv:
        return ""
    at = sys.argv.index("--lock")
    path = sys.argv[at + 1]
    del sys.argv[at:at + 2]  # bench_args does not know it; --postgres re-runs with what is left…
    os.environ["RAPPORT_BENCH_LOCK"] = path  # …and the re-run finds it here
    return path


def _keep_option() -> str:
    """``--keep FILE|URL``: the SQLite file (or PostgreSQL database) to load into, or to measure as it is."""
    if "--keep" not in sys.argv:
        return ""
    at = sys.argv.index("--keep")
    target = sys.argv[at + 1]
    del sys.argv[at:at + 2]
    if target.startswith(("postgres://", "postgresql://")):
        os.environ["DATABASE_URL"] = target
        return target
    path = str(Path(target).resolve())
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    os.environ.setdefault("RAPPORT_VAR_DIR", str(Path(path).parent))
    return path


def _load(size: int, connection) -> None:
    """People, contact points, tags and jobs written straight into their tables."""
    from django.db import transaction

    from rapport.core.search import fold
    from rapport.people.models import ContactPoint, Employment, Organisation, Person, Tag

    rng = random.Random(6)
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    tags = [Tag.objects.create(name=f"tag-{n}") for n in range(10)]
    orgs = [Organisation.objects.create(name=f"Company {n}, Ltd", name_key=f"company{n}") for n in range(100)]
    person_tags = Person.tags.through
    writers = {model: _Writer(model, connection) for model in (Person, ContactPoint, Employment, person_tags)}
    for start in range(0, size, BATCH):
        with transaction.atomic():
            for i in range(start, min(size, start + BATCH)):
                pid = uuid.uuid4()
                given, family = GIVEN[i % len(GIVEN)], FAMILY[(i * 7) % len(FAMILY)]
                at = now + dt.timedelta(seconds=i, microseconds=rng.randrange(0, 1_000_000, 7))
                writers[Person].add(id=pid, given_name=given, family_name=family, given_key=fold(given),
                                    family_key=fold(family), country="GB" if i % 10 == 0 else ("FR" if i % 3 else ""),
                                    language="en-GB" if i % 2 else "", notes=NOTES[i % len(NOTES)],
                                    created_at=at, updated_at=at)
                points = [("email", f"p{i}@example.com", "", True)]
                if i % 2 == 0:
                    points.append(("phone", f"+44 7700 {i % 1_000_000:06d}", "mobile", True))
                if i % 10 == 3:
                    points.append(("email", f"p{i}@work.example", "work", False))
                if i % 20 == 7:
                    points.append(("address", f"{i} High Street\nLondon\nNW1 {i % 9}AB", "home", False))
                for n, (kind, value, label, primary) in enumerate(points):
                    writers[ContactPoint].add(id=uuid.uuid4(), person_id=pid, kind=kind, value=value, label=label,
                                              normalised=value.lower(), search_key=value.lower()[:200],
                                              primary=primary, created_at=at + dt.timedelta(microseconds=n),
                                              updated_at=at)
                if i % 5 == 1:
                    for tag in {tags[i % 10], tags[(i // 10) % 10]}:
                        writers[person_tags].add(person_id=pid, tag_id=tag.pk)
                if i % 10 == 4:
                    writers[Employment].add(id=uuid.uuid4(), person_id=pid, organisation_id=orgs[i % 100].pk,
                                            title="Analyst, Research" if i % 3 else "=Head", start_date=dt.date(2020, 1, 1),
                                            end_date=None, created_at=at, updated_at=at)
                    if i % 30 == 4:
                        writers[Employment].add(id=uuid.uuid4(), person_id=pid, organisation_id=orgs[(i + 1) % 100].pk,
                                                title="Intern", start_date=dt.date(2015, 1, 1),
                                                end_date=dt.date(2019, 12, 31), created_at=at, updated_at=at)
            for writer in writers.values():
                writer.flush()


class _Writer:
    """Rows for one table: every column, the unnamed ones at their model default."""

    def __init__(self, model, connection) -> None:
        from django.db.models.fields import AutoFieldMixin

        self.connection = connection
        self.fields = [f for f in model._meta.concrete_fields if not isinstance(f, AutoFieldMixin)]
        self.table = model._meta.db_table
        self.defaults = {f.attname: f.get_default() for f in self.fields}
        self.rows: list[list] = []

    def add(self, **values) -> None:
        row = {**self.defaults, **values}
        self.rows.append([f.get_db_prep_save(row[f.attname], self.connection) for f in self.fields])

    def flush(self) -> None:
        if not self.rows:
            return
        quote = self.connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in self.fields)
        if self.connection.vendor == "postgresql":
            with self.connection.cursor() as cursor, \
                    cursor.cursor.copy(f"COPY {quote(self.table)} ({columns}) FROM STDIN") as copy:
                for row in self.rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(self.fields))
            with self.connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {quote(self.table)} ({columns}) VALUES ({marks})", self.rows)
        self.rows = []


def _run_child(what: str) -> dict:
    env = {**os.environ, "RAPPORT_LOG_LEVEL": "ERROR", "PYTHONPATH": str(ROOT / "src")}
    child = subprocess.Popen([sys.executable, __file__, "--child", what, os.environ["DATABASE_URL"]], env=env,
                             stdout=subprocess.PIPE, text=True)
    sampler = _AnonSampler(child.pid)  # a thread here, not in the child: the export forks only when single-threaded
    output = child.stdout.read() if child.stdout else ""
    sampler.stop()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        sys.exit(f"{what} failed (status {status}):\n{output[-3000:]}")
    result = json.loads(output.strip().splitlines()[-1])
    # the child's own figure: wait4's ru_maxrss keeps the high-water mark this process had when
    # it started the child (Linux carries it over the exec), e.g. after a migration's back-fill
    result["rss_mb"] = result.get("rss_mb") or usage.ru_maxrss / 1024
    result["anon_mb"] = sampler.peak_kb / 1024
    server = "" if result.get("server_cpu") is None else f" (+{result['server_cpu']:.1f}s server CPU)"
    print(f"{what}: {result['rows']:,} rows in {result['wall']:.1f}s wall, {result['cpu']:.1f}s CPU{server}, "
          f"peak RSS {result['rss_mb']:.0f} MB, peak anonymous {result['anon_mb']:.0f} MB")
    return result


class _AnonSampler:
    """The largest RssAnon (memory the process allocated: heap, stacks; not file pages such as
    SQLite's memory-mapped database, decision 0025) of the child or any of its descendants,
    sampled every 20 ms from /proc while it runs."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.peak_kb, self._done = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(0.02):
            for pid in self._tree(self.pid):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("RssAnon:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                        break

    def _tree(self, pid: int) -> list[int]:
        found, todo = [], [pid]
        while todo:
            current = todo.pop()
            found.append(current)
            with contextlib.suppress(OSError):  # gone already
                todo += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        return found


def _child(what: str, database_url: str) -> None:
    """One measurement in this fresh process: the time and CPU of the export alone (not start-up)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")
    import django

    django.setup()
    from django.db import connection

    from rapport.access.models import User
    from rapport.imports.exports import export_people

    user = User.objects.get(username="bench")
    connection.ensure_connection()
    server = ServerCPU(connection)
    start, cpu, workers = time.perf_counter(), time.process_time(), _children_cpu()
    if what == "baseline":
        rows = _baseline(connection)
    else:
        export = export_people(user=user, fmt="csv", filters={"country": "GB"} if what == "export-gb" else None)
        newlines = quoted = 0
        with open(os.devnull, "wb") as sink:
            for chunk in export.chunks:
                sink.write(chunk)
                newlines += chunk.count(b"\r\n")
                quoted += chunk.count(b"\n") - chunk.count(b"\r\n")  # newlines inside quoted cells
        rows = newlines - 1  # the header
    # CPU: this process and the export's worker processes (joined by then, so in os.times())
    print(json.dumps({"rows": rows, "wall": time.perf_counter() - start,
                      "cpu": time.process_time() - cpu + _children_cpu() - workers, "server_cpu": server.used(),
                      "rss_mb": _peak_rss_mb()}))


def _peak_rss_mb() -> float | None:
    """The peak RSS of this process since its exec (VmHWM) or of any export worker it joined,
    whichever is larger; None where /proc cannot be read."""
    import resource

    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    own = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024 or None


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


class _Sink:
    def write(self, value: str) -> int:
        return len(value)


def _baseline(connection) -> int:
    """The people's columns, a plain cursor, csv.writer, UTF-8: what any export must at least do."""
    columns = ("id", "honorific", "given_name", "middle_names", "family_name", "preferred_name", "language",
               "timezone", "country", "notes", "created_at", "updated_at")
    rows = 0
    with connection.cursor() as cursor, open(os.devnull, "wb") as sink:
        cursor.execute(f"SELECT {', '.join(columns)} FROM people_person ORDER BY id")
        while batch := cursor.fetchmany(5000):
            out = _Buffer()
            csv.writer(out, lineterminator="\r\n").writerows(batch)
            sink.write(out.text().encode("utf-8"))
            rows += len(batch)
    return rows


class _Buffer:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, value: str) -> None:
        self.parts.append(value)

    def text(self) -> str:
        return "".join(self.parts)


def _check_audit(exported: int) -> None:
    from rapport.access import audit

    start = time.perf_counter()
    report = audit.verify_chain()
    print(f"audit verify: {'intact' if report.ok else report.problem}, {report.checked:,} entries "
          f"in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
