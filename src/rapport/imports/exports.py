"""A3 — export of people and organisations to CSV, Excel, vCard 4.0 and JSON, streamed.

The rows are exactly those the list views show for the same filters (``person_list`` /
``organisation_list``, which start from ``visible_to``), narrowed to what the user's role may
export. Fields the user's role may not see (S3) are left out — the column is absent, not blank.
Every page of people is recorded in the access audit (S5, action ``export``) before it is
written out, so the audit says exactly who left the system.

People are read in keyset pages of ``PAGE`` by primary key as plain tuples (no model
instances), with their contact points, current job and tags fetched per page: memory stays
flat whatever the export's size, and the response starts at once.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import IntegerField, QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils import timezone

from rapport.access.audit import record_people_access_bulk
from rapport.access.fieldsecurity import hidden_fields
from rapport.access.permissions import has_permission
from rapport.core.errors import DomainError, NotAllowed
from rapport.people.models import ContactPoint, Employment, Organisation, Person, Tag
from rapport.people.selectors import organisation_list, person_list

PAGE = 5000
COUNT_WORK_MEM = "64MB"  # PostgreSQL, for the contact point column count only (SET LOCAL)
POINT_KIND_COUNTS = "imports_pointkindcount"  # kept by triggers (migration imports/0004), no model
FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "vcf": ("text/vcard; charset=utf-8", "vcf"),
    "json": ("application/json", "json"),
}
PERSON_COLUMNS = (  # (field, header)
    ("honorific", "Honorific"), ("given_name", "Given name"), ("middle_names", "Middle names"),
    ("family_name", "Family name"), ("preferred_name", "Preferred name"), ("language", "Language"),
    ("timezone", "Timezone"), ("country", "Country"), ("notes", "Notes"),
)
KIND_HEADERS = {"email": "Email", "phone": "Phone", "address": "Address", "url": "Web address",
                "social": "Social"}
PERSON_FILTERS = ("name", "email", "phone", "organisation", "tag", "updated_since", "country")
ORGANISATION_FILTERS = ("name", "domain", "parent", "tag", "updated_since")


class ExportError(DomainError):
    title = "Export refused"
    code = "bad_export"


@dataclass
class Export:
    content_type: str
    filename: str
    chunks: Iterator[bytes]


def export_people(*, user: Any, fmt: str, filters: dict[str, Any] | None = None, channel: str = "export",
                  request: Any = None) -> Export:
    """People visible to ``user`` and matching ``filters`` (as the list view), in ``fmt``."""
    content_type, extension = _format(fmt)
    people = _people_queryset(user, filters or {})
    columns = _PersonColumns(user, people, count_points=extension != "csv")
    detail = {"format": fmt, "filters": _describe(filters)}
    if extension == "csv":
        from rapport.imports.export_csv import people_csv

        def audit(ids: list[str]) -> None:
            record_people_access_bulk(actor=user, action="export", people=ids, channel=channel, request=request,
                                      detail=detail)

        chunks = people_csv(people, columns, header=_csv_header, page_size=PAGE, audit=audit)
    else:
        pages = _people_pages(people, columns, user=user, channel=channel, request=request, detail=detail,
                              points_in_full=True)
        chunks = {"xlsx": _xlsx, "json": _people_json, "vcf": _vcards}[extension](_person_rows(pages), columns)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return Export(content_type, f"people-{stamp}.{extension}", chunks)


def export_organisations(*, user: Any, fmt: str, filters: dict[str, Any] | None = None, channel: str = "export",
                         request: Any = None) -> Export:
    """Organisations visible to ``user`` and matching ``filters``, in ``fmt``."""
    content_type, extension = _format(fmt)
    unknown = set(filters or {}) - set(ORGANISATION_FILTERS)
    if unknown:
        raise ExportError(f"Unknown filter(s): {', '.join(sorted(unknown))}.")
    if not has_permission(user, "people.organisation", "export"):
        raise NotAllowed("Your role may not export organisations.")
    organisations = organisation_list(user=user, **(filters or {})).visible_to(user, "export")
    hidden = hidden_fields(user, "people.Organisation")
    columns = _OrganisationColumns(hidden)
    _audit_event(user, "export", {"format": fmt, "filters": _describe(filters), "object": "organisations"},
                 channel, request)
    pages = _organisation_pages(organisations, columns)
    writer = {"csv": _csv, "xlsx": _xlsx, "json": _organisations_json, "vcf": _org_vcards}[extension]
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return Export(content_type, f"organisations-{stamp}.{extension}", writer(pages, columns))


# ----------------------------------------------------------------------------- people


def _people_queryset(user: Any, filters: dict[str, Any]) -> QuerySet[Person]:
    unknown = set(filters) - set(PERSON_FILTERS)
    if unknown:
        raise ExportError(f"Unknown filter(s): {', '.join(sorted(unknown))}.")
    if user is None or not getattr(user, "is_authenticated", False):
        raise NotAllowed("Sign in to export.")
    if not has_permission(user, "people.person", "export"):
        raise NotAllowed("Your role may not export people.")
    return person_list(user=user, **{k: v for k, v in filters.items() if v}).visible_to(user, "export")


class _PersonColumns:
    """The columns this user may see, with as many contact point columns per kind as needed."""

    def __init__(self, user: Any, people: QuerySet[Person], *, count_points: bool = True) -> None:
        hidden = hidden_fields(user, "people.Person")
        point_hidden = hidden_fields(user, "people.ContactPoint")
        job_hidden = hidden_fields(user, "people.Employment")
        self.fields = [(f, h) for f, h in PERSON_COLUMNS if f not in hidden]
        self.points = "contact_points" not in hidden and "value" not in point_hidden
        self.jobs = "employments" not in hidden and "organisation" not in job_hidden
        self.titles = self.jobs and "title" not in job_hidden
        self.tags = "tags" not in hidden
        # (the CSV path counts them itself, in its worker processes for a large export)
        self.kind_counts = _max_points_per_kind(people) if self.points and count_points else {}

    def headers(self) -> list[str]:
        headers = ["Rapport ID"] + [h for _, h in self.fields]
        if self.jobs:
            headers += ["Organisation"] + (["Job title"] if self.titles else []) + ["Job start"]
        if self.tags:
            headers.append("Tags")
        for kind, header in KIND_HEADERS.items():
            for n in range(1, self.kind_counts.get(kind, 0) + 1):
                headers += [f"{header} {n}", f"{header} {n} label"]
        return [*headers, "Created", "Updated"]

    def row(self, person: _PersonRow) -> list[Any]:
        values: list[Any] = [str(person.id)] + [person.values[f] for f, _ in self.fields]
        if self.jobs:
            job = person.jobs[0] if person.jobs and person.jobs[0]["end_date"] is None else None
            values.append(job["organisation"] if job else "")
            if self.titles:
                values.append(job["title"] if job else "")
            values.append(job["start_date"].isoformat() if job and job["start_date"] else "")
        if self.tags:
            values.append("; ".join(person.tags))
        if self.kind_counts:
            by_kind: dict[str, list[Any]] = {}
            for p in person.points:
                by_kind.setdefault(p["kind"], []).extend((p["value"], p["label"]))
            for kind in KIND_HEADERS:
                width = 2 * self.kind_counts.get(kind, 0)
                if width:
                    cells = by_kind.get(kind, [])[:width]
                    values += cells
                    values += [""] * (width - len(cells))
        return [*values, _iso(person.created_at), _iso(person.updated_at)]


@dataclass
class _PersonRow:
    id: Any
    values: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    points: list[dict]
    jobs: list[dict]
    tags: list[str]


def _max_points_per_kind(people: QuerySet[Person]) -> dict[str, int]:
    """The most contact points of each kind any exported person has, in one grouped query over
    the points themselves (the Excel export's columns, and the reference the CSV's are checked
    against: ``_kind_maxima`` reads the same from the counts the triggers keep)."""
    table = connection.ops.quote_name(ContactPoint._meta.db_table)
    where: list[str] = []
    params: list[Any] = []
    if people.query.where:  # everyone (an Administrator's unfiltered export): no semi-join to build
        try:
            inner, inner_params = people.order_by().values("pk").query.sql_with_params()
        except EmptyResultSet:  # nothing visible: no query to run
            return {}
        where.append(f"person_id IN ({inner})")
        params.extend(inner_params)
    condition = f"WHERE {' AND '.join(where)} " if where else ""
    # SQLite: the grouping sorts (person_id, kind) anyway, so the table is read in its own order
    # rather than through the person_id index, a random look-up per point (40 % less CPU)
    scan = f"{table} NOT INDEXED" if connection.vendor == "sqlite" else table
    sql = (f"SELECT kind, MAX(n) FROM (SELECT person_id, kind, COUNT(*) AS n FROM {scan} "  # noqa: S608 - model metadata and Django-built SQL with parameters
           f"{condition}GROUP BY person_id, kind) AS per_person GROUP BY kind")
    return _counted(sql, params, spills=True)


def _kind_maxima(people: QuerySet[Person]) -> dict[str, int]:
    """``_max_points_per_kind`` from the per-person counts of points of each kind that triggers
    keep (migration ``imports/0004``, decision 0025): for everyone one index look-up per kind;
    for a filtered export a grouped read of the exported people's counts, not of every point."""
    if not people.query.where:
        sql = " UNION ALL ".join([f"SELECT %s, (SELECT MAX(n) FROM {POINT_KIND_COUNTS} WHERE kind = %s)"  # noqa: S608 - constants
                                  for _ in KIND_HEADERS])
        counts = _counted(sql, [value for kind in KIND_HEADERS for value in (kind, kind)])
        return {kind: n for kind, n in counts.items() if n}
    try:
        inner, params = people.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:  # nothing visible
        return {}
    return _counted(f"SELECT kind, MAX(n) FROM {POINT_KIND_COUNTS} WHERE person_id IN ({inner}) "  # noqa: S608 - a constant and Django-built SQL with parameters
                    "GROUP BY kind", list(params))


def _counted(sql: str, params: list[Any], *, spills: bool = False) -> dict[str, int]:
    if spills and connection.vendor == "postgresql" and not connection.in_atomic_block:
        # the per-person groups of a million people spill past the default work_mem: more for this
        # query alone (SET LOCAL ends with its transaction; inside a caller's one, left as it is)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL work_mem = '{COUNT_WORK_MEM}'")
            cursor.execute(sql, params)
            return {kind: int(count) for kind, count in cursor.fetchall() if count is not None}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {kind: int(count) for kind, count in cursor.fetchall() if count is not None}


def _people_pages(people: QuerySet[Person], columns: _PersonColumns, *, user: Any, channel: str, request: Any,
                  detail: dict, points_in_full: bool) -> Iterator[_Page]:
    """Keyset pages of raw rows, each recorded in the access audit before it is handed on."""
    source = _PageSource(people, columns, points_in_full=points_in_full)
    for page in source.pages():
        record_people_access_bulk(actor=user, action="export", people=[r[0] for r in page.people],
                                  channel=channel, request=request, detail=detail)
        yield page


@dataclass
class _Page:
    """One page as the database gives it: person tuples and their child rows by person id.

    Ids are strings in the database's own text form (32 hex digits on SQLite, the dashed
    form on PostgreSQL) and timestamps ISO strings: no UUID or datetime objects for CSV.
    """

    people: list[tuple]
    points: dict[str, list[tuple]]
    jobs: dict[str, list[tuple]]
    tags: dict[str, list[str]]


class _PageSource:
    """Raw SQL per vendor for the people (the list view's queryset, compiled by Django) and for
    their contact points, jobs and tags (the page's ids bound as plain strings: Django's
    per-value lookup preparation and UUID conversion were a third of the export's time)."""

    def __init__(self, people: QuerySet[Person], columns: _PersonColumns, *, points_in_full: bool) -> None:
        self.postgres = connection.vendor == "postgresql"
        quote = connection.ops.quote_name
        table = quote(Person._meta.db_table)
        # Row: (id as stored, id as text, the PERSON_COLUMNS, "a shown field may start a formula",
        # created ISO, updated ISO), all text made by the database: SQLite's driver would parse a
        # DATETIME column, and on PostgreSQL UUID objects and Django's Python-level timestamptz
        # loader were a third of the export's time.
        shown = [f for f, _ in PERSON_COLUMNS if f in {f for f, _ in columns.fields}]
        formula = " OR ".join(f"{_starts_formula(f'{table}.{quote(f)}')}" for f in shown) or "0 = 1"
        text = TextField()
        if self.postgres:
            key = dashed = Cast("pk", output_field=text)
            stamps = [_raw(_pg_iso(f"{table}.{quote(c)}"), text) for c in ("created_at", "updated_at")]
        else:
            key = "pk"
            dashed = _raw(" || '-' || ".join(f"substr({table}.id, {a}, {n})" for a, n in
                                             ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))), text)
            stamps = [_raw(f"replace({table}.{quote(c)}, ' ', 'T') || '+00:00'", text)
                      for c in ("created_at", "updated_at")]  # stored as naive UTC text
        self.people = people.order_by("pk").values_list(
            key, dashed, *[f for f, _ in PERSON_COLUMNS],
            _raw(f"CASE WHEN {formula} THEN 1 ELSE 0 END", IntegerField()), *stamps)
        ids = "person_id::text" if self.postgres else "person_id"
        person = "= ANY(%s::uuid[])" if self.postgres else "IN ({})"  # PostgreSQL: one array literal
        self.queries = []
        if columns.points:
            extra = f", {quote('primary')}, verified, source" if points_in_full else ""
            flag = f"{_starts_formula('value')} OR {_starts_formula('label')}"
            self.queries.append(("points", (
                f"SELECT {ids}, kind, value, label, CASE WHEN {flag} THEN 1 ELSE 0 END{extra} "  # noqa: S608 - model metadata
                f"FROM {quote(ContactPoint._meta.db_table)} WHERE person_id {person} "
                f"ORDER BY person_id, kind, {quote('primary')} DESC, created_at, id")))
        if columns.jobs:
            org_id = "e.organisation_id::text" if self.postgres else "e.organisation_id"
            self.queries.append(("jobs", (
                f"SELECT e.{ids}, {org_id}, o.name, e.title, e.start_date, e.end_date "  # noqa: S608 - model metadata
                f"FROM {quote(Employment._meta.db_table)} e JOIN {quote(Organisation._meta.db_table)} o "
                f"ON o.id = e.organisation_id WHERE e.person_id {person} "
                "ORDER BY e.person_id, e.start_date DESC, e.created_at DESC")))
        if columns.tags:
            through = Person.tags.through._meta.db_table
            self.queries.append(("tags", (
                f"SELECT pt.{ids}, t.name FROM {quote(through)} pt "  # noqa: S608 - model metadata
                f"JOIN {quote(Tag._meta.db_table)} t ON t.id = pt.tag_id WHERE pt.person_id {person} "
                "ORDER BY pt.person_id, t.name")))

    def pages(self) -> Iterator[_Page]:
        last = None
        while True:
            page = self.people if last is None else self.people.filter(pk__gt=last)
            try:
                sql, params = page[:PAGE].query.sql_with_params()
            except EmptyResultSet:  # nothing visible
                return
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
            if not rows:
                return
            children: dict[str, dict[str, list]] = {"points": {}, "jobs": {}, "tags": {}}
            ids = [r[0] for r in rows]
            array = "{" + ",".join(ids) + "}" if self.postgres else ""  # uuid text needs no quoting
            for name, sql in self.queries:
                grouped = children[name]
                with connection.cursor() as cursor:
                    if self.postgres:
                        cursor.execute(sql, [array])
                    else:
                        cursor.execute(sql.format(", ".join(["%s"] * len(ids))), ids)
                    fetched = cursor.fetchall()
                if name == "tags":
                    for pid, tag in fetched:
                        grouped.setdefault(pid, []).append(tag)
                else:
                    for row in fetched:
                        grouped.setdefault(row[0], []).append(row)
            yield _Page(rows, children["points"], children["jobs"], children["tags"])
            last = ids[-1]


def _raw(sql: str, output: Any) -> RawSQL:
    return RawSQL(sql, (), output_field=output)  # noqa: S611 - built from model metadata only, no input


def _pg_iso(column: str) -> str:
    """SQL giving a timestamptz as Python's ``isoformat()`` of it in UTC (no fraction when whole)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_trunc('second', {utc}) = {utc} "
            f"THEN '' ELSE to_char({utc}, '.US') END || '+00:00'")


def _starts_formula(column: str) -> str:
    """SQL: the value starts with a character a spreadsheet reads as a formula (checked in Python)."""
    return f"substr({column}, 1, 1) IN ('=', '+', '-', '@')"


def _dashed(pid: str) -> str:
    """A UUID's text form from its 32 hex digits (SQLite) or as it is (PostgreSQL)."""
    if len(pid) != 32:
        return pid
    return f"{pid[:8]}-{pid[8:12]}-{pid[12:16]}-{pid[16:20]}-{pid[20:]}"


def _person_rows(pages: Iterator[_Page]) -> Iterator[list[_PersonRow]]:
    """Pages as ``_PersonRow`` objects for the writers that want dicts and datetimes (not CSV)."""
    names = [f for f, _ in PERSON_COLUMNS]
    point_keys = ("kind", "value", "label", "primary", "verified", "source")
    for page in pages:
        rows = []
        for r in page.people:
            pid = r[0]
            points = [dict(zip(point_keys, (*p[1:4], *p[5:8]), strict=True)) for p in page.points.get(pid, ())]
            jobs = [{"organisation_id": _dashed(j[1]), "organisation": j[2], "title": j[3],
                     "start_date": _date(j[4]), "end_date": _date(j[5])} for j in page.jobs.get(pid, ())]
            rows.append(_PersonRow(r[1], dict(zip(names, r[2:-3], strict=True)), dt.datetime.fromisoformat(r[-2]),
                                   dt.datetime.fromisoformat(r[-1]), points, _current_first(jobs),
                                   page.tags.get(pid, [])))
        yield rows


def _date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _current_first(jobs: list[dict]) -> list[dict]:
    """Current jobs (no end date) first, each group newest first (NULL ordering differs by vendor)."""
    return [j for j in jobs if j["end_date"] is None] + [j for j in jobs if j["end_date"] is not None]


# ------------------------------------------------------------------------ organisations


class _OrganisationColumns:
    FIELDS = (("name", "Name"), ("domain", "Domain"), ("notes", "Notes"))

    def __init__(self, hidden: frozenset[str]) -> None:
        self.fields = [(f, h) for f, h in self.FIELDS if f not in hidden]
        self.parent = "parent" not in hidden
        self.tags = "tags" not in hidden

    def headers(self) -> list[str]:
        return (["Rapport ID"] + [h for _, h in self.fields] + (["Parent"] if self.parent else [])
                + (["Tags"] if self.tags else []) + ["Created", "Updated"])

    def row(self, org: dict) -> list[Any]:
        return ([str(org["id"])] + [org[f] for f, _ in self.fields]
                + ([org["parent"] or ""] if self.parent else []) + (["; ".join(org["tags"])] if self.tags else [])
                + [_iso(org["created_at"]), _iso(org["updated_at"])])


def _organisation_pages(organisations: QuerySet[Organisation], columns: _OrganisationColumns) -> Iterator[list[dict]]:
    last = None
    while True:
        page = organisations.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        rows = list(page.values("pk", "name", "domain", "notes", "parent__name", "created_at", "updated_at")[:PAGE])
        if not rows:
            return
        ids = [r["pk"] for r in rows]
        tags: dict[Any, list[str]] = defaultdict(list)
        for oid, name in (Organisation.tags.through.objects.filter(organisation_id__in=ids)
                          .order_by("organisation_id", "tag__name").values_list("organisation_id", "tag__name")):
            tags[oid].append(name)
        yield [{"id": r["pk"], "name": r["name"], "domain": r["domain"], "notes": r["notes"],
                "parent": r["parent__name"], "tags": tags[r["pk"]], "created_at": r["created_at"],
                "updated_at": r["updated_at"]} for r in rows]
        last = ids[-1]


# ------------------------------------------------------------------------------ writers


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv(pages: Iterator[list[Any]], columns: Any) -> Iterator[bytes]:
    yield _csv_header(columns)
    for page in pages:
        out = io.StringIO()
        page_writer = csv.writer(out, lineterminator="\r\n")
        page_writer.writerows([[_safe_cell(v) if v.__class__ is str and v[:1] in _FORMULA else v
                                for v in columns.row(item)] for item in page])
        yield out.getvalue().encode("utf-8")


_FORMULA = frozenset("=+-@")


def _csv_header(columns: Any) -> bytes:
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    return ("\ufeff" + writer.writerow(columns.headers())).encode("utf-8")  # BOM: Excel reads UTF-8


def _safe_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection): a leading =, +, - or @ becomes text.

    A phone number in international form (``+`` then digits, spaces and hyphens) stays as it is.
    """
    if value.__class__ is not str or value[:1] not in _FORMULA:
        return value
    if value[0] == "+" and value[1:].replace(" ", "").replace("-", "").isdigit():
        return value
    return "'" + value


def _xlsx(pages: Iterator[list[Any]], columns: Any) -> Iterator[bytes]:
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Export")
    sheet.append(columns.headers())
    for page in pages:
        for item in page:
            sheet.append([_xlsx_cell(v) for v in columns.row(item)])
    handle, path = tempfile.mkstemp(prefix="rapport-export-", suffix=".xlsx")
    os.close(handle)
    try:
        workbook.save(path)
        with open(path, "rb") as stream:
            while block := stream.read(256 * 1024):
                yield block
    finally:
        os.unlink(path)


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, str):
        value = "".join(ch for ch in value if ch in "\t\n\r" or ord(ch) >= 32)  # XML-illegal controls
        if value[:1] == "=":
            return "'" + value
    return value


def _people_json(pages: Iterator[list[_PersonRow]], columns: _PersonColumns) -> Iterator[bytes]:
    yield b"["
    first = True
    for page in pages:
        parts = []
        for person in page:
            item: dict[str, Any] = {"id": str(person.id)}
            item.update({f: person.values[f] for f, _ in columns.fields})
            if columns.points:
                item["contact_points"] = person.points
            if columns.jobs:
                item["employments"] = [{**j, "start_date": _iso(j["start_date"]), "end_date": _iso(j["end_date"]),
                                        **({} if columns.titles else {"title": None})} for j in person.jobs]
                if not columns.titles:
                    for job in item["employments"]:
                        job.pop("title", None)
            if columns.tags:
                item["tags"] = person.tags
            item["created_at"], item["updated_at"] = _iso(person.created_at), _iso(person.updated_at)
            parts.append(json.dumps(item, ensure_ascii=False))
        if parts:
            yield ((b"" if first else b",") + b"\n" + ",\n".join(parts).encode("utf-8"))
            first = False
    yield b"\n]\n"


def _organisations_json(pages: Iterator[list[dict]], columns: _OrganisationColumns) -> Iterator[bytes]:
    yield b"["
    first = True
    for page in pages:
        parts = []
        for org in page:
            item = {"id": str(org["id"]), **{f: org[f] for f, _ in columns.fields}}
            if columns.parent:
                item["parent"] = org["parent"]
            if columns.tags:
                item["tags"] = org["tags"]
            item["created_at"], item["updated_at"] = _iso(org["created_at"]), _iso(org["updated_at"])
            parts.append(json.dumps(item, ensure_ascii=False))
        if parts:
            yield ((b"" if first else b",") + b"\n" + ",\n".join(parts).encode("utf-8"))
            first = False
    yield b"\n]\n"


# --------------------------------------------------------------------------- vCard 4.0

_VCARD_TYPES = {"mobile": "cell"}


def _vcards(pages: Iterator[list[_PersonRow]], columns: _PersonColumns) -> Iterator[bytes]:
    fields = {f for f, _ in columns.fields}
    for page in pages:
        out = io.StringIO()
        for person in page:
            v = person.values
            lines = ["BEGIN:VCARD", "VERSION:4.0", f"UID:urn:uuid:{person.id}"]
            given = v.get("given_name", "") if "given_name" in fields else ""
            family = v.get("family_name", "") if "family_name" in fields else ""
            first = (v.get("preferred_name") if "preferred_name" in fields else "") or given
            fn = " ".join(p for p in (first, family) if p)
            if not fn and columns.points and person.points:
                fn = person.points[0]["value"].split("\n")[0]
            lines.append("FN:" + _escape(fn or "(no name)"))
            lines.append("N:" + ";".join(_escape(v.get(f, "") if f in fields else "") for f in
                                         ("family_name", "given_name", "middle_names", "honorific")) + ";")
            if "preferred_name" in fields and v.get("preferred_name"):
                lines.append("NICKNAME:" + _escape(v["preferred_name"]))
            if columns.points:
                seen_primary: set[str] = set()
                for point in person.points:
                    params = ""
                    if point["label"]:
                        params += ";TYPE=" + _param(_VCARD_TYPES.get(point["label"], point["label"]))
                    if point["primary"] and point["kind"] not in seen_primary:
                        params += ";PREF=1"
                        seen_primary.add(point["kind"])
                    value = point["value"]
                    if point["kind"] == "email":
                        lines.append(f"EMAIL{params}:{_escape(value)}")
                    elif point["kind"] == "phone":
                        lines.append(f"TEL;VALUE=text{params}:{_escape(value)}")  # as typed (RFC 6350 allows text)
                    elif point["kind"] == "address":
                        lines.append(f"ADR{params}:;;{_escape(value)};;;;")
                    elif point["kind"] == "url":
                        lines.append(f"URL{params}:{value}")
                    elif point["kind"] == "social":
                        lines.append(f"X-SOCIALPROFILE{params}:{_escape(value)}")
            if columns.jobs and person.jobs and person.jobs[0]["end_date"] is None:
                job = person.jobs[0]
                lines.append("ORG:" + _escape(job["organisation"]))
                if columns.titles and job["title"]:
                    lines.append("TITLE:" + _escape(job["title"]))
                if job["start_date"]:
                    lines.append("X-RAPPORT-JOB-START:" + job["start_date"].isoformat())
            if columns.tags and person.tags:
                lines.append("CATEGORIES:" + ",".join(_escape(t) for t in person.tags))
            if "notes" in fields and v.get("notes"):
                lines.append("NOTE:" + _escape(v["notes"]))
            if "language" in fields and v.get("language"):
                lines.append("LANG:" + _escape(v["language"]))
            if "timezone" in fields and v.get("timezone"):
                lines.append("TZ:" + _escape(v["timezone"]))
            if "country" in fields and v.get("country"):
                lines.append("X-RAPPORT-COUNTRY:" + v["country"])
            lines.append("REV:" + person.updated_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
            lines.append("END:VCARD")
            out.write("".join(_fold(line) + "\r\n" for line in lines))
        yield out.getvalue().encode("utf-8")


def _org_vcards(pages: Iterator[list[dict]], columns: _OrganisationColumns) -> Iterator[bytes]:
    fields = {f for f, _ in columns.fields}
    for page in pages:
        out = io.StringIO()
        for org in page:
            lines = ["BEGIN:VCARD", "VERSION:4.0", "KIND:org", f"UID:urn:uuid:{org['id']}",
                     "FN:" + _escape(org["name"] if "name" in fields else "(hidden)"),
                     "ORG:" + _escape(org["name"] if "name" in fields else "")]
            if "domain" in fields and org["domain"]:
                lines.append(f"URL:https://{org['domain']}")
            if "notes" in fields and org["notes"]:
                lines.append("NOTE:" + _escape(org["notes"]))
            if columns.tags and org["tags"]:
                lines.append("CATEGORIES:" + ",".join(_escape(t) for t in org["tags"]))
            lines.append("END:VCARD")
            out.write("".join(_fold(line) + "\r\n" for line in lines))
        yield out.getvalue().encode("utf-8")


def _escape(text: str) -> str:
    return (str(text or "").replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")
            .replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n"))


def _param(text: str) -> str:
    cleaned = "".join(ch for ch in text if ch.isalnum() or ch in "-_ ").strip()
    return cleaned.replace(" ", "-") or "other"


def _fold(line: str) -> str:
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line
    parts, limit = [], 75
    while len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        parts.append(data[:cut].decode("utf-8"))
        data, limit = data[cut:], 74
    parts.append(data.decode("utf-8"))
    return "\r\n ".join(parts)


# ------------------------------------------------------------------------------ helpers


def _format(fmt: str) -> tuple[str, str]:
    fmt = (fmt or "").lower().lstrip(".")
    fmt = {"vcard": "vcf", "excel": "xlsx"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; choose csv, xlsx, vcf or json.",
                          field_errors={"format": ["Choose csv, xlsx, vcf or json."]})
    return FORMATS[fmt]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _describe(filters: dict[str, Any] | None) -> dict[str, str]:
    return {k: str(v) for k, v in (filters or {}).items() if v}


def _audit_event(user: Any, action: str, detail: dict, channel: str, request: Any) -> None:
    """Organisation exports touch no person's data; record them as an event when the audit can."""
    from rapport.access import audit

    record_event = getattr(audit, "record_event", None)
    if record_event is not None:
        record_event(actor=user, action=action, object_type="people.organisation", channel=channel,
                     request=request, detail=detail)
