"""A1 — the privacy API (/api/v1/privacy/): consent, preferences, the gate, rights requests,
suppression, notices, the record of processing and the export of a person.

Thin adapters: parse with the serializers, find the person through ``visible_to`` (S2),
call one service, shape the answer. Domain refusals become RFC 9457 problems in the shared
exception handler; role permissions come from ``object_type`` (``RolePermission``).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rapport.core.api.conventions import IdempotentCreateMixin, check_if_match, etag_for
from rapport.core.api.pagination import CreatedCursorPagination
from rapport.privacy import gate, retention, rights, selectors, services, suppression
from rapport.privacy.api import serializers as s
from rapport.privacy.export import export_person
from rapport.privacy.jurisdictions import regime_for
from rapport.privacy.models import ConsentEvent, RightsRequest, SecurityNotice, SuppressionList
from rapport.privacy.record import processing_record


def _person(request: Request, pk: Any, action: str = "read") -> Any:
    from rapport.people.models import Person

    person = Person.objects.visible_to(request.user, action).filter(pk=pk).first()
    if person is None:
        raise Http404("No such person.")
    return person




class PersonScoped(GenericAPIView):
    object_type = "people.person"


# ------------------------------------------------------------------------------ consent


class _ConsentCreate(PersonScoped):
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        person = _person(request, kwargs["pk"], "change")
        data = s.ConsentIn(data=request.data)
        data.is_valid(raise_exception=True)
        event = services.record_consent(person=person, captured_by=request.user, **data.validated_data)
        event = ConsentEvent.objects.select_related("notice_version__notice", "captured_by").get(pk=event.pk)
        return Response(s.ConsentEventOut(event).data, status=status.HTTP_201_CREATED)


class ConsentList(IdempotentCreateMixin, _ConsentCreate):
    """GET: the person's consent ledger (newest first). POST: record a grant or withdrawal."""

    object_actions = {"GET": "read", "POST": "update"}
    serializer_class = s.ConsentEventOut
    pagination_class = CreatedCursorPagination

    def get(self, request: Request, pk: Any) -> Response:
        person = _person(request, pk)
        queryset = ConsentEvent.objects.filter(person_id=person.pk).select_related(
            "notice_version__notice", "captured_by")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(s.ConsentEventOut(page, many=True).data)

    def post(self, request: Request, pk: Any) -> Response:
        return self.create(request, pk=pk)


class ConsentStateView(PersonScoped):
    serializer_class = s.ConsentStateOut

    def get(self, request: Request, pk: Any) -> Response:
        person = _person(request, pk)
        status_row = selectors.status_of(person=person)
        return Response({
            "person": str(person.pk),
            "jurisdiction": regime_for(person.country).law,
            "restricted": bool(status_row and status_row.restricted_at),
            "objected": bool(status_row and status_row.objected_at),
            "erased": bool(status_row and status_row.erased_at),
            "states": s.ConsentStateOut(selectors.consent_states(person=person), many=True).data,
        })


class ConsentReceiptView(PersonScoped):
    """A consent event as a Kantara Consent Receipt v1.1."""

    def get(self, request: Request, receipt_id: Any) -> Response:
        event = ConsentEvent.objects.select_related("person", "notice_version__notice").filter(
            receipt_id=receipt_id).first()
        if event is None:
            raise Http404("No such receipt.")
        _person(request, event.person_id)
        return Response(selectors.consent_receipt(event))


# --------------------------------------------------------------------------- preferences


class PreferencesView(PersonScoped):
    object_actions = {"GET": "read", "PUT": "update", "PATCH": "update"}
    serializer_class = s.PreferencesIn

    def get(self, request: Request, pk: Any) -> Response:
        person = _person(request, pk)
        return Response(s.preferences_out(*selectors.preferences_of(person=person)))

    def patch(self, request: Request, pk: Any) -> Response:
        person = _person(request, pk, "change")
        data = s.PreferencesIn(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        topics = changes.pop("topics", None)
        preference, _ = selectors.preferences_of(person=person)
        if preference is not None:
            check_if_match(request, preference)
        services.preferences_update(actor=request.user, person=person, changes=changes, topics=topics,
                                    channel="api")
        preference, topics_now = selectors.preferences_of(person=person)
        return Response(s.preferences_out(preference, topics_now), headers={"ETag": etag_for(preference)})

    put = patch


# ------------------------------------------------------------------------------ the gate


class DecideView(PersonScoped):
    """May we contact this person on this channel for this purpose now? (logged)"""

    object_actions = {"POST": "read"}
    serializer_class = s.DecideIn

    def post(self, request: Request) -> Response:
        data = s.DecideIn(data=request.data)
        data.is_valid(raise_exception=True)
        person = _person(request, data.validated_data["person"])
        decision = gate.decide(person, data.validated_data["channel"], data.validated_data["purpose"],
                               data.validated_data.get("at"), actor=request.user, context="api")
        return Response(s.decision_out(person.pk, decision))


class DecideBatchView(PersonScoped):
    """The same answers for up to 10,000 people at once (people you may not see are reported)."""

    object_actions = {"POST": "read"}
    serializer_class = s.DecideBatchIn

    def post(self, request: Request) -> Response:
        from rapport.people.models import Person

        data = s.DecideBatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        wanted = list(dict.fromkeys(data.validated_data["people"]))
        visible = Person.objects.visible_to(request.user).filter(pk__in=wanted)
        decisions = gate.decide_batch(visible, data.validated_data["channel"], data.validated_data["purpose"],
                                      data.validated_data.get("at"), actor=request.user, context="api batch")
        results = [s.decision_out(pid, decisions[pid]) for pid in wanted if pid in decisions]
        allowed = sum(1 for r in results if r["allowed"])
        return Response({"results": results, "allowed": allowed, "denied": len(results) - allowed,
                         "not_found": [str(pid) for pid in wanted if pid not in decisions]})


# ------------------------------------------------------------------------ rights requests


class RightsScoped(GenericAPIView):
    object_type = rights.RIGHTS_OBJECT


class _RequestCreate(RightsScoped):
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = s.RightsRequestIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        person_id = values.pop("person", None)
        person = _person(request, person_id) if person_id else None
        created = rights.request_create(actor=request.user, person=person, via="api", **values)
        return Response(s.RightsRequestOut(created).data, status=status.HTTP_201_CREATED,
                        headers={"ETag": etag_for(created)})


class RightsRequestList(IdempotentCreateMixin, _RequestCreate):
    """GET: the queue (``?status=open|received|verified|completed|refused|cancelled``, ``kind``,
    ``overdue=1``), soonest due first. POST: log a request."""

    serializer_class = s.RightsRequestOut

    def get(self, request: Request) -> Response:
        queue = selectors.request_queue(status=request.query_params.get("status", "open"),
                                        kind=request.query_params.get("kind", ""),
                                        overdue_only=request.query_params.get("overdue") in ("1", "true"))
        limit = min(int(request.query_params.get("limit", "200") or 200), 1000)
        return Response({"results": s.RightsRequestOut(list(queue[:limit]), many=True).data,
                         "counts": selectors.queue_counts()})

    def post(self, request: Request) -> Response:
        return self.create(request)


class RightsRequestDetail(RightsScoped):
    serializer_class = s.RightsRequestPatch

    def get(self, request: Request, pk: Any) -> Response:
        item = _request(request, pk)
        return Response(s.RightsRequestOut(item, context={"with_events": True}).data,
                        headers={"ETag": etag_for(item)})

    def patch(self, request: Request, pk: Any) -> Response:
        item = _request(request, pk)
        check_if_match(request, item)
        data = s.RightsRequestPatch(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if changes.get("person"):
            changes["person"] = _person(request, changes["person"])
        updated = rights.request_update(actor=request.user, request=item, changes=changes,
                                        expected_version=item.version)
        return Response(s.RightsRequestOut(updated).data, headers={"ETag": etag_for(updated)})


class RightsRequestAction(RightsScoped):
    """POST verify | extend | execute | refuse | cancel (honours If-Match)."""

    serializer_class = s.ExecuteIn
    object_actions = {"POST": "update"}
    INPUT = {"verify": s.VerifyIn, "extend": s.ReasonIn, "execute": s.ExecuteIn, "refuse": s.ReasonIn,
             "cancel": s.CancelIn}

    def post(self, request: Request, pk: Any, action: str) -> Response:
        if action not in self.INPUT:
            raise Http404("No such action.")
        item = _request(request, pk)
        if not rights.allowed(request.user, action, item.kind):
            raise PermissionDenied(f"Your role may not {action} {item.get_kind_display().lower()} requests.")
        check_if_match(request, item)
        data = self.INPUT[action](data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        common = {"actor": request.user, "request": item, "expected_version": item.version}
        if action == "verify":
            done = rights.request_verify(method=v["method"], note=v.get("note", ""), **common)
        elif action == "extend":
            done = rights.request_extend(reason=v["reason"], **common)
        elif action == "execute":
            done = rights.request_execute(changes=v.get("changes"), note=v.get("note", ""), channel="api", **common)
        elif action == "refuse":
            done = rights.request_refuse(reason=v["reason"], **common)
        else:
            done = rights.request_cancel(reason=v.get("reason", ""), **common)
        return Response(s.RightsRequestOut(done, context={"with_events": True}).data,
                        headers={"ETag": etag_for(done)})


def _request(request: Request, pk: Any) -> RightsRequest:
    item = RightsRequest.objects.select_related("person", "verified_by", "completed_by").filter(pk=pk).first()
    if item is None:
        raise Http404("No such request.")
    if item.person_id is not None:
        _person(request, item.person_id)
    return item


# ---------------------------------------------------------------------------- suppression


class SettingsScoped(GenericAPIView):
    object_type = "privacy.settings"
    object_actions = {"GET": "manage", "POST": "manage", "DELETE": "manage"}


class SuppressionView(SettingsScoped):
    """GET: counts of the internal list and the imported lists. POST: suppress emails/phones."""

    serializer_class = s.SuppressIn

    def get(self, request: Request) -> Response:
        overview = selectors.suppression_overview()
        return Response({
            "internal": overview["internal"],
            "lists": s.SuppressionListOut(overview["lists"], many=True).data,
            "latest_phone_screening": overview["latest_phone_screening"],
            "phone_screening_age_days": overview["phone_screening_age_days"],
            "phone_lists": overview["phone_lists"],
        })

    def post(self, request: Request) -> Response:
        data = s.SuppressIn(data=request.data)
        data.is_valid(raise_exception=True)
        added = suppression.suppress(emails=data.validated_data.get("emails", []),
                                     phones=data.validated_data.get("phones", []),
                                     reason=data.validated_data.get("reason", ""))
        return Response({"added": added}, status=status.HTTP_201_CREATED)


class SuppressionCheckView(PersonScoped):
    """Would these identifiers be refused (erased or suppressed)? For forms and imports."""

    object_actions = {"POST": "create"}
    serializer_class = s.SuppressionCheckIn

    def post(self, request: Request) -> Response:
        data = s.SuppressionCheckIn(data=request.data)
        data.is_valid(raise_exception=True)
        suppression.ensure_not_suppressed(emails=data.validated_data.get("emails", []),
                                          phones=data.validated_data.get("phones", []))
        return Response({"suppressed": False})


class SuppressionListView(SettingsScoped):
    """GET: imported do-not-contact lists. POST: import one (plain values are hashed, never kept)."""

    serializer_class = s.SuppressionListIn

    def get(self, request: Request) -> Response:
        return Response(s.SuppressionListOut(SuppressionList.objects.all(), many=True).data)

    def post(self, request: Request) -> Response:
        data = s.SuppressionListIn(data=request.data)
        data.is_valid(raise_exception=True)
        imported = suppression.import_list(actor=request.user, **data.validated_data)
        return Response(s.SuppressionListOut(imported).data, status=status.HTTP_201_CREATED)


# ------------------------------------------------------------------ notices, record, export


class NoticeView(GenericAPIView):
    """GET: every notice version. POST: publish a new version of a notice (old ones never change)."""

    object_type = "privacy.settings"
    object_actions = {"GET": "read", "POST": "manage"}
    serializer_class = s.NoticeIn

    def get(self, request: Request) -> Response:
        from rapport.privacy.models import NoticeVersion

        versions = NoticeVersion.objects.select_related("notice").order_by("notice__key", "-version")
        return Response(s.NoticeVersionOut(versions, many=True).data)

    def post(self, request: Request) -> Response:
        data = s.NoticeIn(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.notice_publish(actor=request.user, **data.validated_data)
        return Response(s.NoticeVersionOut(version).data, status=status.HTTP_201_CREATED)

    def get_permissions(self) -> list[Any]:
        # Reading notices is open to every signed-in user (they are public texts).
        if self.request.method == "GET":
            self.object_type = None
        return super().get_permissions()


class SecurityNoticeView(SettingsScoped):
    """C8 — POST: send a breach/security notice to the affected people. GET: notices sent."""

    serializer_class = s.SecurityNoticeIn

    def get(self, request: Request) -> Response:
        return Response(s.SecurityNoticeOut(SecurityNotice.objects.all()[:100], many=True).data)

    def post(self, request: Request) -> Response:
        from rapport.people.models import Person
        from rapport.privacy.outbound import send_security_notice

        data = s.SecurityNoticeIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        people = Person.objects.visible_to(request.user).filter(pk__in=v["people"])
        notice = send_security_notice(people=people, subject=v["subject"], body=v["body"], actor=request.user,
                                      channel=v["channel"])
        return Response(s.SecurityNoticeOut(notice).data, status=status.HTTP_201_CREATED)


class ProcessingRecordView(APIView):
    """The record of processing activities (GDPR Art. 30), generated from the data map."""

    def get(self, request: Request) -> Response:
        return Response(processing_record())


class RetentionReportView(SettingsScoped):
    """What the retention policies would erase or delete now, and why (a dry run)."""

    object_actions = {"GET": "read"}

    def get(self, request: Request) -> Response:
        return Response({"policies": [r.as_dict() for r in retention.find_expired()]})

    def get_permissions(self) -> list[Any]:
        self.object_type = None  # the dry-run report is for every signed-in user
        return super().get_permissions()


class PersonExportView(PersonScoped):
    """Access / portability: everything held about the person (schema rapport.person-export/1)."""

    object_actions = {"GET": "export"}
    required_scope = "export"

    def get(self, request: Request, pk: Any) -> Response:
        person = _person(request, pk, "export")
        return Response(export_person(person=person, actor=request.user, channel="api", request=request))
