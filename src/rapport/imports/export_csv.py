"""A3 — the people CSV export, page by page, built in worker processes when it pays.

A million people at 50,000 rows/s leaves 20 µs per person for reading, building the cells,
writing CSV and the audit, and one process cannot do it: a plain SELECT written with
``csv.writer`` alone takes about 11 µs a person on SQLite. So, for an export of more than one
page, ``WORKERS`` forked processes build the pages (the people of a key range, their contact
points, current job and tags, the cells and the CSV text), each on its own connection, while
this process finds the page boundaries, records each page in the access audit and hands the
pages on in key order (decision 0016). A page comes back with the ids it holds, so the audit
covers exactly the people written out, whichever snapshot the page was read in.

This process is the export's only writer: the workers only read (decision 0029). On SQLite a
reader that finds the database changed by another connection since its last read drops its
memory map of the file and its page cache, so with the workers writing the audit every page
of every worker started by faulting the tables' pages in again (800,000 page faults and 8 CPU s
a million). Here the audit is written in groups of ``AUDIT_PAGES`` pages, one transaction per
group (one entry per page), and each SQLite worker reads in one snapshot for
``SNAPSHOT_PAGES`` pages, so its map survives the exporter's commits.

The rules are the serial path's: the people are the list view's queryset (visibility and
filters), cells only for the fields the role may see, formulas neutralised, every page audited
before it leaves. Workers are used only where a fork is safe (``core.forking``): outside any
transaction (a test's transaction is not visible to another connection), not on an in-memory
SQLite database, and by default only from a single-threaded process (the CLI, the job worker;
not a threaded web server's request); ``RAPPORT_EXPORT_WORKERS`` = ``0`` turns them off, ``N``
sets how many (default 2: the cores the goal is set for).
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import queue
from collections.abc import Callable, Iterator
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from rapport.core.forking import fork_possible, fork_safe_by_default
from rapport.people.models import ContactPoint, Employment, Organisation, Person, Tag

WORKERS = 2
AHEAD = 2  # pages dispatched beyond one per worker: memory stays a few pages whatever the size
POLL_SECONDS = 1.0
AUDIT_PAGES = 4  # pages recorded per audit transaction (one entry each): a commit per four pages
SNAPSHOT_PAGES = 40  # SQLite: pages a worker reads in one read transaction before it takes a newer one
# SQLite: the workers read the database file through a memory map (SQLite's compiled-in ceiling,
# 2 GiB, is what it takes): at a million people every row is a random look-up in a file larger
# than the page cache, and a mapped page costs no system call and no copy (15-20 % less CPU per
# page, decision 0025). The mapped pages are the file's own clean pages, shared with the OS page
# cache, not memory the export allocates; bench/export.py measures the latter (RssAnon).
SQLITE_MMAP_BYTES = 2**31
FORMULA = frozenset("=+-@")
_STAMP_LENGTHS = frozenset((19, 26))  # "YYYY-MM-DD HH:MM:SS" and with ".ffffff"


class _Echo:
    def write(self, value: str) -> str:
        return value


_WRITER = csv.writer(_Echo(), lineterminator="\r\n")


def _quoted(cells: Any) -> str:
    """Cells as ``csv.writer`` writes them in a row, without the line end (some need quotes)."""
    return _WRITER.writerow(cells)[:-2]

Page = tuple[list[str], bytes]  # (the ids written, as the database gives them; the CSV text)


def people_csv(people: QuerySet[Person], columns: Any, *, header: Callable[[Any], bytes], page_size: int,
               audit: Callable[[list[str]], None]) -> Iterator[bytes]:
    """The header, then each page's CSV once ``audit`` has recorded its people."""
    plan = PagePlan(people, columns)
    workers = _workers_wanted()
    if workers and plan.boundary(None, page_size) is None:  # a page or less: not worth a fork
        workers = 0
    pages = _pages_in_workers(plan, columns, header, page_size, audit, workers) if workers else \
        _pages_here(plan, columns, header, page_size, audit)
    yield from pages


def _workers_wanted() -> int:
    """``RAPPORT_EXPORT_WORKERS`` if set (``0``: none), else ``WORKERS`` in a single-threaded
    process (never forked from a threaded web server's request: ``core.forking``)."""
    if not fork_possible(connection):
        return 0
    setting = os.environ.get("RAPPORT_EXPORT_WORKERS", "").strip()
    if setting.isdigit():
        return int(setting)
    return WORKERS if fork_safe_by_default() else 0


def _pages_here(plan: PagePlan, columns: Any, header: Callable[[Any], bytes], page_size: int,
                audit: Callable[[list[str]], None]) -> Iterator[bytes]:
    if columns.points:
        columns.kind_counts = plan.kind_counts()
    plan.set_slots(columns.kind_counts)
    yield header(columns)
    last = None
    while True:
        ids, data = plan.page(last, None, limit=page_size)
        if not ids:
            return
        audit(ids)
        yield data
        if len(ids) < page_size:
            return
        last = ids[-1]


def _pages_in_workers(plan: PagePlan, columns: Any, header: Callable[[Any], bytes], page_size: int,
                      audit: Callable[[list[str]], None], workers: int) -> Iterator[bytes]:
    """The header and the pages, built by ``workers`` forked processes, in key order.

    Pages are handed on in groups of ``AUDIT_PAGES``: the group's pages are recorded in the
    access audit (an entry per page, in page order) in one transaction, committed before any
    of them is yielded, so nothing reaches the caller unaudited (decision 0029).
    """
    if columns.points:  # the column count per kind: an index look-up per kind (decision 0025)
        columns.kind_counts = plan.kind_counts()
    context = multiprocessing.get_context("fork")
    tasks, results = context.Queue(), context.Queue()
    connections.close_all()  # the workers must not share this process's connections
    processes = [context.Process(target=_work, args=(plan, tasks, results, os.getpid()), daemon=True,
                                 name="rapport-export-worker") for _ in range(workers)]
    for process in processes:
        process.start()
    try:
        plan.set_slots(columns.kind_counts)
        yield header(columns)
        sent = handed = 0
        lo: str | None = None
        more = True
        waiting: dict[int, Page] = {}  # page number → (its ids, CSV text)
        chosen = plan.chosen_ids(page_size)
        while True:
            while more and sent - handed < workers + AHEAD + AUDIT_PAGES - 1:
                if chosen is None:
                    hi = plan.boundary(lo, page_size)  # None: the last page, open-ended
                    tasks.put((sent, "page", (lo, hi, columns.kind_counts, None)))
                    sent, lo, more = sent + 1, hi, hi is not None
                else:
                    ids = next(chosen, None)
                    if ids is not None:
                        tasks.put((sent, "page", (None, None, columns.kind_counts, ids)))
                        sent += 1
                    more = ids is not None and len(ids) == page_size
            group = range(handed, min(handed + AUDIT_PAGES, sent))
            while not all(number in waiting for number in group):
                number, kind, payload = _result(results, processes)
                if kind == "error":
                    raise payload
                waiting[number] = payload
            pages = [waiting.pop(number) for number in group]
            handed = group.stop
            with transaction.atomic():  # one commit for the group: on SQLite each one costs every reader its map
                for ids, _ in pages:
                    if ids:
                        audit(ids)
            for ids, data in pages:
                if ids:
                    yield data
            if not more and handed == sent:
                return
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=10)
        for pipe in (tasks, results):
            pipe.close()
            pipe.cancel_join_thread()


def read_mapped() -> None:
    """SQLite: this connection reads the database file through a memory map (decision 0025)."""
    if connection.vendor == "sqlite" and SQLITE_MMAP_BYTES and not connection.is_in_memory_db():
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA mmap_size = {int(SQLITE_MMAP_BYTES)}")


def _result(results: Any, processes: list[Any]) -> tuple[int, str, Any]:
    while True:
        try:
            return results.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if not all(p.is_alive() for p in processes):
                raise RuntimeError("An export worker stopped unexpectedly.") from None


def _work(plan: PagePlan, tasks: Any, results: Any, parent: int) -> None:
    """A worker: build the pages it is given; stop when told or when the exporter is gone."""
    try:
        read_mapped()  # this worker's own connection, opened here
        snapshot = _Snapshot()
        while True:
            try:
                task = tasks.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if os.getppid() != parent:
                    return
                continue
            if task is None:
                return
            number, kind, arguments = task
            try:
                lo, hi, counts, chosen = arguments
                plan.set_slots(counts)
                snapshot.before_page()
                results.put((number, kind, plan.page(lo, hi, limit=None, chosen=chosen)))  # the exporter audits its ids
            except Exception as err:  # the exporter re-raises it
                results.put((number, "error", RuntimeError(f"{type(err).__name__}: {err}")))
                return
    finally:
        connections.close_all()


class _Snapshot:
    """SQLite: a worker's pages read in one read transaction, ``SNAPSHOT_PAGES`` at a time.

    A reader that starts a read transaction after another connection committed drops its memory
    map and page cache (SQLite cannot tell which pages changed); inside one read transaction the
    exporter's audit commits do not reach it. A newer snapshot every ``SNAPSHOT_PAGES`` pages
    bounds how old a page's data can be. ``BEGIN DEFERRED``: Django's own transactions on SQLite
    are IMMEDIATE, which would take the write lock the exporter's audit needs. PostgreSQL: nothing.
    """

    def __init__(self) -> None:
        self.enabled = connection.vendor == "sqlite"
        self.pages = 0

    def before_page(self) -> None:
        if not self.enabled:
            return
        if self.pages == SNAPSHOT_PAGES:
            with connection.cursor() as cursor:
                cursor.execute("COMMIT")  # read-only: ends the snapshot
            self.pages = 0
        if self.pages == 0:
            with connection.cursor() as cursor:
                cursor.execute("BEGIN DEFERRED")  # the snapshot starts with the page's first read
        self.pages += 1


class PagePlan:
    """The SQL of one page (per vendor) and how its rows become CSV cells.

    Every value comes from the database as text: ids in their stored form (32 hex digits on
    SQLite, the dashed form on PostgreSQL) and dashed, timestamps in ``isoformat()`` form, and
    a flag for a shown cell that may start a formula, so only those go through ``_safe_cell``.
    """

    def __init__(self, people: QuerySet[Person], columns: Any) -> None:
        from rapport.imports import exports  # the serial path's helpers (it imports this module)

        self.safe = exports._safe_cell
        self.kind_maxima = exports._kind_maxima
        self.postgres = connection.vendor == "postgresql"
        self.everyone = not people.query.where  # a key range then holds only exported people
        quote = connection.ops.quote_name
        table = quote(Person._meta.db_table)
        shown = [f for f, _ in columns.fields]
        text = TextField()
        # Timestamps as "YYYY-MM-DD HH:MM:SS[.ffffff]" text in UTC, made isoformat() in Python (a
        # fifth of the cost of SQLite's replace and concatenation or of PostgreSQL's to_char)
        if self.postgres:
            key = Cast("pk", output_field=text)  # the dashed form: the cell as it is
            iso = self.stamps_as_text = _iso_datestyle()
            stamps = [exports._raw(f"({table}.{quote(c)} AT TIME ZONE 'UTC')::text" if iso else
                                   _pg_iso(f"{table}.{quote(c)}"), text) for c in ("created_at", "updated_at")]
        else:
            # the stored text as it is (a unary + hides the column type from the driver, which would
            # parse it); the dashed id is made in Python too, a fifth of the cost of SQLite's substr
            key, self.stamps_as_text = "pk", True
            stamps = [exports._raw(f"+{table}.{quote(c)}", text) for c in ("created_at", "updated_at")]
        # Row: (key, the shown fields, created, updated)
        self.people = people.order_by("pk")
        self.columns = (key, *shown, *stamps)
        self.width = 1 + len(shown)
        # the cells between the person's own and the timestamps: job, tags, contact points
        self.job_cells = (3 if columns.titles else 2) if columns.jobs else 0
        self.tag_at = self.job_cells
        self.points_at = self.job_cells + (1 if columns.tags else 0)
        self.kinds = tuple(exports.KIND_HEADERS)
        self.slots: dict[str, tuple[int, int]] = {}  # kind → (first cell, end) in the middle cells
        self.blank: tuple[str, ...] = ("",) * self.points_at
        self.titles = columns.titles
        ids = "person_id::text" if self.postgres else "person_id"
        self.queries: dict[str, str] = {}
        if columns.points:
            self.queries["points"] = (
                f"SELECT {ids} AS pid, kind, value, label "  # noqa: S608 - model metadata; the alias keeps ORDER BY person_id on the uuid (PostgreSQL took the text column of that name)
                f"FROM {quote(ContactPoint._meta.db_table)} WHERE {{person}} "
                f"ORDER BY person_id, kind, {quote('primary')} DESC, created_at, id")
        if columns.jobs:
            start = "to_char(e.start_date, 'YYYY-MM-DD')" if self.postgres else "+e.start_date"  # text, unparsed
            self.queries["jobs"] = (  # current jobs only; the first in the serial path's order wins
                f"SELECT e.{ids}, o.name, e.title, {start} "  # noqa: S608 - model metadata
                f"FROM {quote(Employment._meta.db_table)} e JOIN {quote(Organisation._meta.db_table)} o "
                "ON o.id = e.organisation_id WHERE e.end_date IS NULL AND {person} "
                "ORDER BY e.person_id, e.start_date DESC, e.created_at DESC")
        if columns.tags:
            self.queries["tags"] = (
                f"SELECT pt.{ids}, t.name FROM {quote(Person.tags.through._meta.db_table)} pt "  # noqa: S608 - model metadata
                f"JOIN {quote(Tag._meta.db_table)} t ON t.id = pt.tag_id WHERE {{person}} "
                "ORDER BY pt.person_id, t.name")

    def set_slots(self, kind_counts: dict[str, int]) -> None:
        """Where each kind's value and label cells go, from the most points of a kind anyone has."""
        self.slots, at = {}, self.points_at
        for kind in self.kinds:
            width = 2 * kind_counts.get(kind, 0)
            if width:
                self.slots[kind] = (at, at + width)
                at += width
        self.blank = ("",) * at
        if at == self.points_at:
            self.queries.pop("points", None)

    def kind_counts(self) -> dict[str, int]:
        """The most contact points of each kind an exported person has."""
        return self.kind_maxima(self.people)

    def boundary(self, after: str | None, count: int) -> str | None:
        """The ``count``-th exported id after ``after`` (the end of a page), or None past the last."""
        people = self.people if after is None else self.people.filter(pk__gt=after)
        try:
            sql, params = people.values_list(self.columns[0], flat=True)[count - 1:count].query.sql_with_params()
        except EmptyResultSet:  # nothing visible
            return None
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return row[0] if row else None

    def chosen_ids(self, page_size: int) -> Iterator[list[str]] | None:
        """A filtered export: the exported ids in key order, a page at a time, from one query.

        Per keyset page, ``country = 'GB' AND id > ? ORDER BY id`` costs every match left
        (SQLite walks the country index and sorts them) or every row up to the page's end
        (PostgreSQL walks the key and filters: 50,000 rows for a page of 5,000 GB people), and
        the page boundary costs it again. One ordered read of the ids (a server-side cursor on
        PostgreSQL: memory stays flat), then each page looked up by its ids, is linear. None
        for everyone: key ranges need no look-up.
        """
        if self.everyone:
            return None
        try:
            sql, params = self.people.values_list(self.columns[0], flat=True).query.sql_with_params()
        except EmptyResultSet:  # nothing visible
            return iter(())
        return self._chosen(sql, params, page_size)

    def _chosen(self, sql: str, params: Any, page_size: int) -> Iterator[list[str]]:
        # On a connection of its own: this process writes the audit between two fetches, and on
        # SQLite a write on a connection whose read is still open fails once anyone else has
        # committed since that read began (the snapshot is stale).
        reader = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with reader.chunked_cursor() as cursor:
                cursor.execute(sql, params)
                while rows := cursor.fetchmany(page_size):
                    yield [r[0] for r in rows]
        finally:
            reader.close()

    def page(self, after: str | None, upto: str | None, *, limit: int | None,
             chosen: list[str] | None = None) -> Page:
        """The exported people with ``after`` < id ≤ ``upto`` (at most ``limit``), or among
        ``chosen`` (still through the export's queryset, so visibility is checked again), as CSV."""
        people = self.people
        if chosen is not None and self.postgres:
            table = connection.ops.quote_name(Person._meta.db_table)
            people = people.extra(where=[f"{table}.{connection.ops.quote_name('id')} = ANY(%s::uuid[])"],  # noqa: S610 - a bound parameter; Django has no lookup for an array literal
                                  params=["{" + ",".join(chosen) + "}"])
        if after is not None:
            people = people.filter(pk__gt=after)
        if upto is not None:
            people = people.filter(pk__lte=upto)
        people = people.values_list(*self.columns)
        if limit is not None:
            people = people[:limit]
        try:
            sql, params = people.query.sql_with_params()
        except EmptyResultSet:  # nothing visible
            return [], b""
        if chosen is not None and not self.postgres:
            sql, params = _among(sql, list(params), chosen)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if not rows:
            return [], b""
        ids = [r[0] for r in rows]
        return ids, "".join(self._lines(rows, self._middles(ids, after))).encode("utf-8")

    def _middles(self, ids: list[str], after: str | None) -> dict[str, str]:
        """Each person's cells between their own and the timestamps (current job, tags, contact
        points) as CSV text with a leading comma, by person id, for the people who have any: one
        query per table for the page."""
        if self.everyone:  # a key range: cheaper than looking each id up
            where = "{c} > %s AND {c} <= %s" if after is not None else "{c} <= %s"
            params: list[Any] = [after, ids[-1]] if after is not None else [ids[-1]]
        elif self.postgres:
            where, params = "{c} = ANY(%s::uuid[])", ["{" + ",".join(ids) + "}"]  # uuid text needs no quoting
        else:
            where, params = "{c} IN (SELECT value FROM json_each(%s))", [json.dumps(ids)]
        middles: dict[str, list[str]] = {}
        for name, sql in self.queries.items():
            column = "pt.person_id" if name == "tags" else "e.person_id" if name == "jobs" else "person_id"
            condition = where
            if self.postgres and not self.everyone and name != "points":
                # for 5,000 ids in an array PostgreSQL scans the jobs and tags tables; a semi-join on
                # the unnested ids goes through their person_id index (a third to a half of the time)
                condition = "{c} IN (SELECT unnest(%s::uuid[]))"
            with connection.cursor() as cursor:
                cursor.execute(sql.replace("{person}", condition.format(c=column)), params)
                fetched = cursor.fetchall()
            {"points": self._points, "jobs": self._jobs, "tags": self._tags}[name](fetched, middles)
        commas, quoted = len(self.blank) - 1, _quoted
        texts: dict[str, str] = {}
        for pid, cells in middles.items():
            text = ",".join(cells)
            if text.count(",") != commas or '"' in text or "\n" in text or "\r" in text:
                text = quoted(cells)
            texts[pid] = "," + text
        return texts

    def _lines(self, rows: list[tuple], middles: dict[str, str]) -> list[str]:
        """The page's CSV lines, as ``csv.writer`` (QUOTE_MINIMAL, CRLF) writes the cells.

        A row's own cells are joined with commas and looked at once: without a quote, a line end
        or a comma inside a cell (most rows) the joined text is what ``csv.writer`` writes, else
        ``csv.writer`` writes them (a third of the CPU of ``csv.writer`` for every row and of the
        tuple of cells it needs). The middle cells come as text (``_middles``).
        """
        width, safe, formula, middle, quoted = self.width, self.safe, FORMULA, middles.get, _quoted
        blank = "," + ",".join(self.blank) if self.blank else ""
        lines: list[str] = []
        add = lines.append
        own = 1 if self.postgres else 0  # SQLite: the key is the 32 hex digits, the first cell is made here
        start = 0 if self.postgres else 1
        commas = width - start - 1 if width - start else 0
        lead = "," if width - start else ""
        for r in rows:
            cells = r[start:width]
            text = ",".join(cells)
            if (text.count(",") != commas or text[:1] in formula or ",=" in text or ",+" in text or ",-" in text
                    or ",@" in text or '"' in text or "\n" in text or "\r" in text):
                # a cell may start a formula or need quotes (or a comma in a cell misleads): cell by cell
                cells = [safe(v) if v[:1] in formula else v for v in cells]
                text = ",".join(cells)
                if text.count(",") != commas or '"' in text or "\n" in text or "\r" in text:
                    text = quoted(cells)
            k, created, updated = r[0], r[width], r[width + 1]
            if self.stamps_as_text:
                # "YYYY-MM-DD HH:MM:SS[.ffffff]" -> isoformat(): six digits of fraction or none
                # (PostgreSQL drops trailing zeros; SQLite stores isoformat()'s fraction as it is)
                if own:
                    if len(created) not in _STAMP_LENGTHS:
                        created = created.ljust(26, "0")
                    if len(updated) not in _STAMP_LENGTHS:
                        updated = updated.ljust(26, "0")
                created = created.replace(" ", "T") + "+00:00"
                updated = updated.replace(" ", "T") + "+00:00"
            if own:  # PostgreSQL: the key is the dashed id, the row's first cell, joined above
                add(f"{text}{middle(k, blank)},{created},{updated}\r\n")
            else:
                add(f"{k[:8]}-{k[8:12]}-{k[12:16]}-{k[16:20]}-{k[20:]}{lead}{text}{middle(k, blank)},"
                    f"{created},{updated}\r\n")
        return lines

    def _points(self, fetched: Any, middles: dict[str, list[str]]) -> None:
        """Per kind in order, value and label, as many as the columns (read first: most people have points)."""
        slots, blank, safe, formula = self.slots, self.blank, self.safe, FORMULA
        person = kind = None
        current: list[str] = []
        at = end = 0
        for pid, point_kind, value, label in fetched:
            if pid != person:
                person, kind, current = pid, None, list(blank)
                middles[pid] = current
            if point_kind != kind:
                kind = point_kind
                at, end = slots.get(kind, (0, 0))
            if at < end:
                current[at] = safe(value) if value[:1] in formula else value
                current[at + 1] = safe(label) if label[:1] in formula else label
                at += 2

    def _jobs(self, fetched: Any, middles: dict[str, list[str]]) -> None:
        safe, titles, blank = self.safe, self.titles, self.blank
        person = None
        for pid, organisation, title, start in fetched:
            if pid == person:  # the first current job in the serial path's order wins
                continue
            person = pid
            current = middles.get(pid)
            if current is None:
                current = middles[pid] = list(blank)
            if titles:
                current[0:3] = safe(organisation), safe(title), start or ""
            else:
                current[0:2] = safe(organisation), start or ""

    def _tags(self, fetched: Any, middles: dict[str, list[str]]) -> None:
        names: dict[str, list[str]] = {}
        for pid, name in fetched:
            names.setdefault(pid, []).append(name)
        at, blank, safe = self.tag_at, self.blank, self.safe
        for pid, tags in names.items():
            current = middles.get(pid)
            if current is None:
                current = middles[pid] = list(blank)
            current[at] = safe("; ".join(tags))


def _among(sql: str, params: list[Any], chosen: list[str]) -> tuple[str, list[Any]]:
    """SQLite: the export's query (its filters and visibility still apply) driven by ``chosen``.

    ``FROM json_each(?) CROSS JOIN people`` makes SQLite look each chosen id up by its key
    (a CROSS JOIN's left table is always its outer loop); ``id IN (…)`` beside ``country = ?``
    would walk the country index instead.
    """
    table = connection.ops.quote_name(Person._meta.db_table)
    at = sql.index(f" FROM {table}")  # the outer FROM: the select list holds no subquery
    before = sql[:at].count("%s")
    joined = f" FROM json_each(%s) AS chosen CROSS JOIN {table} ON {table}.{connection.ops.quote_name('id')} = chosen.value"
    return (sql[:at] + joined + sql[at + len(f" FROM {table}"):],
            [*params[:before], json.dumps(chosen), *params[before:]])


def _iso_datestyle() -> bool:
    """PostgreSQL writes timestamps as "YYYY-MM-DD HH:MM:SS" text (DateStyle ISO, the default)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('DateStyle')")
        return cursor.fetchone()[0].upper().startswith("ISO")


def _pg_iso(column: str) -> str:
    """SQL giving a timestamptz as Python's ``isoformat()`` of it in UTC: one ``to_char`` (the
    serial path's two and a comparison were a tenth of the server's CPU), no fraction when whole."""
    return (f"replace(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), "
            "'.000000+', '+')")
