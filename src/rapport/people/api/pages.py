"""A1 — what the API shows of a person besides the person row: contact points, tags, jobs.

The same three reads as ``selectors.person_page_details`` (same rows, same order), run as
``PreparedQuery`` statements compiled once per process, and rendered straight from the
rows into the response's dicts. Every list page and every read of one person runs them;
Django compiling them afresh each time cost more than the database did. Call with the ids
of people already filtered through ``visible_to``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rapport.core.api.prepared import PreparedQuery
from rapport.people.api.serializers import timestamp_renderer
from rapport.people.models import ContactPoint, Employment, Person
from rapport.people.selectors import API_JOB_ORDER

_tags_through = Person.tags.through
# Unpacked by position below, so kept here rather than shared.
_POINT_COLUMNS = ("id", "person_id", "kind", "label", "value", "normalised", "source", "verified", "primary",
                  "created_at", "updated_at")
_JOB_COLUMNS = ("id", "person_id", "organisation_id", "organisation__name", "title", "start_date", "end_date",
                "created_at", "updated_at")

CONTACT_POINTS = PreparedQuery(
    lambda ids: (ContactPoint.objects.filter(person_id__in=ids).order_by(*ContactPoint._meta.ordering)
                 .values_list(*_POINT_COLUMNS)),
    prep_field=ContactPoint._meta.get_field("person"))
TAGS = PreparedQuery(
    lambda ids: (_tags_through.objects.filter(person_id__in=ids).order_by("tag__name")
                 .values_list("person_id", "tag__name")),
    prep_field=_tags_through._meta.get_field("person"))
JOBS = PreparedQuery(
    lambda ids: (Employment.objects.filter(person_id__in=ids).order_by(*API_JOB_ORDER)
                 .values_list(*_JOB_COLUMNS)),
    prep_field=Employment._meta.get_field("person"))


@dataclass
class RenderedDetails:
    """Per person id: contact points and jobs as the API renders them, and tag names."""

    contact_points: dict[Any, list[dict[str, Any]]]
    tags: dict[Any, list[str]]
    employments: dict[Any, list[dict[str, Any]]]
    rendered = True  # ``serializers.person_out`` takes these as they are


def person_details(person_ids: Sequence[Any]) -> RenderedDetails:
    """Contact points, tags and jobs of these people: three prepared queries, rendered."""
    ids = list(person_ids)
    details = RenderedDetails({pk: [] for pk in ids}, {pk: [] for pk in ids}, {pk: [] for pk in ids})
    if not ids:
        return details
    when = timestamp_renderer()
    points = details.contact_points
    for pk, person_id, kind, label, value, normalised, source, verified, primary, created, updated in (
            CONTACT_POINTS.rows(ids)):
        points[person_id].append({
            "id": str(pk), "kind": kind, "label": label, "value": value, "normalised": normalised,
            "source": source, "verified": verified, "primary": primary,
            "created_at": when(created), "updated_at": when(updated)})
    for person_id, name in TAGS.rows(ids):
        details.tags[person_id].append(name)
    jobs = details.employments
    for pk, person_id, organisation_id, organisation_name, title, start, end, created, updated in JOBS.rows(ids):
        jobs[person_id].append({
            "id": str(pk), "person": str(person_id), "organisation": str(organisation_id),
            "organisation_name": organisation_name, "title": title,
            "start_date": start.isoformat() if start is not None else None,
            "end_date": end.isoformat() if end is not None else None, "current": end is None,
            "created_at": when(created), "updated_at": when(updated)})
    return details
