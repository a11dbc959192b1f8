"""A3 — the kill test: an import of 50,000 rows in a subprocess is SIGKILLed mid-way and resumed;
the database must equal the one an uninterrupted import of the same file produces.

Two fresh databases of the vendor under test (SQLite files, or PostgreSQL databases created
beside the test database) are migrated by subprocesses; import A runs ``rapport import`` and
is killed once a third of the rows are committed, then ``rapport import --resume``; import B
runs the same file in one go, at the same time. Both are then dumped by content and compared.
A reads ahead in two more processes (``imports.pipeline``, killed with it; the resumed run too),
B does not, and leaves its contact points' digest and count rows to the triggers.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

import rapport

pytestmark = pytest.mark.django_db(transaction=True)

# The issue asks for 50,000 rows, and the size matters: with 50 chunks the kill lands well inside
# the run (after a third), resumed chunks find people created before the kill, and the file is
# large enough that a resume re-reading or re-applying rows would show in the counts. It is the
# slowest imports test (two 50,000-row imports side by side, a couple of minutes on 2 cores);
# a smaller file would prove less, so it stays.
ROWS = 50_000
CHUNK = 1000
SRC = str(Path(rapport.__file__).resolve().parents[1])

SETUP = """
import django; django.setup()
from rapport.access.models import User
User.objects.create_superuser("importer", "importer@staff.test", "correct-horse-battery-9")
from rapport.people.services import person_create, ContactPointInput
for i in range(0, 2000, 7):  # people who already exist (some rows of the file are them)
    person_create(actor=None, given_name=f"Existing{i}", family_name=f"Family{i % 50}",
                  contact_points=[ContactPointInput(kind="email", value=f"person{i}@example.com")])
"""

DUMP = """
import json, django; django.setup()
from rapport.imports.tests.test_kill import content_dump
print(json.dumps(content_dump()))
"""


def content_dump() -> dict:
    """The database by content, like ``test_services.snapshot`` but from flat queries: model
    instances with prefetching took minutes for 40,000 people on PostgreSQL."""
    from collections import defaultdict

    from rapport.imports.models import Import
    from rapport.people.models import ContactPoint, Employment, Organisation, Person

    points, jobs, tags = defaultdict(list), defaultdict(list), defaultdict(list)
    for person_id, *point in ContactPoint.objects.values_list(
            "person_id", "kind", "value", "normalised", "search_key", "label", "primary").order_by():
        points[person_id].append(tuple(point))
    for person_id, org, title, start, end in Employment.objects.values_list(
            "person_id", "organisation__name", "title", "start_date", "end_date").order_by():
        jobs[person_id].append((org, title, str(start), str(end)))
    for person_id, name in Person.tags.through.objects.values_list("person_id", "tag__name").order_by():
        tags[person_id].append(name)
    people = sorted([
        *values, sorted(points[pk]), sorted(jobs[pk]), sorted(tags[pk])]
        for pk, *values in Person.objects.values_list(
            "pk", "honorific", "given_name", "middle_names", "family_name", "preferred_name", "country",
            "language", "timezone", "notes", "given_key", "family_key", "version").order_by())
    imp = Import.objects.get()
    return {"people": json.loads(json.dumps(people)), "derived": derived_dump(), "counts": imp.counts,
            "status": imp.status,
            "next_row": imp.next_row, "totals": [Person.objects.count(), ContactPoint.objects.count(),
                                                 Employment.objects.count(), Organisation.objects.count()]}


def derived_dump() -> dict:
    """The contact points' digest rows and per-kind counts by content (decision 0028: the import
    writes them itself; the uninterrupted run below leaves them to the triggers)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pe.given_name, pe.family_name, p.kind, p.normalised, d.version, d.digest, d.canonical "
                       "FROM people_contactpoint p JOIN people_person pe ON pe.id = p.person_id "
                       "LEFT JOIN privacy_contactdigest d ON d.point_id = p.id")
        digests = sorted(json.loads(json.dumps(cursor.fetchall())), key=repr)
        cursor.execute("SELECT pe.given_name, pe.family_name, c.kind, c.n FROM imports_pointkindcount c "
                       "LEFT JOIN people_person pe ON pe.id = c.person_id")
        counts = sorted(json.loads(json.dumps(cursor.fetchall())), key=repr)
        cursor.execute("SELECT COUNT(*) FROM privacy_contactdigest")
        total = cursor.fetchone()[0]
    return {"digests": digests, "counts": counts, "digest_rows": total}


def write_file(path: Path) -> None:
    """50,000 rows: ~20% repeat an earlier row or an existing person, in another format."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["First name", "Last name", "Email", "Mobile", "Company", "Job title", "Tags"])
        for i in range(ROWS):
            n = i - 997 if i % 5 == 0 and i >= 997 else i  # every fifth row is someone seen before
            email = f"Person{n}@Example.com" if n != i else f"person{n}@example.com"
            phone = f"+44 7{400000000 + n:09d}" if n % 3 else f"07{400000000 + n:09d}"
            writer.writerow([f"Given{n}", f"Family{n % 50}", email if n % 4 else "", phone,
                             f"Company {n % 40}", "Buyer" if n % 2 else "", f"t{n % 3}; shared"])


def database_urls(tmp_path: Path) -> tuple[list[str], list[str]]:
    """Two empty databases of the vendor under test; returns their URLs and what to drop after."""
    if connection.vendor == "sqlite":
        return [f"sqlite:///{tmp_path / name}.sqlite3" for name in ("a", "b")], []
    db = settings.DATABASES["default"]
    names = [f"rapport_kill_{name}_{uuid.uuid4().hex[:8]}" for name in ("a", "b")]
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f'CREATE DATABASE "{name}"')
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return [f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{name}" for name in names], names


def env_for(url: str, tmp_path: Path, name: str) -> dict[str, str]:
    var = tmp_path / f"var-{name}"
    var.mkdir(exist_ok=True)
    return {**os.environ, "DATABASE_URL": url, "RAPPORT_VAR_DIR": str(var), "SECRET_KEY": "kill-test-not-secret",
            "DJANGO_SETTINGS_MODULE": "rapport.settings", "PYTHONPATH": SRC, "RAPPORT_LOG_LEVEL": "ERROR",
            "RAPPORT_CLI_USER": "importer"}


def rapport_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rapport", *args]


def progress(url: str) -> tuple[int, str] | None:
    """(next_row, status) of the import in the database at ``url``, read without Django."""
    try:
        if url.startswith("sqlite"):
            with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=1) as db:
                row = db.execute("SELECT next_row, status FROM imports_import").fetchone()
        else:
            import psycopg

            with psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=2) as db:
                row = db.execute("SELECT next_row, status FROM imports_import").fetchone()
    except Exception:  # the table may not exist yet
        return None
    return (int(row[0]), row[1]) if row else None


def test_killed_import_resumes_to_the_same_database(tmp_path):
    # given the same file and the same starting data in two fresh databases
    data = tmp_path / "people.csv"
    write_file(data)
    urls, created_dbs = database_urls(tmp_path)
    envs = [env_for(url, tmp_path, name) for url, name in zip(urls, "ab", strict=True)]
    try:
        migrations = [subprocess.Popen(rapport_cmd("migrate", "-v0"), env=e) for e in envs]
        assert [m.wait(timeout=300) for m in migrations] == [0, 0]
        setups = [subprocess.Popen([sys.executable, "-c", SETUP], env=e) for e in envs]
        assert [s.wait(timeout=300) for s in setups] == [0, 0]
        command = rapport_cmd("import", str(data), "--mapping", "auto", "--chunk-size", str(CHUNK))
        # when A is killed a third of the way in, while B runs uninterrupted
        # A reads ahead in two more processes (imports.pipeline, chunks taken from them in turn,
        # decision 0020), B in one: equal databases prove the resume exact and the read-ahead the
        # same as the plain run
        # A writes its points' digest and count rows itself (the default, decision 0028), B leaves
        # them to the triggers: equal rows prove them exact, through a kill and a resume too
        envs = [{**envs[0], "RAPPORT_IMPORT_READ_AHEAD": "on", "RAPPORT_IMPORT_READERS": "2"},
                {**envs[1], "RAPPORT_IMPORT_READ_AHEAD": "off", "RAPPORT_IMPORT_POINTS_DERIVED_BY": "triggers"}]
        victim = subprocess.Popen(command, env=envs[0], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        steady_log = (tmp_path / "steady.log").open("w+")  # a file, not a pipe nobody reads while it runs
        steady = subprocess.Popen(command, env=envs[1], stdout=subprocess.DEVNULL, stderr=steady_log)
        deadline = time.monotonic() + 600  # generous: the machine may be shared
        state = None
        while time.monotonic() < deadline:
            state = progress(urls[0])
            if state and state[0] >= ROWS // 3:
                break
            assert victim.poll() is None, "the import finished or died before it could be killed"
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = progress(urls[0])
        assert killed_at is not None and ROWS // 3 <= killed_at[0] < ROWS and killed_at[1] == "running"
        assert killed_at[0] % CHUNK == 0  # only whole chunks were committed
        # and A is resumed
        import_id = subprocess.run(rapport_cmd("import", "--list"), env=envs[0], capture_output=True, text=True,
                                   check=True).stdout.split()[0]
        resumed = subprocess.run(rapport_cmd("import", "--resume", import_id), env=envs[0], capture_output=True,
                                 text=True, timeout=900)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert steady.wait(timeout=900) == 0, (tmp_path / "steady.log").read_text()[-2000:]
        steady_log.close()
        # then both databases hold exactly the same people, jobs, organisations and counts
        dumps = [json.loads(subprocess.run([sys.executable, "-c", DUMP], env=e, capture_output=True, text=True,
                                           check=True, timeout=300).stdout) for e in envs]
        a, b = dumps
        assert a["status"] == b["status"] == "completed" and a["next_row"] == b["next_row"] == ROWS
        assert a["totals"] == b["totals"]
        assert a["counts"] == b["counts"]
        assert a["counts"]["merged"] + a["counts"].get("updated", 0) + a["counts"].get("unchanged", 0) >= ROWS // 6
        assert a["people"] == b["people"]
        assert a["derived"] == b["derived"] and a["derived"]["digest_rows"] == a["totals"][1]
    finally:
        for name in created_dbs:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
