"""Import throughput and memory (A3), against a raw bulk insert of the same rows.

    .venv/bin/python bench/import.py [--size 1000000] [--postgres] [--lock /tmp/rapport-bench.lock]

``--lock``: the shared benchmark lock is taken for each measurement (probe, import, baseline)
and let go between them, and not held while the existing people and the files are made (a
full-size run would hold it too long).

1. Pre-loads ``size / 5`` existing people (an email each, a phone for every other one), raw.
2. Writes a CSV of ``size`` rows: every fifth row is an existing person written differently
   (email in capitals, phone in international format; half of them did not have the phone yet,
   so their row adds it), the others are new people; plus a probe file of ``size / 10`` further new people.
3. Imports the probe file, then the main file, each with ``rapport import FILE --mapping auto``
   in a child process (the real command: upload copy, inspection, normalisation of every
   email/phone/name, set-based de-duplication against the database and within the file,
   chunked transactions, undo ledger, audit). Wall time gives rows/s; the child's peak RSS
   (``wait4`` → ``ru_maxrss``) at both sizes shows whether memory grows with the file. CPU:
   the child's (with its read-ahead process, whose share is sampled from ``/proc``) and on
   PostgreSQL the server's (the postmaster's process tree), shown apart.
4. Baseline, same run, same database: the main file's rows read with ``csv`` and inserted raw
   (no normalisation, no matching): one prepared ``INSERT`` with ``executemany`` (SQLite) or
   ``COPY`` (PostgreSQL) of ``Person`` + two ``ContactPoint`` rows per row, committed every
   2,000 rows, with the ids the import gives new rows (``imports.bulk.new_hex_ids``: one random
   prefix per chunk, decision 0020 — from round 5; before, ``uuid4``, which scatters every
   insert over the id indexes and made the baseline itself ~2× slower at these sizes) and, on
   SQLite, the import's page cache (``imports.bulk.tune_connection``).

Goals: import ≥ 5,000 rows/s (1,000,000 rows < 4 minutes) on SQLite and PostgreSQL; peak RSS
about the same at 1/10 of the size and at the full size. (Export speed: ``bench/export.py``.)
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, ServerCPU, bench_args, boot

BATCH = 5000
CHUNK = 2000  # the import's default chunk: the baseline commits as often
GIVEN = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Margaret",
         "Dennis", "Katherine", "John", "Sophie", "Jürgen", "Zoë", "Émile", "Siobhán", "Łukasz"]
FAMILY = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman",
          "Berners-Lee", "Hamilton", "Ritchie", "Johnson", "Backus", "Wilson", "Müller", "Ó Briain", "Nowak",
          "García", "Smith"]


def main() -> None:
    lock = _lock_option()
    args = bench_args("import throughput vs raw bulk insert", default_size=1_000_000)
    # uploads are copied under the var dir: a throw-away one (kept across the --postgres re-run)
    os.environ.setdefault("RAPPORT_VAR_DIR", tempfile.mkdtemp(prefix="rapport-bench-var-"))
    vendor = boot(args)
    from rapport.access.models import User

    size = args.size
    existing = size // 5
    work = Path(tempfile.mkdtemp(prefix="rapport-bench-import-"))
    User.objects.create_superuser("bench", "bench@example.com", "bench-not-secret-9")
    print(f"{vendor}: {size:,} rows, {existing:,} existing people (2 cores, shared with other work)")

    start = time.perf_counter()
    _preload(existing)
    print(f"pre-loaded {existing:,} existing people in {time.perf_counter() - start:.1f}s")
    main_file, probe_file = work / "people.csv", work / "probe.csv"
    _write_file(main_file, size, existing, prefix="p")
    _write_file(probe_file, size // 10, 0, prefix="probe")
    print(f"files: {main_file.stat().st_size / 1e6:.0f} MB and {probe_file.stat().st_size / 1e6:.0f} MB")

    from django.db import connection

    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    server = ServerCPU(connection)
    with _BenchLock(lock, "the probe import"):
        probe = _import_child(probe_file, server)
    with _BenchLock(lock, "the import"):
        full = _import_child(main_file, server)
    with _BenchLock(lock, "the baseline"):
        before = server.used()
        baseline, baseline_cpu = _baseline(main_file)
        baseline_server = None if before is None else server.used() - before

    # wall time on a shared machine depends on the other work; CPU seconds of our process (the
    # import's child, or this process) do not, so both are shown (database server CPU not included)
    print()
    print(f"{'operation':<44}{'rows':>10}{'wall s':>8}{'rows/s':>9}{'×base':>7}{'CPU s':>8}{'rows/CPU-s':>11}"
          f"{'×base':>7}{'peak RSS MB':>12}" + (f"{'server CPU s':>13}" if vendor == "postgresql" else ""))
    lines = [("raw INSERT/COPY Person+ContactPoint (base)", size, baseline, baseline_cpu, None),
             ("rapport import, probe (1/10 size)", size // 10, probe["seconds"], probe["cpu"], probe["rss_mb"]),
             ("rapport import (normalise + de-duplicate)", size, full["seconds"], full["cpu"], full["rss_mb"])]
    servers = [baseline_server, probe["server_cpu"], full["server_cpu"]]
    for (name, rows, wall, cpu, rss), server_cpu in zip(lines, servers, strict=True):
        per_row_wall, per_row_cpu = (wall / rows) / (baseline / size), (cpu / rows) / (baseline_cpu / size)
        print(f"{name:<44}{rows:>10,}{wall:>8.1f}{rows / wall:>9,.0f}{per_row_wall:>7.1f}{cpu:>8.1f}"
              f"{rows / cpu:>11,.0f}{per_row_cpu:>7.1f}{(f'{rss:.0f}' if rss else ''):>12}"
              + (f"{server_cpu:>13.1f}" if server_cpu is not None else ""))
    rate, cpu_rate = size / full["seconds"], size / full["cpu"]
    print()
    print(f"import outcome: {full['summary']}")
    verdict = "meets" if rate >= 5000 else "MISSES"
    print(f"{vendor}: import {rate:,.0f} rows/s wall ({cpu_rate:,.0f} rows per CPU-second) {verdict} the 5,000 "
          f"rows/s goal ({full['seconds'] / 60:.1f} min for {size:,}); {full['seconds'] / baseline:.1f}× the raw "
          f"insert's wall time, {full['cpu'] / baseline_cpu:.1f}× its CPU")
    server_note = (f"; the database server {full['server_cpu']:.1f}s on top" if full["server_cpu"] is not None
                   else " (the database engine runs in the process)")
    print(f"{vendor}: import CPU {full['cpu']:.1f}s = the run's own process {full['cpu'] - full['reader_cpu']:.1f}s + "
          f"read-ahead {full['reader_cpu']:.1f}s (sampled){server_note}")
    print(f"{vendor}: peak RSS {probe['rss_mb']:.0f} MB at {size // 10:,} rows, {full['rss_mb']:.0f} MB at "
          f"{size:,} rows (×{full['rss_mb'] / probe['rss_mb']:.2f})")


def _person_row(i: int, rng: random.Random, prefix: str) -> tuple[str, str, str, str]:
    given, family = GIVEN[i % len(GIVEN)], FAMILY[(i * 7) % len(FAMILY)]
    base = {"e": 400_000_000, "p": 500_000_000}.get(prefix, 600_000_000)  # distinct phones per population
    return given, family, f"{prefix}{i}.{i % 97}@example.com", f"07{base + i:09d}"


def _preload(count: int) -> None:
    """``count`` existing people (email, and a phone for every other one), inserted raw: the
    ORM's ``bulk_create`` took minutes for the 200,000 of a full-size run."""
    import datetime as dt
    import uuid

    from django.db import connection, transaction

    from rapport.core.search import fold
    from rapport.identity.normalise import normalise_email, normalise_phone
    from rapport.people.models import ContactPoint, Person

    person = _RawTable(Person, ["id", "created_at", "updated_at", "given_name", "family_name", "given_key",
                                "family_key"])
    point = _RawTable(ContactPoint, ["id", "created_at", "updated_at", "person_id", "kind", "value", "normalised",
                                     "search_key", "primary"])
    native_uuid = connection.features.has_native_uuid_field
    rng = random.Random(1)
    for start in range(0, count, BATCH):
        now = connection.ops.adapt_datetimefield_value(dt.datetime.now(dt.UTC))
        people, points = [], []
        for i in range(start, min(count, start + BATCH)):
            given, family, email, phone = _person_row(i, rng, "e")
            pid = uuid.uuid4() if native_uuid else uuid.uuid4().hex
            people.append((pid, now, now, given, family, fold(given)[:100], fold(family)[:100]))
            for kind, value in (("email", email), ("phone", phone)):
                if kind == "phone" and i % 2:
                    continue  # half of them have no phone yet: their row in the file adds it (an update)
                normalised = normalise_email(value) if kind == "email" else normalise_phone(value, "GB")
                points.append((uuid.uuid4() if native_uuid else uuid.uuid4().hex, now, now, pid, kind, value,
                               normalised.normalised, normalised.search_key, True))
        with transaction.atomic():
            person.insert(people)
            point.insert(points)


def _write_file(path: Path, rows: int, existing: int, *, prefix: str) -> None:
    """``rows`` rows; with ``existing``, every fifth row is existing person ``i // 5`` written otherwise."""
    rng = random.Random(2)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["First Name", "Last Name", "E-mail", "Mobile phone"])
        for i in range(rows):
            if existing and i % 5 == 0 and i // 5 < existing:
                given, family, email, phone = _person_row(i // 5, rng, "e")
                writer.writerow([given, family, email.upper(), f"+44 7{phone[2:5]} {phone[5:]}"])
            else:
                given, family, email, phone = _person_row(i, rng, prefix)
                writer.writerow([given, family, email, f"{phone[:5]} {phone[5:]}"])


def _import_child(path: Path, server: ServerCPU) -> dict:
    """Run ``rapport import`` in a child process; wall time, CPU (its own, its read-ahead
    process's, the database server's), peak RSS and its summary line."""
    server_before = server.used()
    env = {**os.environ, "RAPPORT_CLI_USER": "bench", "RAPPORT_LOG_LEVEL": "ERROR",
           "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "rapport", "import", str(path), "--mapping", "auto"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    helpers = _HelperCPU(child.pid)
    output = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    helpers.stop()
    if status != 0:
        sys.exit(f"rapport import {path.name} failed (status {status}):\n{output[-3000:]}")
    summary = ", ".join(" ".join(line.split()) for line in output.splitlines()[1:10] if line.startswith("  "))
    cpu = usage.ru_utime + usage.ru_stime
    server_cpu = None if server_before is None else server.used() - server_before
    print(f"imported {path.name}: {seconds:.1f}s; {summary[:300]}")
    print(f"  CPU {cpu:.1f}s: read-ahead process {helpers.seconds:.1f}s (sampled every {_HelperCPU.EVERY}s), "
          f"the run's own process {cpu - helpers.seconds:.1f}s")
    return {"seconds": seconds, "cpu": cpu, "rss_mb": usage.ru_maxrss / 1024, "summary": summary[:400],
            "reader_cpu": helpers.seconds, "server_cpu": server_cpu}


def _lock_option() -> str:
    """``--lock PATH``: take the shared benchmark lock (flock) for each measurement only, and
    let it go between them (a full-size run holds it for less than ~15 minutes at a time)."""
    if "--lock" not in sys.argv:
        return os.environ.get("RAPPORT_BENCH_LOCK", "")
    at = sys.argv.index("--lock")
    path = sys.argv[at + 1]
    del sys.argv[at:at + 2]  # bench_args does not know it; --postgres re-runs with what is left…
    os.environ["RAPPORT_BENCH_LOCK"] = path  # …and the re-run finds it here
    return path


class _BenchLock:
    """The shared benchmark lock around one measurement (nothing without ``--lock``)."""

    def __init__(self, path: str, what: str) -> None:
        self.path, self.what, self.handle = path, what, None

    def __enter__(self) -> _BenchLock:
        if self.path:
            import fcntl

            waited = time.perf_counter()
            self.handle = open(self.path, "a")
            fcntl.flock(self.handle, fcntl.LOCK_EX)
            print(f"benchmark lock taken for {self.what} after {time.perf_counter() - waited:.0f}s "
                  f"({time.strftime('%H:%M:%S')}, load average {os.getloadavg()[0]:.1f})")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.close()  # closing releases the flock
            print(f"benchmark lock released ({time.strftime('%H:%M:%S')})")


class _HelperCPU:
    """CPU seconds of the import's own child processes (its read-ahead process), read from
    ``/proc`` while they live: the child's ``ru_utime`` counts them with its own, and whether
    the two halves overlap on two cores depends on how the CPU splits between them."""

    EVERY = 0.2

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.seen, self.done = pid, {}, threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())

    def stop(self) -> None:
        self.done.set()
        self.thread.join()

    def _watch(self) -> None:
        while not self.done.wait(self.EVERY):
            try:
                children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            except OSError:
                continue
            for pid in children:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                self.seen[pid] = (int(fields[11]) + int(fields[12])) / self.tick  # utime, stime


def _baseline(path: Path) -> tuple[float, float]:
    """The same rows inserted raw: Person + two ContactPoints per row, values as read (no
    normalisation, no matching, no audit), as plain tuples — ``executemany`` of one prepared
    INSERT per table on SQLite, ``COPY`` on PostgreSQL — in transactions of ``CHUNK`` rows."""
    import datetime as dt

    from django.db import connection, transaction

    from rapport.imports.bulk import insert_contact_points, new_hex_ids, tune_connection
    from rapport.people.models import ContactPoint, Person

    person = _RawTable(Person, ["id", "created_at", "updated_at", "given_name", "family_name"])
    point = _RawTable(ContactPoint, ["id", "created_at", "updated_at", "person_id", "kind", "value", "normalised",
                                     "search_key"])
    tune_connection()  # the import's own SQLite page cache (decision 0020): the same for both
    start, cpu = time.perf_counter(), time.process_time()
    with path.open(newline="", encoding="utf-8") as source:
        reader = csv.reader(source)
        next(reader)
        while True:
            now = connection.ops.adapt_datetimefield_value(dt.datetime.now(dt.UTC))
            people, points = [], []
            # the ids the import gives a chunk's new rows (one random prefix per chunk, decision
            # 0020), as 32 hex digits both databases take: the same keys, so the same index work
            ids = iter(new_hex_ids(3 * CHUNK))
            for given, family, email, phone in reader:
                pid = next(ids)
                people.append((pid, now, now, given, family))
                points.append((next(ids), now, now, pid, "email", email, email, email))
                points.append((next(ids), now, now, pid, "phone", phone, phone, phone))
                if len(people) == CHUNK:
                    break
            if not people:
                break
            with transaction.atomic():
                person.insert(people)
                # the points' digest and count rows as the import writes them (decision 0028): what a
                # bulk writer must do for the same end state once the triggers skip its statements
                insert_contact_points([partial(point.insert, points)], ((p[0], p[3], p[4]) for p in points),
                                      new_people=[p[0] for p in people])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"baseline raw insert of the same rows: {seconds:.1f}s")
    return seconds, cpu


class _RawTable:
    """One prepared INSERT (or COPY) of ``columns``; the model's other columns get their defaults."""

    def __init__(self, model: type, columns: list[str]) -> None:
        from django.db import connection

        fields = {f.attname: f for f in model._meta.concrete_fields}
        template = model()
        self.constants = tuple(f.get_db_prep_save(f.pre_save(template, add=True), connection)
                               for name, f in fields.items() if name not in columns)
        names = [fields[c].column for c in columns] + [f.column for n, f in fields.items() if n not in columns]
        quote = connection.ops.quote_name
        self.table, self.names = quote(model._meta.db_table), ", ".join(quote(n) for n in names)
        self.sql = f"INSERT INTO {self.table} ({self.names}) VALUES ({', '.join(['%s'] * len(names))})"

    def insert(self, rows: list[tuple]) -> None:
        from django.db import connection

        constants = self.constants
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {self.table} ({self.names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row + constants)
            else:
                cursor.executemany(self.sql, [row + constants for row in rows])


if __name__ == "__main__":
    main()
