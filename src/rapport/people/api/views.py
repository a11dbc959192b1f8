"""A1 — the people API (/api/v1/): people, contact points, organisations, employment, timeline.

Thin adapters over ``rapport.people.services`` (writes) and ``selectors`` (reads):

- every read starts from ``visible_to(user)`` (S2), and every read of a person's data is
  written to the access audit (a list page records each person on it);
- reads carry an ``ETag``; a write with a stale ``If-Match`` gets 412, checked against the
  row locked for the write, so two clients cannot both win;
- ``POST`` honours ``Idempotency-Key``; input is strict (unknown fields are 400);
- failures are RFC 9457 problems, produced by the shared exception handler.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from rapport.access.audit import record_people_access_bulk, record_person_access
from rapport.access.fieldsecurity import hidden_fields
from rapport.core.api.conventions import IdempotentCreateMixin, check_if_match, etag_for
from rapport.identity.realtime import candidates_header
from rapport.people import selectors, services
from rapport.people.api import pages
from rapport.people.api import serializers as s
from rapport.people.models import ContactPoint, Employment, Interaction, Organisation, Person

PAGING_PARAMS = frozenset({"cursor", "page_size", "format"})


def _filters(request: Request, serializer: type[s.Strict]) -> dict[str, Any]:
    """Validated list filters; an unknown query parameter is a 400, not a silently wider list."""
    data = {key: value for key, value in request.query_params.items() if key not in PAGING_PARAMS}
    filters = serializer(data=data)
    filters.is_valid(raise_exception=True)
    return {key: value for key, value in filters.validated_data.items() if value not in ("", None)}




def _not_modified(request: Request, etag: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in request.headers.get("If-None-Match", "").split(",")}
    return etag in tags


def _one(records: Any) -> Any:
    """The record of a primary-key lookup, or None; unordered (``first()`` would sort by the
    model's ordering, and compiling that ORDER BY cost a tenth of a read)."""
    return next(iter(records.order_by()[:1]), None)


def _person(request: Request, pk: Any, action: str = "read") -> Person:
    person = _one(Person.objects.visible_to(request.user, action).filter(pk=pk))
    if person is None:
        raise Http404("No such person.")
    return person


def _organisation(request: Request, pk: Any, action: str = "read") -> Organisation:
    try:
        return selectors.organisation_get(user=request.user, organisation_id=pk, action=action)
    except (Organisation.DoesNotExist, ValueError) as err:
        raise Http404("No such organisation.") from err


def _person_out(request: Request, person: Person) -> dict[str, Any]:
    """The person as stored: contact points, tags and jobs read fresh (3 prepared queries)."""
    return s.person_out(person, hidden_fields(request.user, "people.Person"), details=pages.person_details([person.pk]))


# ---------------------------------------------------------------------------------- people


class _PersonCreate(GenericAPIView):
    object_type = "people.person"
    serializer_class = s.PersonOut

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        values = s.person_in(request.data)
        points = [services.ContactPointInput(**point) for point in values.pop("contact_points")]
        # I2: duplicate candidates are reported (header); ?on_duplicate=refuse gives a 409 with
        # them, ?on_duplicate=link returns the existing person instead (rapport.identity.realtime).
        # The check's statement also looks the points up on the suppression list.
        done = services.person_create_checked(
            actor=request.user, on_duplicate=request.query_params.get("on_duplicate", "create"),
            timezone_name=values.pop("timezone"), contact_points=points, channel="api", **values)
        person, written, candidates = done.person, done.written, done.candidates
        found = {"Rapport-Duplicate-Candidates": candidates_header(candidates)} if candidates else {}
        if done.linked:
            return Response(_person_out(request, person), status=status.HTTP_200_OK,
                            headers={"ETag": etag_for(person), "Location": f"{request.path}{person.pk}/",
                                     "Rapport-Linked-To": str(person.pk), **found})
        if values.get("tags"):
            out = _person_out(request, person)
        else:  # nothing but the rows just written: no need to read them back
            details = selectors.PersonPageDetails(
                {person.pk: sorted(written, key=lambda p: (p.kind, not p.primary, p.created_at))},
                {person.pk: []}, {person.pk: []})
            out = s.person_out(person, hidden_fields(request.user, "people.Person"), details=details)
        return Response(out, status=status.HTTP_201_CREATED,
                        headers={"ETag": etag_for(person), "Location": f"{request.path}{person.pk}/", **found})


class PersonList(IdempotentCreateMixin, _PersonCreate):
    """GET: people you may see, filtered (name, email, phone, organisation, tag, updated_since,
    country), cursor-paginated. POST: create a person with nested contact points."""

    @extend_schema(parameters=[OpenApiParameter(name, str) for name in s.PersonFilter().fields],
                   responses=s.PersonOut(many=True))
    def get(self, request: Request) -> Response:
        # Rows, not model instances: a page renders them straight away (the paginator takes dicts).
        people = selectors.person_list(user=request.user, **_filters(request, s.PersonFilter))
        page = self.paginate_queryset(people.values(*s.PERSON_COLUMNS))
        ids = [row["id"] for row in page]
        details = pages.person_details(ids)
        if ids:
            # A page is a bulk read: one chained entry plus a row per person (decision 0008).
            record_people_access_bulk(actor=request.user, action="view", people=ids, channel="api",
                                      request=request, detail={"list": True})
        hidden, when = hidden_fields(request.user, "people.Person"), s.timestamp_renderer()
        return self.get_paginated_response([s.person_out(p, hidden, details=details, when=when) for p in page])

    @extend_schema(request=s.PersonIn, responses={201: s.PersonOut})
    def post(self, request: Request) -> Response:
        return self.create(request)


class PersonDetail(GenericAPIView):
    """GET one person (ETag; If-None-Match gives 304). PATCH with If-Match (412 when stale)."""

    object_type = "people.person"
    serializer_class = s.PersonOut

    def get(self, request: Request, pk: Any) -> Response:
        person = _person(request, pk)
        etag = etag_for(person)
        if _not_modified(request, etag):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        record_person_access(actor=request.user, action="view", people=[person], channel="api", request=request)
        return Response(_person_out(request, person), headers={"ETag": etag})

    @extend_schema(request=s.PersonPatch, responses=s.PersonOut)
    def patch(self, request: Request, pk: Any) -> Response:
        person = _person(request, pk, "change")
        data = s.PersonPatch(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        tags = changes.pop("tags", None)
        if "timezone" in changes:
            changes["timezone_name"] = changes.pop("timezone")
        with transaction.atomic():
            locked = Person.objects.select_for_update().get(pk=person.pk)
            check_if_match(request, locked)
            person = services.person_update(actor=request.user, person=locked, changes=changes, tags=tags,
                                            expected_version=locked.version, channel="api")
        return Response(_person_out(request, person), headers={"ETag": etag_for(person)})


# --------------------------------------------------------------------------- contact points


class ContactPointList(GenericAPIView):
    """GET a person's contact points. POST add one (a value they already have updates its flags).

    ``If-Match`` on POST is checked against the person's ETag (adding a point bumps it).
    """

    object_type = "people.person"
    object_actions = {"GET": "read", "POST": "update"}
    serializer_class = s.ContactPointOut

    def get(self, request: Request, pk: Any) -> Response:
        person = _person(request, pk)
        record_person_access(actor=request.user, action="view", people=[person], channel="api",
                             request=request, detail={"contact_points": True})
        # Same envelope as the paginated lists (a person has few points: one page).
        return Response({"next": None, "previous": None,
                         "results": [s.contact_point_out(p) for p in person.contact_points.all()]})

    @extend_schema(request=s.ContactPointIn, responses={201: s.ContactPointOut})
    def post(self, request: Request, pk: Any) -> Response:
        person = _person(request, pk, "change")
        data = s.ContactPointIn(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            locked = Person.objects.select_for_update().get(pk=person.pk)
            check_if_match(request, locked)
            point = services.contact_point_add(actor=request.user, person=locked,
                                               data=services.ContactPointInput(**data.validated_data),
                                               channel="api")
        return Response(s.ContactPointOut(point).data, status=status.HTTP_201_CREATED,
                        headers={"ETag": etag_for(point)})


class _PersonScopedDetail(GenericAPIView):
    """GET / PATCH (/ DELETE) of one record that belongs to a person: a contact point, a job, a
    timeline entry. Seen only through a person the caller may see (404 otherwise), every read
    audited against that person, writes under a row lock with ``If-Match`` checked (412).

    Subclasses name the model, the patch serializer, how to render, and the service to call.
    """

    object_type = "people.person"
    object_actions = {"GET": "read", "PATCH": "update", "DELETE": "update"}
    model: type[Any]
    patch_serializer: type[s.Strict]
    audit_key: str  # the read's audit detail: {audit_key: record id}
    not_found: str

    def render(self, record: Any) -> dict[str, Any]:
        return self.get_serializer_class()(record).data

    def update(self, request: Request, locked: Any, changes: dict[str, Any]) -> Any:
        raise NotImplementedError

    def remove(self, request: Request, locked: Any) -> None:
        raise NotImplementedError

    def visible(self, request: Request, action: str) -> Any:
        return self.model.objects.filter(person__in=Person.objects.visible_to(request.user, action).values("pk"))

    def _record(self, request: Request, pk: Any, action: str = "read") -> Any:
        record = _one(self.visible(request, action).filter(pk=pk))
        if record is None:
            raise Http404(self.not_found)
        return record

    def _locked(self, request: Request, record: Any) -> Any:
        # The person row is locked with the record: every change bumps or audits the person.
        locked = self.model.objects.select_for_update().select_related("person").get(pk=record.pk)
        check_if_match(request, locked)
        return locked

    def get(self, request: Request, pk: Any) -> Response:
        record = self._record(request, pk)
        record_person_access(actor=request.user, action="view", people=[record.person_id], channel="api",
                             request=request, detail={self.audit_key: str(record.pk)})
        return Response(self.render(record), headers={"ETag": etag_for(record)})

    def patch(self, request: Request, pk: Any) -> Response:
        record = self._record(request, pk, "change")
        data = self.patch_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            record = self.update(request, self._locked(request, record), dict(data.validated_data))
        return Response(self.render(record), headers={"ETag": etag_for(record)})

    def delete(self, request: Request, pk: Any) -> Response:
        record = self._record(request, pk, "change")
        with transaction.atomic():
            self.remove(request, self._locked(request, record))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ContactPointDetail(_PersonScopedDetail):
    serializer_class = s.ContactPointOut
    model, patch_serializer = ContactPoint, s.ContactPointPatch
    audit_key, not_found = "contact_point", "No such contact point."

    def render(self, record: ContactPoint) -> dict[str, Any]:
        return s.contact_point_out(record)

    @extend_schema(request=s.ContactPointPatch, responses=s.ContactPointOut)
    def patch(self, request: Request, pk: Any) -> Response:
        return super().patch(request, pk)

    def update(self, request: Request, locked: ContactPoint, changes: dict[str, Any]) -> ContactPoint:
        return services.contact_point_update(actor=request.user, point=locked, changes=changes, channel="api")

    def remove(self, request: Request, locked: ContactPoint) -> None:
        services.contact_point_remove(actor=request.user, point=locked, channel="api")


# --------------------------------------------------------------------------- organisations


class _OrganisationCreate(GenericAPIView):
    object_type = "people.organisation"
    serializer_class = s.OrganisationOut

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = s.OrganisationIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        parent = values.pop("parent")
        organisation = services.organisation_create(
            actor=request.user, parent=_parent(request, parent), **values)
        organisation = selectors.organisation_get(user=request.user, organisation_id=organisation.pk)
        return Response(s.OrganisationOut(organisation).data, status=status.HTTP_201_CREATED,
                        headers={"ETag": etag_for(organisation), "Location": f"{request.path}{organisation.pk}/"})


def _parent(request: Request, pk: Any) -> Organisation | None:
    if pk is None:
        return None
    parent = Organisation.objects.visible_to(request.user).filter(pk=pk).first()
    if parent is None:
        from rest_framework.exceptions import ValidationError

        raise ValidationError({"parent": ["No such organisation."]})
    return parent


class OrganisationList(IdempotentCreateMixin, _OrganisationCreate):
    """GET: organisations (filters name, domain, parent, tag, updated_since). POST: create one."""

    @extend_schema(parameters=[OpenApiParameter(name, str) for name in s.OrganisationFilter().fields],
                   responses=s.OrganisationOut(many=True))
    def get(self, request: Request) -> Response:
        filters = _filters(request, s.OrganisationFilter)
        if "parent" in filters:
            filters["parent"] = str(filters["parent"])
        organisations = (selectors.organisation_list(user=request.user, **filters)
                         .select_related("parent").prefetch_related("tags"))
        page = self.paginate_queryset(organisations)
        return self.get_paginated_response(s.OrganisationOut(page, many=True).data)

    @extend_schema(request=s.OrganisationIn, responses={201: s.OrganisationOut})
    def post(self, request: Request) -> Response:
        return self.create(request)


class OrganisationDetail(GenericAPIView):
    object_type = "people.organisation"
    serializer_class = s.OrganisationOut

    def get(self, request: Request, pk: Any) -> Response:
        organisation = _organisation(request, pk)
        etag = etag_for(organisation)
        if _not_modified(request, etag):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        return Response(s.OrganisationOut(organisation).data, headers={"ETag": etag})

    @extend_schema(request=s.OrganisationPatch, responses=s.OrganisationOut)
    def patch(self, request: Request, pk: Any) -> Response:
        organisation = _organisation(request, pk, "change")
        data = s.OrganisationPatch(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        tags = changes.pop("tags", None)
        if "parent" in changes:
            changes["parent"] = _parent(request, changes["parent"])
        with transaction.atomic():
            locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
            check_if_match(request, locked)
            services.organisation_update(actor=request.user, organisation=locked, changes=changes, tags=tags)
        organisation = selectors.organisation_get(user=request.user, organisation_id=organisation.pk)
        return Response(s.OrganisationOut(organisation).data, headers={"ETag": etag_for(organisation)})

    def delete(self, request: Request, pk: Any) -> Response:
        organisation = _organisation(request, pk, "delete")
        with transaction.atomic():
            locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
            check_if_match(request, locked)
            services.organisation_delete(actor=request.user, organisation=locked)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------------------ employment


def _visible_jobs(request: Request, action: str = "read") -> Any:
    return Employment.objects.filter(
        person__in=Person.objects.visible_to(request.user, action).values("pk")).select_related("organisation")


class _EmploymentCreate(GenericAPIView):
    object_type = "people.person"
    object_actions = {"GET": "read", "POST": "update"}
    serializer_class = s.EmploymentOut

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = s.EmploymentIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        person = _person(request, values.pop("person"), "change")
        organisation = _organisation(request, values.pop("organisation"))
        job = services.employment_start(actor=request.user, person=person, organisation=organisation,
                                        channel="api", **values)
        job = Employment.objects.select_related("organisation").get(pk=job.pk)
        return Response(s.EmploymentOut(job).data, status=status.HTTP_201_CREATED,
                        headers={"ETag": etag_for(job), "Location": f"{request.path}{job.pk}/"})


class EmploymentList(IdempotentCreateMixin, _EmploymentCreate):
    """GET: jobs (filters person, organisation, current). POST: start a job (ends others by default)."""

    @extend_schema(parameters=[OpenApiParameter(name, str) for name in s.EmploymentFilter().fields],
                   responses=s.EmploymentOut(many=True))
    def get(self, request: Request) -> Response:
        filters = _filters(request, s.EmploymentFilter)
        jobs = _visible_jobs(request)
        if "person" in filters:
            jobs = jobs.filter(person_id=filters["person"])
        if "organisation" in filters:
            jobs = jobs.filter(organisation_id=filters["organisation"])
        if "current" in filters:
            jobs = jobs.filter(end_date__isnull=filters["current"])
        page = self.paginate_queryset(jobs)
        if page:
            record_person_access(actor=request.user, action="view", people=[j.person_id for j in page],
                                 channel="api", request=request, detail={"employments": True})
        return self.get_paginated_response(s.EmploymentOut(page, many=True).data)

    @extend_schema(request=s.EmploymentIn, responses={201: s.EmploymentOut})
    def post(self, request: Request) -> Response:
        return self.create(request)


class EmploymentDetail(_PersonScopedDetail):
    object_actions = {"GET": "read", "PATCH": "update"}
    http_method_names = ["get", "patch", "head", "options"]  # a job is ended, never deleted
    serializer_class = s.EmploymentOut
    model, patch_serializer = Employment, s.EmploymentPatch
    audit_key, not_found = "employment", "No such employment."

    def visible(self, request: Request, action: str) -> Any:
        return _visible_jobs(request, action)

    @extend_schema(request=s.EmploymentPatch, responses=s.EmploymentOut)
    def patch(self, request: Request, pk: Any) -> Response:
        return super().patch(request, pk)

    def update(self, request: Request, locked: Employment, changes: dict[str, Any]) -> Employment:
        services.employment_update(actor=request.user, employment=locked, changes=changes, channel="api")
        return Employment.objects.select_related("organisation").get(pk=locked.pk)


# -------------------------------------------------------------------------------- timeline


class _InteractionCreate(GenericAPIView):
    object_type = "people.person"
    object_actions = {"GET": "read", "POST": "update"}
    serializer_class = s.InteractionOut

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = s.InteractionIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        person = _person(request, values.pop("person"), "change")
        organisation_id = values.pop("organisation")
        organisation = _organisation(request, organisation_id) if organisation_id else None
        interaction, created = services.interaction_log(actor=request.user, person=person,
                                                        organisation=organisation, via="api", **values)
        return Response(s.InteractionOut(interaction).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
                        headers={"ETag": etag_for(interaction),
                                 "Location": f"{request.path}{interaction.pk}/"})


class InteractionList(IdempotentCreateMixin, _InteractionCreate):
    """GET: a person's timeline, newest first (``?person=`` required, ``?channel=``). POST: log an
    interaction; the same (source_system, external_id) is stored once (200 with the stored one)."""

    @extend_schema(parameters=[OpenApiParameter(name, str) for name in s.InteractionFilter().fields],
                   responses=s.InteractionOut(many=True))
    def get(self, request: Request) -> Response:
        filters = _filters(request, s.InteractionFilter)
        person = _person(request, filters["person"])
        interactions = Interaction.objects.filter(person=person)
        if filters.get("channel"):
            interactions = interactions.filter(channel=filters["channel"])
        paginator = self.paginator
        paginator.ordering = ("-occurred_at", "-created_at")
        page = paginator.paginate_queryset(interactions, request, view=self)
        record_person_access(actor=request.user, action="view", people=[person], channel="api",
                             request=request, detail={"timeline": True})
        return paginator.get_paginated_response(s.InteractionOut(page, many=True).data)

    @extend_schema(request=s.InteractionIn, responses={201: s.InteractionOut})
    def post(self, request: Request) -> Response:
        return self.create(request)


class InteractionDetail(_PersonScopedDetail):
    serializer_class = s.InteractionOut
    model, patch_serializer = Interaction, s.InteractionPatch
    audit_key, not_found = "interaction", "No such interaction."

    @extend_schema(request=s.InteractionPatch, responses=s.InteractionOut)
    def patch(self, request: Request, pk: Any) -> Response:
        return super().patch(request, pk)

    def update(self, request: Request, locked: Interaction, changes: dict[str, Any]) -> Interaction:
        return services.interaction_update(actor=request.user, interaction=locked, changes=changes, via="api")

    def remove(self, request: Request, locked: Interaction) -> None:
        services.interaction_delete(actor=request.user, interaction=locked, via="api")
